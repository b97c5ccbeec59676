"""Training throughput of the clipbudget engine vs ``open_clip_train.main``, side by side in one run.

Same model config (a catalog tiny config, registered with open_clip for both), same webdataset shards
(real Fashion-MNIST, built by ``clipbudget data``), same batch, same thread count, CPU, fp32. Each engine
runs in its own subprocess (so ``ru_maxrss`` is its own): a warm-up run, then runs of N and 2N samples;
steady-state samples/s = N / (T(2N) − T(N)), which cancels start-up costs (model creation, worker start).
Prints both rates, the ratio (goal ≥ 0.9) and peak resident memory (main process and DataLoader workers).

With CUDA available it also measures MFU for ViT-B-16 at batch 256 in bf16 with synthetic inputs on the
GPU: achieved model FLOP/s (training FLOPs = 3 × the analytic forward FLOPs of ``budget.flops``) over the
device's dense bf16 peak from ``budget.hardware`` (UNVERIFIED here: no GPU on the development machine).

Run::

    .venv/bin/python benchmarks/bench_train_throughput.py                      # tiny-vit-s-28, batch 128
    .venv/bin/python benchmarks/bench_train_throughput.py --model tiny-vit-28 --samples 2560 --threads 2

Timings on a shared, loaded machine are noisy; compare the ratio, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _peak_mb() -> dict:
    import resource

    return {"self_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "children_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


def _ours(args, n: int, tag: str) -> float:
    from runners.config import RunConfig
    from runners.train import train

    cfg = RunConfig.from_dict(dict(
        model=args.model, strategy="clip", samples_seen=n, batch_size=args.batch, lr=5e-4, warmup_steps=0,
        train_data=args.shards, eval_data=args.shards, workers=args.workers, seed=hash(tag) % 1000,
    ))
    t0 = time.perf_counter()
    train(cfg, Path(args.tmp) / f"ours-{tag}-{os.getpid()}", device="cpu", log_every_s=1e9)
    return time.perf_counter() - t0


def _theirs(args, n: int, tag: str) -> float:
    import open_clip_train.data as ocd
    from open_clip_train.main import main

    from runners.models import open_clip_name

    # webdataset >= 1.0 ends each shard with an empty dict (eof_value={}) that open_clip_train 3.3.0's
    # group_by_keys_nothrow does not expect (KeyError 'fname'): drop those markers, change nothing else.
    if not getattr(ocd.group_by_keys_nothrow, "_clipbudget_shim", False):
        original = ocd.group_by_keys_nothrow

        def group_by_keys_nothrow(data, *a, **k):
            return original((s for s in data if s.get("fname") is not None), *a, **k)

        group_by_keys_nothrow._clipbudget_shim = True
        ocd.group_by_keys_nothrow = group_by_keys_nothrow

    name = open_clip_name(args.model)  # registers the catalog config with open_clip
    shards = sorted(Path(args.shards).glob("*.tar"))
    pattern = f"{args.shards}/{{{shards[0].stem}..{shards[-1].stem}}}.tar"
    argv = [
        "--model", name, "--train-data", pattern, "--dataset-type", "webdataset", "--dataset-resampled",
        "--train-num-samples", str(n), "--batch-size", str(args.batch), "--epochs", "1",
        "--workers", str(args.workers), "--device", "cpu", "--precision", "fp32", "--lr", "5e-4",
        "--warmup", "0", "--save-frequency", "0", "--logs", str(Path(args.tmp) / "oc-logs"), "--name", f"oc-{tag}-{os.getpid()}",
        "--report-to", "", "--log-every-n-steps", "1000000", "--seed", "0",
    ]
    t0 = time.perf_counter()
    main(argv)
    return time.perf_counter() - t0


def _child(args) -> None:
    """One engine in this process: warm-up, N, 2N; prints a JSON line."""
    import torch

    torch.set_num_threads(args.threads)
    fn = _ours if args.engine == "ours" else _theirs
    fn(args, args.batch * 2, "warm")
    t1 = fn(args, args.samples, "n")
    t2 = fn(args, 2 * args.samples, "2n")
    rate = args.samples / max(t2 - t1, 1e-9)
    print(json.dumps({"engine": args.engine, "t_n": t1, "t_2n": t2, "samples_per_s": rate, **_peak_mb()}))


def _mfu() -> None:
    """MFU of ViT-B-16, batch 256, bf16 autocast, one GPU, synthetic inputs (needs CUDA)."""
    import torch

    from budget.flops import sample_cost
    from budget.hardware import GPUS
    from runners.models import build_model
    from runners.strategies import ContrastiveLoss
    from runners.train import param_groups

    name = torch.cuda.get_device_name()
    gpu = next((g for k, g in GPUS.items() if k.split("-")[0].lower() in name.lower()), None)
    built = build_model("ViT-B-16", device="cuda")
    model, loss_fn = built.model.train(), ContrastiveLoss()
    opt = torch.optim.AdamW(param_groups(model, 0.2), lr=5e-4, betas=(0.9, 0.98), eps=1e-6, fused=True)
    b = 256
    x = torch.randn(b, 3, 224, 224, device="cuda")
    t = torch.randint(0, 49408, (b, 77), device="cuda")

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = loss_fn(model(x, t))["loss"]
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(5):
        step()
    torch.cuda.synchronize()
    n, t0 = 20, time.perf_counter()
    for _ in range(n):
        step()
    torch.cuda.synchronize()
    dt = (time.perf_counter() - t0) / n
    train_flops = 3 * sample_cost("ViT-B-16").forward_gflops * 1e9 * b
    achieved = train_flops / dt
    line = f"MFU ViT-B-16 batch {b} bf16 on {name}: {b / dt:.0f} samples/s, {achieved / 1e12:.1f} TFLOP/s"
    if gpu is not None:
        line += f" / peak {gpu.peak_bf16_tflops:.0f} ({gpu.name}) = MFU {achieved / gpu.peak_flops:.3f}"
    else:
        line += " (device not in budget.hardware.GPUS: no MFU)"
    print(line)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="tiny-vit-s-28")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--samples", type=int, default=2560, help="N (the runs see N and 2N samples)")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--shards", default=None, help="shard folder (default: build 2000 Fashion-MNIST pairs)")
    p.add_argument("--engine", choices=("ours", "theirs"), help=argparse.SUPPRESS)
    p.add_argument("--tmp", default=None, help=argparse.SUPPRESS)
    p.add_argument("--skip-mfu", action="store_true")
    args = p.parse_args()
    if args.engine:
        _child(args)
        return 0
    import logging

    logging.basicConfig(level=logging.WARNING)
    tmp = tempfile.mkdtemp(prefix="clipbudget-bench-")
    if args.shards is None:
        from runners.data.demo import build_demo

        args.shards = str(build_demo("fashion-mnist", Path(tmp) / "data", n_train=2000, n_eval=100,
                                     shard_size=1000).shards_dir)
    results = {}
    for engine in ("ours", "theirs", "ours", "theirs"):  # interleaved, twice: the load on the machine drifts
        cmd = [sys.executable, str(Path(__file__).resolve()), "--engine", engine, "--tmp", tmp, "--shards", args.shards,
               "--model", args.model, "--batch", str(args.batch), "--samples", str(args.samples),
               "--workers", str(args.workers), "--threads", str(args.threads)]
        env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), PYTHONPATH=str(HERE.parent))
        out = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if out.returncode:
            print(out.stderr[-3000:], file=sys.stderr)
            return 1
        r = json.loads(out.stdout.strip().splitlines()[-1])
        results.setdefault(engine, []).append(r)
        print(f"{engine:6s}: {r['samples_per_s']:7.1f} samples/s (T(N)={r['t_n']:.1f}s, T(2N)={r['t_2n']:.1f}s), "
              f"peak RSS main {r['self_mb']:.0f} MB, workers {r['children_mb']:.0f} MB")
    best = {k: max(r["samples_per_s"] for r in v) for k, v in results.items()}
    whole = {k: max(2 * args.samples / r["t_2n"] for r in v) for k, v in results.items()}
    print(f"whole-run rate incl. start-up (2N samples / T(2N)): ours {whole['ours']:.1f}, open_clip_train "
          f"{whole['theirs']:.1f} samples/s → ratio {whole['ours'] / whole['theirs']:.2f}")
    mem = {k: max(r["self_mb"] for r in v) for k, v in results.items()}
    print(f"{args.model}, batch {args.batch}, CPU, {args.threads} thread(s), {args.workers} worker(s): "
          f"ours {best['ours']:.1f} vs open_clip_train {best['theirs']:.1f} samples/s → ratio {best['ours'] / best['theirs']:.2f} "
          f"(goal ≥ 0.9); peak RSS ours {mem['ours']:.0f} MB vs {mem['theirs']:.0f} MB")
    import torch

    if torch.cuda.is_available() and not args.skip_mfu:
        _mfu()
    else:
        print("MFU: skipped (no CUDA device here); the ViT-B-16 bf16 MFU measurement is unverified")
    return 0


if __name__ == "__main__":
    sys.exit(main())
