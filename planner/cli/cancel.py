"""``clipbudget cancel DIR [RUN_ID ...]``: cancel the pending/running jobs of a sweep (all, or some runs).

Example::

    clipbudget cancel sweeps/s1 3f2a9c
    clipbudget resubmit sweeps/s1 --cancelled
"""

from __future__ import annotations

import argparse
import json
import sys


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("cancel", help="cancel running or pending runs of a sweep",
                              description=__doc__.split("\n\n")[0].replace("``", ""))
    p.add_argument("sweep_dir", metavar="DIR")
    p.add_argument("run_ids", nargs="*", metavar="RUN_ID", help="runs to cancel (unique prefixes work); default all")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(handler=run)
    return p


def run(args: argparse.Namespace) -> int:
    from runners.sweep import cancel

    report = cancel(args.sweep_dir, args.run_ids)
    if args.format == "json":
        json.dump(report.to_dict(), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        out = sys.stdout
        out.write(f"cancelled {len(report.cancelled)} run(s)\n")
        for run_id, job_id in report.cancelled:
            out.write(f"  {run_id}  job {job_id}\n")
        if report.not_active:
            states = {}
            for s in report.not_active.values():
                states[s] = states.get(s, 0) + 1
            out.write("not active: " + ", ".join(f"{n} {s}" for s, n in sorted(states.items())) + "\n")
        for run_id, err in report.errors.items():
            print(f"clipbudget: could not cancel {run_id}: {err}", file=sys.stderr)
    return 1 if report.errors else 0
