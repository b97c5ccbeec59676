"""``clipbudget resubmit DIR [--failed] [--cancelled]``: submit failed and/or cancelled runs again.

Without ``--failed``/``--cancelled`` both are resubmitted. The runs resume from their checkpoints. The
executor and options of the sweep's last submission are used unless overridden.

Example::

    clipbudget resubmit sweeps/s1 --failed --time-min 120
"""

from __future__ import annotations

import argparse
import json
import sys

from planner.cli.submit import (
    EXECUTORS,
    add_resource_args,
    print_submit_report,
    resource_overrides,
)


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "resubmit", help="submit the failed and/or cancelled runs of a sweep again",
        description=__doc__.split("\n\n")[0].replace("``", ""),
    )  # fmt: skip
    p.add_argument("sweep_dir", metavar="DIR")
    p.add_argument("run_ids", nargs="*", metavar="RUN_ID", help="only these runs (unique prefixes work)")
    p.add_argument("--failed", action="store_true", help="resubmit failed runs")
    p.add_argument("--cancelled", action="store_true", help="resubmit cancelled runs")
    p.add_argument("--executor", metavar="NAME", help=f"back-end ({', '.join(EXECUTORS)}); default: as submitted")
    add_resource_args(p)
    p.add_argument("--device", default="auto")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(handler=run)
    return p


def run(args: argparse.Namespace) -> int:
    from runners.sweep import resubmit

    both = not args.failed and not args.cancelled
    report = resubmit(
        args.sweep_dir,
        failed=args.failed or both,
        cancelled=args.cancelled or both,
        run_ids=args.run_ids,
        executor=args.executor,
        resources=resource_overrides(args),
        array_parallelism=args.array_parallelism,
        max_retries=args.max_retries,
        device=args.device,
    )
    if args.format == "json":
        json.dump(report.to_dict(), sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    print_submit_report(report)
    return 0
