"""Training throughput of the clipbudget engine vs ``open_clip_train``: three ratios side by side in one run.

Both engines get the same model (a catalog config, registered with open_clip for both), strategy (``clip``,
or ``flip`` = open_clip's ``--force-patch-dropout``), batch, precision, torch threads, DataLoader workers
and the same webdataset shards (real Fashion-MNIST, built by ``clipbudget data``), and the same image
augmentation (open_clip's training transform, ``open_clip.image_transform(is_train=True)``: bicubic
RandomResizedCrop, scale 0.9–1, which is what ``runners.strategies`` uses for ``clip``/``flip``):

* **loader alone**: samples/s of the data pipeline with no training (ours: ``runners.data.loader``;
  theirs: ``open_clip_train.data.get_data``'s webdataset pipeline), counted after the first batch arrives;
* **step alone**: samples/s of forward + backward + optimizer on the same tensors (one real batch, on the
  device), no data loading; timed in chunks of 5 steps, the fastest chunk counts (the median is printed too). Ours: :func:`runners.train.train_step`, the step the training loop runs;
  theirs: ``open_clip_train.train.train_one_epoch`` over a loader that yields that batch again and again;
* **end to end**: ``runners.train.train`` vs ``open_clip_train.main.main`` on the shards, steady-state
  samples/s = N / (T(2N) − T(N)), which cancels start-up costs (model creation, worker start, final save).

Each measurement runs in its own subprocess, ours and theirs interleaved twice (the load on a shared machine
drifts); the best of the two is reported. On CUDA the step and end-to-end rates also give MFU: training
FLOPs (3 × the analytic forward FLOPs of ``budget.flops``, strategy-adjusted) per second over the dense
peak of the GPU as torch names it (``budget.hardware.gpu_from_device_name``).

open_clip_train's loader (and so its end-to-end run) needs the ``webdataset`` package; without it those two
are reported as skipped with the reason, and the step race still runs.

Run::

    .venv/bin/python benchmarks/bench_train_throughput.py                          # CPU, tiny-vit-s-28, batch 128
    .venv/bin/python benchmarks/bench_train_throughput.py --workers 2 --threads 1 --samples 2560
    .venv/bin/python benchmarks/bench_train_throughput.py --device cuda --model ViT-B-16 --batch 256 \\
        --precision amp_bf16 --strategy flip --workers 12 --threads 8               # see benchmarks/gpu_check.sh

Timings on a shared, loaded machine are noisy; compare the ratios, not the absolute numbers.
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
PARTS = ("loader", "step", "e2e")
FLIP_MASK_RATIO = 0.5


def _peak_mb() -> dict:
    import resource

    return {"self_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "children_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


# --- ours ------------------------------------------------------------------------------------------


def _our_cfg(args, n: int, seed: int = 0):
    from runners.config import RunConfig

    extra = {"flip_mask_ratio": FLIP_MASK_RATIO} if args.strategy == "flip" else {}
    return RunConfig.from_dict(dict(
        model=args.model, strategy=args.strategy, samples_seen=n, batch_size=args.batch, lr=5e-4, warmup_steps=0,
        train_data=args.shards, eval_data=args.shards, workers=args.workers, seed=seed, precision=args.precision,
        checkpoint_every_steps=10**9, **extra))


def _our_parts(args, n: int):
    """(model, loss, optimizer, strategy, built) exactly as ``runners.train.train`` builds them."""
    import torch

    from runners.models import build_model
    from runners.strategies import TrainModule, build_strategy
    from runners.train import _embed_dim, build_optimizer, resolve_precision

    cfg = _our_cfg(args, n)
    weights, amp = resolve_precision(cfg.precision, torch.device(args.device).type)
    torch.manual_seed(cfg.seed)
    built = build_model(cfg.model, patch_dropout=cfg.flip_mask_ratio if cfg.strategy == "flip" else 0.0,
                        precision=weights, device="cpu")
    strategy = build_strategy(cfg, embed_dim=_embed_dim(cfg.model), image_size=built.image_size, mean=built.mean,
                              std=built.std)
    module = TrainModule(built.model, strategy.head).to(args.device)
    opt = build_optimizer(module, cfg)
    return cfg, module, strategy, built, opt, amp


def _our_loader(args, n: int):
    from runners.data.loader import build_train_loader

    cfg, _, strategy, built, _, _ = _our_parts(args, n)
    return build_train_loader(cfg, image_transform=strategy.train_transform, tokenizer=built.tokenizer,
                              extra_views_transform=strategy.extra_views_transform, batch_size=args.batch)


def _fixed_batch(args):
    """One real batch (images, tokens) of the shards, through our loader and open_clip's train transform."""
    images, tokens, _ = next(iter(_our_loader(args, args.batch)))
    return images, tokens


