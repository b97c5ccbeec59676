"""``clipbudget collect DIR [--into STORE]``: gather a sweep's result rows into one table.

Writes one row per completed run to ``DIR/results.parquet`` (or ``--into``: a ``.parquet``/``.csv`` file,
or a results-store folder that rows are added to) and lists every run without a result, with its state,
its error and its job log.

Example::

    clipbudget collect sweeps/s1 --into results/all
    clipbudget fit results/all
"""

from __future__ import annotations

import argparse
import json
import sys


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("collect", help="gather a sweep's results into one table; list what is missing",
                              description=__doc__.split("\n\n")[0].replace("``", ""))
    p.add_argument("sweep_dir", metavar="DIR")
    p.add_argument("--into", metavar="STORE", help="a .parquet/.csv file or a results-store folder")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(handler=run)
    return p


def run(args: argparse.Namespace) -> int:
    from runners.sweep import collect

    report = collect(args.sweep_dir, into=args.into)
    if args.format == "json":
        json.dump(report.to_dict(), sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    out = sys.stdout
    out.write(f"collected {len(report.table)} of {report.n_runs} run(s) into {report.output}\n")
    if report.missing:
        out.write(f"missing {len(report.missing)}:\n")
        for m in report.missing:
            log = f"  (log: {m.log_path})" if m.log_path and m.state == "failed" else ""
            out.write(f"  {m.run_id}  {m.state}: {m.reason}{log}\n")
    return 0
