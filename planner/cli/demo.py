"""``clipbudget demo --out DIR``: the whole loop on this machine's CPU, offline (see :mod:`planner.study.demo`).

Fashion-MNIST with corrupted captions, a real adaptive study over tiny ViTs x {CLIP, FLIP} x quality fractions
with the local executor, the recommendation at the target, the recommended configuration and two rivals trained
at the target, predicted against measured, the seed paper's trends, and a report. Re-running resumes.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from planner.cli import _format as fmt


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser("demo", help="the whole loop on this CPU, offline: data, adaptive study, fit, "
                                           "recommendation, target runs, report",
                              description=__doc__.split("\n\n")[1])
    p.add_argument("--out", required=True, metavar="DIR", help="folder for everything (re-use it to resume)")
    p.add_argument("--executor", choices=("local", "debug"), default="local")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(handler=run)
    return p


def run(args: argparse.Namespace) -> int:
    import logging

    import optuna

    from planner.cli.study import _ledger_line
    from planner.study.demo import run_demo

    if args.verbose < 2:
        optuna.logging.set_verbosity(logging.WARNING)
    res = run_demo(args.out, executor=args.executor, seed=args.seed,
                   on_event=lambda kind, info: print(_ledger_line(kind, info), file=sys.stderr, flush=True))
    if args.format == "json":
        fmt.write_json([res.to_json()])
        return 0
    rec = res.recommended
    print(f"recommended at {fmt.sci(res.study['rungs_gflops'][-1])} GFLOPs: {rec['model']} {rec['strategy']} on the "
          f"top {rec['quality_fraction']:.0%}: predicted {fmt.pct(rec['predicted_top1'])} "
          f"[{fmt.pct(rec['ci_low'])}, {fmt.pct(rec['ci_high'])}]")
    print(f"study compute: {fmt.pct(res.study['spent_fraction'])} of running every configuration at the target")
    for r in res.target_runs:
        print(f"  {'*' if r['recommended'] else ' '} {r['model']} {r['strategy']} q{r['quality_fraction']:g}: predicted "
              f"{fmt.pct(r['predicted_top1'])} [{fmt.pct(r['ci_low'])}, {fmt.pct(r['ci_high'])}], measured "
              f"{fmt.pct(r['measured_top1'])}")
    print(f"{res.covered} of {len(res.target_runs)} target runs inside their 95% interval; recommendation "
          f"{100 * res.gap_to_best:.1f} points below the best measured")
    for t in res.trends:
        print(f"trend: {t}")
    print(f"report: {res.report or 'not written'}; everything in {res.out}")
    for n in res.notes:
        fmt.warn(n)
    return 0