def ours_loader(args) -> dict:
    return _time_loader(_our_loader(args, args.loader_samples), lambda b: b[0].shape[0])


def ours_step(args) -> dict:
    import contextlib

    import torch

    from runners.train import train_step

    cfg, module, strategy, _, opt, amp = _our_parts(args, args.batch)
    loss_fn = strategy.loss.to(args.device)
    images, tokens = (t.to(args.device) for t in _fixed_batch(args))
    autocast = (lambda: torch.autocast(torch.device(args.device).type, dtype=amp)) if amp else contextlib.nullcontext
    module.train()

    def step():
        train_step(module, loss_fn, opt, images, tokens, None, lr=cfg.lr, autocast=autocast,
                   grad_clip_norm=cfg.grad_clip_norm)

    return _time_steps(args, step)


def ours_e2e(args) -> dict:
    from runners.train import train

    def run(n: int, tag: str) -> float:
        cfg = _our_cfg(args, n, seed=hash(tag) % 1000)
        t0 = time.perf_counter()
        train(cfg, Path(args.tmp) / f"ours-{tag}-{os.getpid()}", device=args.device, log_every_s=1e9)
        return time.perf_counter() - t0

    return _time_e2e(args, run)


# --- theirs (open_clip_train) ----------------------------------------------------------------------


def _their_argv(args, n: int, tag: str) -> list[str]:
    from runners.models import open_clip_name

    name = open_clip_name(args.model)  # registers the catalog config with open_clip
    shards = sorted(Path(args.shards).glob("*.tar"))
    pattern = f"{args.shards}/{{{shards[0].stem}..{shards[-1].stem}}}.tar"
    argv = [
        "--model", name, "--train-data", pattern, "--dataset-type", "webdataset", "--dataset-resampled",
        "--train-num-samples", str(n), "--batch-size", str(args.batch), "--epochs", "1",
        "--workers", str(args.workers), "--device", args.device, "--precision", args.precision, "--lr", "5e-4",
        "--warmup", "0", "--save-frequency", "0", "--logs", str(Path(args.tmp) / "oc-logs"),
        "--name", f"oc-{tag}-{os.getpid()}", "--report-to", "", "--log-every-n-steps", "1000000", "--seed", "0",
        "--grad-clip-norm", "1.0",  # runners.config.RunConfig's default: both clip the gradient norm
    ]
    if args.strategy == "flip":
        argv += ["--force-patch-dropout", str(FLIP_MASK_RATIO)]
    return argv


def _their_args(args, n: int, tag: str):
    from open_clip_train.params import parse_args

    a = parse_args(_their_argv(args, n, tag))
    a.distributed, a.world_size, a.rank, a.local_rank = False, 1, 0, 0
    a.device = "cuda:0" if args.device.startswith("cuda") else "cpu"
    a.distill = False  # what main() derives from the flags
    a.wandb = a.tensorboard = False
    return a


def _their_model(a):
    import random

    import numpy as np
    import open_clip
    import torch

    torch.manual_seed(a.seed)  # open_clip_train.main.random_seed(seed, rank 0), without importing main (webdataset)
    np.random.seed(a.seed)
    random.seed(a.seed)
    return open_clip.create_model_and_transforms(
        a.model, a.pretrained, precision=a.precision, device=a.device, force_patch_dropout=a.force_patch_dropout,
        aug_cfg=a.aug_cfg, output_dict=True)


