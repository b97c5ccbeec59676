"""Sweep speed: submitting and tracking a 200-config grid, and SLURM's overhead per tiny job.

    .venv/bin/python benchmarks/bench_sweep.py              # all parts (SLURM parts need slurm-local.sh up)
    .venv/bin/python benchmarks/bench_sweep.py --no-train   # skip the 6-job training part

What is measured, side by side in one run (medians of --repeat runs; wall-clock seconds):

1. ``submit`` of a 200-config grid without training. Honest path: the real SLURM submission with the jobs
   **held** (``--hold``: one real ``sbatch`` of one 200-task array, manifest written, 200 RunJob
   pickles), then ``cancel`` of all 200. Side by side: ``submit --dry-run`` (validation + planning
   only), so the ratio shows what the submission itself costs. Goal: < 5 s.
2. ``status`` of that sweep (200 held jobs: one sacct call through submitit's watcher), in-process and as
   a fresh ``clipbudget status --format json`` process. Goal: < 2 s.
3. SLURM overhead per tiny job: a 6-job grid of tiny real runs; per job, (time from submit to its result
   row) / (the run's own wall time from its row), and the sweep's wall time over the mean run time.

The local executor is not used for part 1: it starts one process per job at once (200 shells waiting
for slots), which is not what anyone would do with 200 configs on one machine.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _grid(path: Path, n: int, shards: Path, evalset: Path, samples: int = 128, batch: int = 32) -> Path:
    import yaml

    runs = [{"seed": i} for i in range(n)]
    doc = {
        "clipbudget_grid": 1,
        "sweep_name": f"bench{n}",
        "defaults": {"model": "tiny-vit-28", "strategy": "clip", "samples_seen": samples, "batch_size": batch,
                     "train_data": str(shards), "eval_data": str(evalset), "workers": 0,
                     "linear_probe": False, "retrieval": False, "eval_batch_size": 100},
        "resources": {"cpus_per_task": 1, "mem_gb": 1, "time_min": 10},
        "runs": runs,
    }  # fmt: skip
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _slurm_up() -> bool:
    if shutil.which("sbatch") is None:
        return False
    return subprocess.run(["scontrol", "ping"], capture_output=True, check=False).returncode == 0


def bench_submit_status(root: Path, shards: Path, evalset: Path, repeat: int) -> dict:
    from runners.sweep import cancel, status, submit

    grid = _grid(root / "grid200.yaml", 200, shards, evalset)
    out: dict[str, list[float]] = {"dry_run": [], "submit_hold": [], "status": [], "status_cli": [], "cancel": []}
    for i in range(repeat):
        t = time.perf_counter()
        r = submit(grid, root / f"dry{i}", executor="slurm" if _slurm_up() else "local", dry_run=True)
        out["dry_run"].append(time.perf_counter() - t)
        assert len(r.submitted) == 200
    if not _slurm_up():
        print("SLURM not reachable: only the dry run was measured (run scripts/slurm-local.sh up)")
        return out
    for i in range(repeat):
        d = root / f"held{i}"
        t = time.perf_counter()
        r = submit(grid, d, executor="slurm", hold=True)
        out["submit_hold"].append(time.perf_counter() - t)
        assert len(r.submitted) == 200 and len(r.arrays) == 1
        try:
            t = time.perf_counter()
            st = status(d)
            out["status"].append(time.perf_counter() - t)
            t = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "planner.cli.main", "status", str(d), "--format", "json"],
                                  capture_output=True, text=True, cwd=REPO, check=True)  # fmt: skip
            out["status_cli"].append(time.perf_counter() - t)
            counts = json.loads(proc.stdout)["counts"]
            assert sum(counts.values()) == 200, counts
        finally:
            t = time.perf_counter()
            c = cancel(d)
            out["cancel"].append(time.perf_counter() - t)
        print(f"  repeat {i}: states before cancel {st.counts}, cancelled {len(c.cancelled)}")
    return out


def bench_overhead(root: Path, shards: Path, evalset: Path) -> dict:
    from results.store import ResultStore
    from runners.sweep import status, submit

    grid = _grid(root / "grid6.yaml", 6, shards, evalset, samples=256, batch=32)
    d = root / "six"
    t0 = time.time()
    submit(grid, d, executor="slurm")
    while not status(d).done:
        time.sleep(0.25)
    sweep_wall = time.time() - t0
    rows = ResultStore(d / "results").read()
    from runners.sweep.folder import parse_iso

    per_job = []
    for _, row in rows.iterrows():
        finished = parse_iso(row["finished_at"])
        per_job.append(((finished - t0) / row["wall_seconds"], finished - t0, row["wall_seconds"]))
    return {
        "states": status(d).counts,
        "sweep_wall_s": sweep_wall,
        "mean_run_wall_s": statistics.mean(r[2] for r in per_job),
        "per_job": per_job,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-train", action="store_true", help="skip part 3 (the 6 tiny training jobs)")
    args = ap.parse_args()
    from tests._data_fixtures import build_demo_data

    root = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    shards, evalset = build_demo_data(root / "data", n_train=600, n_eval=100)
    print(f"bench_sweep: {root} (timings on a shared, loaded 2-core machine are noisy)")
    res = bench_submit_status(root, shards, evalset, args.repeat)
    med = {k: statistics.median(v) for k, v in res.items() if v}
    print(f"\n200-config grid (medians of {args.repeat}):")
    for k, v in med.items():
        print(f"  {k:12s} {v:7.3f} s")
    if "submit_hold" in med:
        print(f"  submit (held, real sbatch) / goal 5 s  = {med['submit_hold'] / 5:.2f}")
        print(f"  submit (held) / dry run               = {med['submit_hold'] / med['dry_run']:.2f}")
        print(f"  status (in-process) / goal 2 s        = {med['status'] / 2:.2f}")
        print(f"  status (fresh CLI process) / goal 2 s = {med['status_cli'] / 2:.2f}")
    if not args.no_train and _slurm_up():
        o = bench_overhead(root, shards, evalset)
        ratios = [r[0] for r in o["per_job"]]
        print("\n6 tiny real runs on the local SLURM:")
        print(f"  states {o['states']}; sweep wall {o['sweep_wall_s']:.1f} s; mean run wall {o['mean_run_wall_s']:.1f} s")
        print(f"  per job (submit→row) / run wall time: median {statistics.median(ratios):.2f} "
              f"(min {min(ratios):.2f}, max {max(ratios):.2f})")
        print(f"  sweep wall / mean run wall            = {o['sweep_wall_s'] / o['mean_run_wall_s']:.2f}")
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
