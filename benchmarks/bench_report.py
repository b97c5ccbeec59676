"""``clipbudget report`` from a budget (goal: ≤ 20 s) timed next to ``clipbudget plan`` for the same budget.

Runs the two commands interleaved, N times each, as fresh processes on the same machine in the same run, and
prints both medians (seconds), the ratio, and whether the 20-second goal is met. With ``--fit FIT.json`` and/or
``--sweep DIR`` it also times the report from that fit and from that sweep.

    python benchmarks/bench_report.py                        # 3 pairs at --gflops 1e10
    python benchmarks/bench_report.py -n 5 --fit planner/prior/prior_fit.json --sweep sweeps/demo
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

from bench_plan_startup import _time  # the same timer as plan's startup benchmark (this script's folder)

GOAL_S = 20.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=3, help="runs of each command (default 3)")
    parser.add_argument("--gflops", default="1e10", help="budget (default 1e10)")
    parser.add_argument("--fit", help="also time `clipbudget report --fit FIT.json`")
    parser.add_argument("--sweep", help="also time `clipbudget report SWEEP_DIR`")
    opts = parser.parse_args()
    exe = Path(sys.executable).with_name("clipbudget")
    tool = [str(exe)] if exe.exists() else [sys.executable, "-m", "planner.cli.main"]
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "report.html")
        plan = tool + ["plan", "--gflops", opts.gflops, "--format", "json"]
        report = tool + ["report", "--gflops", opts.gflops, "--out", out]
        _time(plan)  # warm the file cache once; not timed
        plan_t, report_t = [], []
        for _ in range(opts.n):
            plan_t.append(_time(plan))
            report_t.append(_time(report))
        pm, rm = statistics.median(plan_t), statistics.median(report_t)
        print(f"clipbudget plan --gflops {opts.gflops}: median {pm:.2f} s (min {min(plan_t):.2f}, max {max(plan_t):.2f})")
        print(f"clipbudget report --gflops {opts.gflops}: median {rm:.2f} s (min {min(report_t):.2f}, "
              f"max {max(report_t):.2f}); {rm / pm:.1f}x plan; goal <= {GOAL_S:g} s: "
              f"{'met' if rm <= GOAL_S else 'NOT met'}")
        extra = []
        if opts.fit:
            extra.append(("--fit " + opts.fit, tool + ["report", "--fit", opts.fit, "--out", out]))
        if opts.sweep:
            extra.append((opts.sweep, tool + ["report", opts.sweep, "--out", out]))
        for label, cmd in extra:
            times = [_time(cmd) for _ in range(opts.n)]
            print(f"clipbudget report {label}: median {statistics.median(times):.2f} s")
    print(f"n={opts.n}; cpus={os.cpu_count()}, load={os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
