"""``clipbudget submit GRID.yaml --sweep-dir DIR --executor slurm|local|debug``: queue a grid and return.

Validates the whole grid, the executor, the partition and the sweep folder first (nothing is submitted
on any error), skips runs that already completed or already have a job, submits one job array per
resource shape and writes the sweep manifest. ``debug`` runs the jobs in this process before returning.

Example::

    clipbudget submit grid.yaml --sweep-dir sweeps/s1 --executor slurm --partition gpu --array-parallelism 8
    clipbudget status sweeps/s1
"""

from __future__ import annotations

import argparse
import json
import sys

from planner.cli._format import positive_int

# light: the back-end registry and the resources (no submitit, no torch)
from runners.executors import EXECUTORS, RESOURCE_FIELDS, ResourceOverrides


def add_resource_args(p: argparse.ArgumentParser) -> None:
    """Resource and scheduler flags shared by submit and resubmit (override the grid's ``resources:``)."""
    g = p.add_argument_group("resources (override the grid's resources: for every run)")
    g.add_argument("--partition", help="SLURM partition (checked with sinfo)")
    g.add_argument("--account", help="SLURM account")
    g.add_argument("--qos", help="SLURM quality of service")
    g.add_argument("--time-min", type=positive_int, metavar="MIN", help="wall-clock limit per job, minutes")
    g.add_argument("--gpus-per-node", type=int, metavar="N", help="GPUs per node (one process per GPU)")
    g.add_argument("--nodes", type=positive_int, metavar="N", help="nodes per job")
    g.add_argument("--cpus-per-task", type=positive_int, metavar="N", help="CPUs per process")
    g.add_argument("--mem-gb", type=float, metavar="GB", help="memory per node, GiB")
    g.add_argument("--array-parallelism", type=positive_int, metavar="N",
                   help="most jobs of one array running at once (local: most jobs at once)")
    g.add_argument("--max-retries", type=int, metavar="N",
                   help="most requeues after preemption/timeout (submitit max_num_timeout; default 3)")


def resource_overrides(args: argparse.Namespace) -> ResourceOverrides:
    """The resource flags given on the command line, as one partial ``Resources`` (checked on creation)."""
    return ResourceOverrides(**{name: getattr(args, name, None) for name in RESOURCE_FIELDS})


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "submit",
        help="submit a grid to SLURM, local processes or in-process (debug); returns at once",
        description=__doc__.split("\n\n")[0].replace("``", ""),
    )
    p.add_argument("grid", metavar="GRID.yaml", help="grid file (clipbudget plan --emit-grid, or by hand)")
    p.add_argument("--sweep-dir", required=True, metavar="DIR", help="sweep folder (created; re-use to resume)")
    p.add_argument("--executor", default="local", metavar="NAME",
                   help=f"back-end: {', '.join(EXECUTORS)} (default local)")
    add_resource_args(p)
    p.add_argument("--device", default="auto", help="device for the runner (auto, cpu, cuda)")
    p.add_argument("--hold", action="store_true", help="slurm: queue the jobs held (release with scontrol release)")
    p.add_argument("--dry-run", action="store_true", help="validate and show what would be submitted; write nothing")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(handler=run)
    return p


def run(args: argparse.Namespace) -> int:
    from runners.sweep import submit

    report = submit(
        args.grid,
        args.sweep_dir,
        executor=args.executor,
        resources=resource_overrides(args),
        array_parallelism=args.array_parallelism,
        max_retries=3 if args.max_retries is None else args.max_retries,
        hold=args.hold,
        dry_run=args.dry_run,
        device=args.device,
    )
    if args.format == "json":
        json.dump(report.to_dict(), sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    print_submit_report(report)
    return 0


def print_submit_report(report) -> None:
    from planner.cli._format import sci

    verb = "would submit" if report.dry_run else "submitted"
    out = sys.stdout
    arrays = f" as job(s) {', '.join(a for a in report.arrays if a)}" if report.arrays and any(report.arrays) else ""
    out.write(
        f"{verb} {len(report.submitted)} run(s) to {report.executor}{arrays} "
        f"({sci(report.planned_train_flops)} training FLOPs, {sci(report.planned_gpu_hours)} GPU-hours planned)\n"
    )
    for reason, ids in report.skipped.items():
        out.write(f"skipped {len(ids)} run(s): {reason}\n")
    if not report.dry_run:
        out.write(f"sweep {report.sweep_id} in {report.sweep_dir}: clipbudget status {report.sweep_dir}\n")
