"""``clipbudget report``: one self-contained HTML page (or Markdown + figures) from a budget, a fit or a sweep.

Examples::

    clipbudget report --gflops 1e10 --out report.html                 # what the budget buys, with plots
    clipbudget report --gpu-hours 500 --gpu H100 --fit fit.json --out report.html
    clipbudget report --fit fit.json --out fit.html                     # a fit: parameters, residuals, curves
    clipbudget report sweeps/demo --out sweep.html                      # a sweep: ledger, runs, measured vs predicted
    clipbudget report --gflops 1e10 --format md --out report.md         # Markdown + report_files/*.svg
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from budget.hardware import DEFAULT_GPU, DEFAULT_MFU
from planner.cli import _format as fmt
from planner.plan import (
    DEFAULT_FLIP_MASK_RATIO,
    DEFAULT_MAX_EPOCHS,
    DEFAULT_MIN_EPOCHS,
    DEFAULT_MODELS,
    DEFAULT_POOL_SIZE,
    DEFAULT_QUALITY_FRACTIONS,
)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "report",
        help="write an HTML (or Markdown) report with plots from a budget, a fit or a sweep",
        description="Write one self-contained HTML file (figures inline, no network needed to open it) or Markdown "
                    "with SVG figures: from a budget (--gflops/--flops/--gpu-hours and the plan options), from a "
                    "fit (--fit alone) or from a sweep folder (SWEEP_DIR).",
        epilog="examples:\n  clipbudget report --gflops 1e10 --out report.html\n"
               "  clipbudget report --fit fit.json --out fit.html\n"
               "  clipbudget report sweeps/demo --out sweep.html\n"
               "  clipbudget report --gflops 1e10 --format md --out report.md",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("sweep_dir", nargs="?", metavar="SWEEP_DIR", help="a sweep folder (report from a sweep)")
    p.add_argument("--out", required=True, metavar="FILE", help="report file (.html, or .md with --format md)")
    p.add_argument("--format", choices=("html", "md"), default="html",
                   help="html (default: one self-contained file) or md (Markdown + <stem>_files/*.svg)")
    p.add_argument("--fit", metavar="FIT.json", help="scaling-law fit (default: the built-in prior); alone: "
                                                     "the report from that fit")
    p.add_argument("--top", type=fmt.positive_int, default=10, metavar="N", help="rows in ranked tables (default 10)")
    p.add_argument("--refit-bootstrap", type=fmt.positive_int, default=200, metavar="N",
                   help="bootstrap draws of a sweep report's refreshed fit (default 200)")
    budget = p.add_argument_group("budget (report from a budget)").add_mutually_exclusive_group()
    budget.add_argument("--gflops", type=fmt.positive_number, metavar="X",
                        help="paper convention: per-sample forward GFLOPs x samples seen (e.g. 1e10)")
    budget.add_argument("--flops", type=fmt.positive_number, metavar="X", help="the same in FLOPs")
    budget.add_argument("--gpu-hours", type=fmt.positive_number, metavar="H", help="GPU-hours on --gpu at --mfu")
    p.add_argument("--gpu", default=DEFAULT_GPU, help=f"GPU for GPU-hours (default {DEFAULT_GPU})")
    p.add_argument("--mfu", type=fmt.fraction, default=DEFAULT_MFU,
                   help=f"model-FLOPs utilisation in (0, 1] (default {DEFAULT_MFU:g})")
    grid = p.add_argument_group("plan options (as clipbudget plan)")
    grid.add_argument("--models", nargs="+", metavar="MODEL", help=f"default: {' '.join(DEFAULT_MODELS)}")
    grid.add_argument("--strategies", nargs="+", metavar="S", help="clip slip flip clip_aug (default: all four)")
    grid.add_argument("--quality", nargs="+", type=fmt.fraction, metavar="Q", default=list(DEFAULT_QUALITY_FRACTIONS),
                      help="quality fractions, each in (0, 1] (default 0.2 0.4 0.6 0.8 1.0)")
    grid.add_argument("--pool-size", type=fmt.positive_int, default=DEFAULT_POOL_SIZE, metavar="N",
                      help="image-text pairs in the pool (default 3.4e9)")
    grid.add_argument("--min-epochs", type=fmt.positive_number, default=DEFAULT_MIN_EPOCHS, metavar="E")
    grid.add_argument("--max-epochs", type=fmt.positive_number, default=DEFAULT_MAX_EPOCHS, metavar="E")
    grid.add_argument("--flip-mask", type=fmt.unit_interval, default=DEFAULT_FLIP_MASK_RATIO, metavar="R")
    grid.add_argument("--image-size", type=fmt.positive_int, metavar="PX")
    grid.add_argument("--context-length", type=fmt.positive_int, metavar="TOKENS")
    p.set_defaults(handler=run)
    return p


def run(args: argparse.Namespace) -> int:
    from budget.errors import ConfigError
    from planner.report import PlanOptions, check_output, report_kind, write_report

    t0 = time.perf_counter()
    given = {"gflops": args.gflops, "flops": args.flops, "gpu_hours": args.gpu_hours}
    budget = None
    if any(v is not None for v in given.values()):
        from budget.units import parse_budget

        budget = parse_budget(**given, gpu=args.gpu, mfu=args.mfu)
    kind = report_kind(budget=budget, fit=args.fit, sweep_dir=args.sweep_dir)
    check_output(args.out, args.format)
    if args.fit:
        from planner.report._scaling import check_fit_file

        check_fit_file(args.fit)
    if args.sweep_dir is not None:
        from pathlib import Path

        if not Path(args.sweep_dir).is_dir():
            raise ConfigError(f"sweep folder {args.sweep_dir} does not exist (clipbudget submit GRID --sweep-dir DIR "
                              "makes one)")
    options = PlanOptions(
        models=tuple(args.models) if args.models else DEFAULT_MODELS,
        strategies=tuple(args.strategies) if args.strategies else None,
        quality_fractions=tuple(args.quality), pool_size=args.pool_size, min_epochs=args.min_epochs,
        max_epochs=args.max_epochs, flip_mask_ratio=args.flip_mask, image_size=args.image_size,
        context_length=args.context_length,
    )
    path = write_report(args.out, budget=budget, fit=args.fit, sweep_dir=args.sweep_dir, options=options,
                        format=args.format, top=args.top, refit_bootstrap=args.refit_bootstrap)
    print(f"clipbudget: wrote the {kind} report to {path} ({time.perf_counter() - t0:.1f} s)", file=sys.stderr)
    return 0
