"""Cold start of ``clipbudget plan`` against ``python -c "import pandas"`` (goal: median ratio ≤ 2.0).

Runs the two commands interleaved, N times each, as fresh processes on the same machine in the same run,
and prints both medians (seconds) and the median of the per-pair ratios. The installed ``clipbudget``
script next to this interpreter is used (``python -m planner.cli.main`` if there is none).

    python benchmarks/bench_plan_startup.py            # 15 pairs
    python benchmarks/bench_plan_startup.py -n 30 --args plan --gflops 1e10 --format table
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path


def _time(cmd: list[str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=15, help="runs of each command (default 15)")
    parser.add_argument("--args", nargs=argparse.REMAINDER, default=["plan", "--gflops", "1e10", "--format", "json"],
                        help="clipbudget arguments (default: plan --gflops 1e10 --format json)")
    opts = parser.parse_args()
    exe = Path(sys.executable).with_name("clipbudget")
    tool = [str(exe)] if exe.exists() else [sys.executable, "-m", "planner.cli.main"]
    tool += opts.args
    ref = [sys.executable, "-c", "import pandas"]
    for cmd in (tool, ref):  # warm the file cache once; not timed
        _time(cmd)
    tool_t, ref_t, ratios = [], [], []
    for _ in range(opts.n):
        a, b = _time(tool), _time(ref)
        tool_t.append(a)
        ref_t.append(b)
        ratios.append(a / b)
    print(f"clipbudget {' '.join(opts.args)}: median {statistics.median(tool_t):.3f} s "
          f"(min {min(tool_t):.3f}, max {max(tool_t):.3f})")
    print(f"python -c 'import pandas': median {statistics.median(ref_t):.3f} s "
          f"(min {min(ref_t):.3f}, max {max(ref_t):.3f})")
    ratio = statistics.median(ratios)
    print(f"median ratio (clipbudget / import pandas) over {opts.n} interleaved pairs: {ratio:.2f} "
          f"(goal <= 2.0: {'met' if ratio <= 2.0 else 'NOT met'}); cpus={os.cpu_count()}, load={os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