def _shim_wds_eof() -> None:
    """webdataset >= 1.0 ends each shard with an empty dict (eof_value={}) that open_clip_train 3.3.0's
    ``group_by_keys_nothrow`` does not expect (KeyError 'fname'): drop those markers, change nothing else."""
    import open_clip_train.data as ocd

    if getattr(ocd.group_by_keys_nothrow, "_clipbudget_shim", False):
        return
    original = ocd.group_by_keys_nothrow

    def group_by_keys_nothrow(data, *a, **k):
        return original((s for s in data if s.get("fname") is not None), *a, **k)

    group_by_keys_nothrow._clipbudget_shim = True
    ocd.group_by_keys_nothrow = group_by_keys_nothrow


def _needs_webdataset() -> None:
    import importlib.util

    if importlib.util.find_spec("webdataset") is None:
        raise ModuleNotFoundError("open_clip_train's loader needs the 'webdataset' package, not installed here "
                                  "(pip install webdataset)")
    _shim_wds_eof()


def theirs_loader(args) -> dict:
    _needs_webdataset()
    import open_clip
    from open_clip_train.data import get_data

    a = _their_args(args, args.loader_samples, "loader")
    _, pre_train, pre_val = _their_model(a)
    data = get_data(a, (pre_train, pre_val), epoch=0, tokenizer=open_clip.get_tokenizer(a.model))
    return _time_loader(data["train"].dataloader, lambda b: b[0].shape[0])


class _Repeat:
    """A stand-in for open_clip_train's DataInfo: its dataloader yields one batch ``num_batches`` times."""

    def __init__(self, batch, num_batches: int):
        self.batch, self.num_batches = batch, num_batches
        self.num_samples = num_batches * batch[0].shape[0]
        self.dataloader = self

    def __iter__(self):
        for _ in range(self.num_batches):
            yield self.batch

    def set_epoch(self, epoch: int) -> None:
        pass


def theirs_step(args) -> dict:
    import logging

    import torch
    from open_clip import create_loss
    from open_clip_train.scheduler import cosine_lr
    from open_clip_train.train import train_one_epoch

    a = _their_args(args, args.batch, "step")
    model, _, _ = _their_model(a)
    exclude = lambda n, p: p.ndim < 2 or "bn" in n or "ln" in n or "bias" in n or "logit_scale" in n  # noqa: E731 - main.py's
    named = list(model.named_parameters())
    opt = torch.optim.AdamW([{"params": [p for n, p in named if exclude(n, p) and p.requires_grad], "weight_decay": 0.},
                             {"params": [p for n, p in named if not exclude(n, p) and p.requires_grad],
                              "weight_decay": a.wd}], lr=a.lr, betas=(a.beta1, a.beta2), eps=a.eps)
    scaler = torch.amp.GradScaler("cuda") if a.precision == "amp" else None
    loss = create_loss(a)
    images, tokens = _fixed_batch(args)
    logging.getLogger().setLevel(logging.WARNING)

    def run_steps(k: int) -> None:
        data = {"train": _Repeat((images, tokens), k)}
        sched = cosine_lr(opt, a.lr, a.warmup, k)
        train_one_epoch(model, data, loss, 0, opt, scaler, sched, None, a)

    return _time_chunks(args, run_steps)


def theirs_e2e(args) -> dict:
    _needs_webdataset()
    import logging

    from open_clip_train.main import main

    def run(n: int, tag: str) -> float:
        t0 = time.perf_counter()
        main(_their_argv(args, n, tag))
        logging.getLogger().setLevel(logging.WARNING)
        return time.perf_counter() - t0

    return _time_e2e(args, run)


# --- timing ----------------------------------------------------------------------------------------


def _time_loader(loader, size) -> dict:
    it = iter(loader)
    first = next(it)
    t0, n = time.perf_counter(), 0
    for batch in it:
        n += size(batch)
    dt = time.perf_counter() - t0
    del first
    return {"samples": n, "seconds": dt, "samples_per_s": n / max(dt, 1e-9)}


#: Step alone is timed in chunks of this many steps; the fastest chunk is the rate (as ``timeit`` takes the
#: minimum: other processes on a shared machine only ever slow a chunk down).
STEP_CHUNK = 5


def _time_steps(args, step) -> dict:
    def run_steps(k: int) -> None:
        for _ in range(k):
            step()

    return _time_chunks(args, run_steps)


def _time_chunks(args, run_steps) -> dict:
    run_steps(args.warmup_steps)
    _sync(args.device)
    times = []
    for _ in range(max(1, args.steps // STEP_CHUNK)):
        t0 = time.perf_counter()
        run_steps(STEP_CHUNK)
        _sync(args.device)
        times.append(time.perf_counter() - t0)
    n = STEP_CHUNK * args.batch
    return {"samples": n, "seconds": min(times), "samples_per_s": n / min(times),
            "median_samples_per_s": n / sorted(times)[len(times) // 2], "chunks": len(times)}


def _time_e2e(args, run) -> dict:
    run(args.batch * 2, "warm")
    t1 = run(args.samples, "n")
    t2 = run(2 * args.samples, "2n")
    return {"samples": args.samples, "t_n": t1, "t_2n": t2, "seconds": t2 - t1,
            "samples_per_s": args.samples / max(t2 - t1, 1e-9)}


def _child(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    fn = {("ours", "loader"): ours_loader, ("ours", "step"): ours_step, ("ours", "e2e"): ours_e2e,
          ("theirs", "loader"): theirs_loader, ("theirs", "step"): theirs_step, ("theirs", "e2e"): theirs_e2e}
    try:
        out = fn[(args.engine, args.part)](args)
    except ModuleNotFoundError as exc:
        out = {"skipped": str(exc)}
    if args.device.startswith("cuda"):
        out["device_name"] = torch.cuda.get_device_name()
    print(json.dumps({"engine": args.engine, "part": args.part, **out, **_peak_mb()}))


# --- the race --------------------------------------------------------------------------------------


def mfu(samples_per_s: float, model: str, strategy: str, device_name: str) -> tuple[float | None, float]:
    """``(MFU or None, achieved training TFLOP/s)``: 3 × forward FLOPs per sample × samples/s over the peak."""
    from budget.flops import sample_cost
    from budget.hardware import gpu_from_device_name

    fwd = sample_cost(model, strategy, flip_mask_ratio=FLIP_MASK_RATIO if strategy == "flip" else 0.0).forward_gflops
    achieved = 3 * fwd * 1e9 * samples_per_s
    gpu = gpu_from_device_name(device_name)
    return (achieved / gpu.peak_flops if gpu is not None else None), achieved / 1e12


def _build_shards(out: Path, n: int = 2000) -> str:
    """2000 Fashion-MNIST pairs in 2 shards; where Debian's dataset-fashion-mnist is missing (a bare GPU
    machine), 2000 random 28 px greyscale images with class captions, in the same shard format."""
    from budget.errors import ConfigError
    from runners.data.demo import build_demo

    try:
        return str(build_demo("fashion-mnist", out, n_train=n, n_eval=100, shard_size=1000).shards_dir)
    except ConfigError as exc:
        print(f"no Fashion-MNIST here ({exc}); using random images", file=sys.stderr)
    import numpy as np

    from runners.data.demo import encode_png
    from runners.data.shards import ShardWriter

    rng = np.random.default_rng(0)
    names = ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot")
    with ShardWriter(out / "shards", shard_size=1000) as writer:
        for i in range(n):
            label = int(rng.integers(10))
            caption = f"a photo of a {names[label]}"
            meta = {"quality": 1.0, "quality_source": "synthetic", "is_clean": True, "corruption": "none",
                    "label": label, "caption": caption, "width": 28, "height": 28, "status": "success",
                    "source": f"random/{i}"}
            writer.write(f"{i:09d}", encode_png(rng.integers(0, 256, (28, 28), dtype=np.uint8)), caption, meta)
    return str(out / "shards")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="tiny-vit-s-28")
    p.add_argument("--strategy", choices=("clip", "flip"), default="clip")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--samples", type=int, default=2560, help="end to end: N (the runs see N and 2N samples)")
    p.add_argument("--loader-samples", type=int, default=None, help="loader alone: samples read (default 4 N)")
    p.add_argument("--steps", type=int, default=30, help=f"step alone: timed steps (after --warmup-steps), in "
                   f"chunks of {STEP_CHUNK}; the fastest chunk counts")
    p.add_argument("--warmup-steps", type=int, default=3)
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers of both engines")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads of both engines")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--precision", default="fp32", help="fp32 or amp_bf16 (both engines)")
    p.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    p.add_argument("--repeats", type=int, default=2, help="interleaved runs per engine and part (best is kept)")
    p.add_argument("--shards", default=None, help="shard folder (default: build 2000 Fashion-MNIST pairs)")
    p.add_argument("--json", default=None, help="also write the results here")
    p.add_argument("--engine", choices=("ours", "theirs"), help=argparse.SUPPRESS)
    p.add_argument("--part", choices=PARTS, help=argparse.SUPPRESS)
    p.add_argument("--tmp", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.loader_samples = args.loader_samples or 4 * args.samples
    if args.engine:
        _child(args)
        return 0
    import logging

    logging.basicConfig(level=logging.WARNING)
    tmp = tempfile.mkdtemp(prefix="clipbudget-bench-")
    if args.shards is None:
        args.shards = _build_shards(Path(tmp) / "data")
    print(f"{args.model} {args.strategy}, batch {args.batch}, {args.device} {args.precision}, {args.threads} thread(s), "
          f"{args.workers} worker(s), shards {args.shards}; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} CPUs", flush=True)
    results: dict = {}
    for part in args.parts:
        for _ in range(args.repeats):
            for engine in ("ours", "theirs"):
                cmd = [sys.executable, str(Path(__file__).resolve()), "--engine", engine, "--part", part, "--tmp", tmp,
                       "--shards", args.shards, "--model", args.model, "--strategy", args.strategy,
                       "--batch", str(args.batch), "--samples", str(args.samples),
                       "--loader-samples", str(args.loader_samples), "--steps", str(args.steps),
                       "--warmup-steps", str(args.warmup_steps), "--workers", str(args.workers),
                       "--threads", str(args.threads), "--device", args.device, "--precision", args.precision]
                env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), PYTHONPATH=str(HERE.parent))
                out = subprocess.run(cmd, capture_output=True, text=True, env=env)
                if out.returncode:
                    print(f"{engine} {part} failed:\n{out.stderr[-3000:]}", file=sys.stderr)
                    return 1
                r = json.loads(out.stdout.strip().splitlines()[-1])
                results.setdefault(part, {}).setdefault(engine, []).append(r)
                if "skipped" in r:
                    print(f"  {part:6s} {engine:6s}: skipped ({r['skipped']})", flush=True)
                else:
                    median = f", median chunk {r['median_samples_per_s']:.1f}" if "median_samples_per_s" in r else ""
                    print(f"  {part:6s} {engine:6s}: {r['samples_per_s']:8.1f} samples/s "
                          f"({1000 / r['samples_per_s']:.3f} ms/sample{median}), peak RSS {r['self_mb']:.0f} MB "
                          f"+ workers {r['children_mb']:.0f} MB", flush=True)
    print(f"\n{'part':8s} {'ours ms/sample':>15s} {'open_clip_train':>16s} {'ratio (ours/theirs samples/s)':>31s}")
    summary = {}
    for part, by in results.items():
        best = {e: max((r for r in rs if "skipped" not in r), key=lambda r: r["samples_per_s"], default=None)
                for e, rs in by.items()}
        o, t = best.get("ours"), best.get("theirs")
        ratio = o["samples_per_s"] / t["samples_per_s"] if o and t else None
        summary[part] = {"ours": o, "theirs": t, "ratio": ratio}
        goal = {"step": "goal ≥ 1.0", "e2e": "goal ≥ 1.0", "loader": "as measured"}[part]
        print(f"{part:8s} {1000 / o['samples_per_s'] if o else float('nan'):15.3f} "
              f"{1000 / t['samples_per_s'] if t else float('nan'):16.3f} "
              f"{(f'{ratio:.2f}' if ratio else 'skipped (' + by['theirs'][0].get('skipped', '?') + ')'):>14s}  ({goal})")
        if args.device.startswith("cuda") and part in ("step", "e2e"):
            for e, r in best.items():
                if r:
                    m, tf = mfu(r["samples_per_s"], args.model, args.strategy, r.get("device_name", ""))
                    r["mfu"], r["train_tflops"] = m, tf
                    print(f"         {e:6s} on {r.get('device_name')}: {tf:.1f} TFLOP/s, MFU "
                          f"{'n/a (GPU not in budget.hardware)' if m is None else f'{m:.3f}'}")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": {k: v for k, v in vars(args).items() if k not in ("engine", "part")},
                                               "summary": summary}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
