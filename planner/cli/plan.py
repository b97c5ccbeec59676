"""``clipbudget plan``: what a compute budget buys, ranked by predicted zero-shot accuracy.

Enumerates model × strategy × data-subset configurations under one budget (:func:`planner.plan.enumerate_plan`),
ranks them with a scaling-law fit (the built-in published prior, or ``--fit FIT.json``), warns about budgets
outside the range where CLIP has been trained (:mod:`planner.budget_checks`), and prints a table, JSON or
CSV, or writes a grid file for ``clipbudget submit``.

Examples::

    clipbudget plan --gflops 1e10
    clipbudget plan --gpu-hours 500 --gpu H100 --models ViT-B-32 ViT-B-16 --format json
    clipbudget plan --flops 1e19 --emit-grid grid.yaml --top 5 --data /data/shards --eval /data/imagenet
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import os
import sys
from typing import Any

from budget.hardware import DEFAULT_GPU, DEFAULT_MFU
from budget.vocabulary import DEFAULT_FLIP_MASK_RATIO, STRATEGIES
from planner.cli import _format as fmt
from planner.plan import (
    DEFAULT_MAX_EPOCHS,
    DEFAULT_MIN_EPOCHS,
    DEFAULT_MODELS,
    DEFAULT_POOL_SIZE,
    DEFAULT_QUALITY_FRACTIONS,
    LARGER_MODELS,
    PlanRow,
)

log = logging.getLogger(__name__)

#: Rows a table shows unless ``--top`` says otherwise (JSON and CSV carry every row).
DEFAULT_TABLE_ROWS = 20
#: Keys of every JSON/CSV row, in order (the ranking keys follow when ranked).
ROW_KEYS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(PlanRow))
RANK_KEYS: tuple[str, ...] = ("predicted_top1", "ci_low", "ci_high", "p_best", "recommended")
#: Further ranking keys (after RANK_KEYS in JSON/CSV): ``tied_with_best``, ``data_pool``, ``extrapolation``,
#: ``finding_terms`` (the stated assumptions a row rests on; see :mod:`planner.scaling.rank`).


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "plan",
        help="what a compute budget buys: configurations ranked by predicted accuracy",
        description="Enumerate model x strategy x data-subset configurations under a compute budget and rank "
                    "them by predicted ImageNet zero-shot top-1. Compute follows the seed paper: per-sample "
                    "forward GFLOPs (image + text tower, FLOPs = 2 x MACs) x samples seen; training FLOPs = 3 x "
                    "forward.",
        epilog="examples:\n  clipbudget plan --gflops 1e10\n"
               "  clipbudget plan --gpu-hours 500 --gpu H100 --format json\n"
               "  clipbudget plan --flops 1e19 --emit-grid grid.yaml --top 5 --data SHARDS --eval EVALSET",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    budget = p.add_argument_group("budget (exactly one)").add_mutually_exclusive_group(required=True)
    budget.add_argument("--gflops", type=fmt.positive_number, metavar="X",
                        help="paper convention: per-sample forward GFLOPs x samples seen (e.g. 1e10)")
    budget.add_argument("--flops", type=fmt.positive_number, metavar="X",
                        help="the same in FLOPs (1e19 FLOPs = --gflops 1e10); MACs are half this")
    budget.add_argument("--gpu-hours", type=fmt.positive_number, metavar="H",
                        help="GPU-hours on --gpu at --mfu (training FLOPs = 3 x forward)")
    p.add_argument("--gpu", default=DEFAULT_GPU,
                   help=f"GPU for GPU-hours (default {DEFAULT_GPU}; V100, H100, H200, L40S, ...)")
    p.add_argument("--mfu", type=fmt.fraction, default=DEFAULT_MFU,
                   help=f"model-FLOPs utilisation in (0, 1] (default {DEFAULT_MFU:g})")
    grid = p.add_argument_group("grid")
    grid.add_argument("--models", nargs="+", metavar="MODEL",
                      help="catalog names or open_clip JSON config paths (default: the seed paper's "
                           f"{' '.join(DEFAULT_MODELS)})")
    grid.add_argument("--strategies", nargs="+", metavar="S",
                      help=f"{' '.join(STRATEGIES)} (default: all four; flip is ViT-only)")
    grid.add_argument("--quality", nargs="+", type=fmt.fraction, metavar="Q",
                      default=list(DEFAULT_QUALITY_FRACTIONS),
                      help="top fractions of the pool by quality, each in (0, 1] (default 0.2 0.4 0.6 0.8 1.0)")
    grid.add_argument("--pool-size", type=fmt.positive_int, default=DEFAULT_POOL_SIZE, metavar="N",
                      help="image-text pairs in the data pool (default 3.4e9, the seed paper's WebLI subset)")
    grid.add_argument("--min-epochs", type=fmt.positive_number, default=DEFAULT_MIN_EPOCHS, metavar="E",
                      help="drop rows with fewer passes over their subset (default 1: none dropped)")
    grid.add_argument("--max-epochs", type=fmt.positive_number, default=DEFAULT_MAX_EPOCHS, metavar="E",
                      help="cap passes over a subset; capped rows are limited by data, not compute "
                           "(default 32, the most the seed paper ran)")
    grid.add_argument("--flip-mask", type=fmt.unit_interval, default=DEFAULT_FLIP_MASK_RATIO, metavar="R",
                      help=f"share of patches FLIP drops, in [0, 1) (default {DEFAULT_FLIP_MASK_RATIO:g})")
    grid.add_argument("--image-size", type=fmt.positive_int, metavar="PX",
                      help="image size in pixels (default: each model's own, 224 for the default models)")
    grid.add_argument("--context-length", type=fmt.positive_int, metavar="TOKENS",
                      help="text tokens (default: each model's own, 77 as in open_clip; the seed paper used 16)")
    out = p.add_argument_group("ranking and output")
    out.add_argument("--fit", metavar="FIT.json",
                     help="rank with this scaling-law fit (from clipbudget fit; default: the built-in prior)")
    out.add_argument("--data-pool", metavar="NAME", default=None,
                     help="the pool the quality fractions are taken from: laion (400M), laion2b, wit, commonpool, "
                          "yfcc15m, cc12m, cc3m, webli or custom (default: the fit's default pool; the built-in "
                          "prior's is commonpool, a raw web pool ranked by image-text score, whose quality ladders are "
                          "published at every scale; a pool without fitted rows is drawn as an assumption)")
    out.add_argument("--format", choices=fmt.FORMATS, default="table",
                     help="table (default), json (a list of objects) or csv; json/csv carry every row")
    out.add_argument("--top", type=fmt.positive_int, metavar="N",
                     help=f"rows the table shows (default {DEFAULT_TABLE_ROWS}); with --emit-grid, rows written")
    out.add_argument("--emit-grid", metavar="FILE", help="write the rows (or --top N of them) as a grid file "
                                                         "for clipbudget submit")
    out.add_argument("--data", metavar="DIR", help="training shards for --emit-grid")
    out.add_argument("--eval", metavar="DIR", help="evaluation set for --emit-grid")
    p.set_defaults(handler=run)
    return p


def run(args: argparse.Namespace) -> int:
    from budget.errors import ConfigError
    from budget.units import parse_budget
    from planner.budget_checks import check_budget, position, unit_suggestion

    if args.fit and not os.path.isfile(args.fit):
        raise ConfigError(f"fit file {args.fit!r} does not exist; write one with 'clipbudget fit RESULTS --out "
                          "FIT.json', or leave out --fit to rank with the built-in prior")
    if args.emit_grid and not (args.data and args.eval):
        raise ConfigError("--emit-grid needs --data DIR (training shards) and --eval DIR (evaluation set) "
                          "so that the grid can run as written")
    budget = parse_budget(gflops=args.gflops, flops=args.flops, gpu_hours=args.gpu_hours, gpu=args.gpu,
                          mfu=args.mfu)
    if not math.isfinite(budget.train_flops):
        raise ConfigError(f"budget of {budget.gflops:g} GFLOPs is too large to count (training FLOPs overflow); "
                          "give a finite budget such as --gflops 1e10")
    given = {"gflops": args.gflops, "flops": args.flops, "gpu_hours": args.gpu_hours}[budget.given_as]
    warnings = check_budget(budget, flag=budget.given_as, value=given)
    try:
        plan = _enumerate(budget, args)
    except ConfigError as exc:
        hint = unit_suggestion(budget, budget.given_as, given)
        if hint is None:
            raise
        raise ConfigError(f"{exc} (did you mean {hint}?)") from None
    optimum = _optimum(budget, args)
    wider = _wider_models(plan, optimum) if optimum and not args.models else []
    if wider:
        args.models = list(DEFAULT_MODELS) + wider
        plan = _enumerate(budget, args)
        warnings.append(f"the budget is beyond what the default models can use (compute-optimal "
                        f"{fmt.sci(optimum['gflops_per_sample'])} GFLOPs/sample, 95% of draws from "
                        f"{fmt.sci(optimum['gflops_per_sample_95'][0])}): candidates widened to the larger catalog "
                        f"models {' '.join(wider)}")
    warnings += plan.warnings
    from planner.scaling.rank import rank_plan

    ranking = rank_plan(plan.rows, fit=args.fit, data_pool=args.data_pool)
    rows = [dict(r) for r in ranking.rows]
    warnings += list(ranking.warnings)

    if args.emit_grid:
        selected = rows[: args.top] if args.top else rows
        path = _emit_grid(args, selected, budget)
        print(f"clipbudget: wrote {len(selected)} run{'s' if len(selected) != 1 else ''} to {path} "
              f"(next: clipbudget submit {path} --sweep-dir SWEEP_DIR --executor slurm|local)", file=sys.stderr)

    if args.format in ("json", "csv"):
        for w in warnings:
            fmt.warn(w)
        if plan.dropped:
            log.info("dropped: %s", _dropped_line(plan))
        keys = list(ROW_KEYS) + list(RANK_KEYS)
        extra = [k for k in (rows[0] if rows else {}) if k not in keys]
        if args.format == "json":
            fmt.write_json([{k: r.get(k) for k in keys + extra} for r in rows])
        else:
            fmt.write_csv(rows, keys + extra)
        return 0

    _print_table(plan, rows, ranking, budget, warnings, args, position(budget), optimum)
    return 0


def _optimum(budget: Any, args: argparse.Namespace) -> dict | None:
    """The compute-optimal size the fit implies at this budget (:func:`planner.scaling.rank.compute_optimal`;
    None for a ranker without one)."""
    import importlib

    optimum = getattr(importlib.import_module("planner.scaling.rank"), "compute_optimal", None)
    if optimum is None:
        return None
    return optimum(budget.gflops, fit=args.fit, data_pool=args.data_pool, pool_size=args.pool_size)


def _wider_models(plan: Any, optimum: dict) -> list[str]:
    """:data:`planner.plan.LARGER_MODELS` that cost more per sample than any planned CLIP row, when even the
    low end of the optimum's 95 % range is beyond the largest planned model (else none)."""
    from budget.cost import sample_cost_of

    largest = max((r.gflops_per_sample for r in plan.rows if r.strategy in ("clip", "clip_aug")), default=0.0)
    if optimum["gflops_per_sample_95"][0] <= largest:
        return []
    return [m for m in LARGER_MODELS if sample_cost_of({"model": m, "strategy": "clip"}).forward_gflops > largest]


def _optimum_line(o: dict | None, rows: list[dict]) -> list[str]:
    """The compute-optimal size at the budget, and whether the planned models can reach it."""
    if o is None:
        return []
    near = " and ".join(f"{m['model']} ({fmt.sci(m['gflops_per_sample'])})" for m in o["nearest_models"])
    lo, hi = o["gflops_per_sample_95"]
    lines = [f"compute-optimal by the fit (plain CLIP, whole pool): {fmt.sci(o['gflops_per_sample'])} GFLOPs/sample "
             f"(95% of draws: {fmt.sci(lo)}–{fmt.sci(hi)}), {fmt.human_count(o['samples_seen'])} samples seen; "
             f"nearest catalog models: {near or '-'}"
             + (" (at the edge of the sizes scanned: the optimum lies at or beyond it)" if o.get("at_grid_edge") else "")]
    largest = max((r["gflops_per_sample"] for r in rows if r["strategy"] in ("clip", "clip_aug")), default=0.0)
    planned = {r["model"] for r in rows}
    if lo > largest and any(m["model"] not in planned for m in o["nearest_models"]):
        lines.append(f"the budget can use larger models than any planned ({fmt.sci(largest)} GFLOPs/sample at most): "
                     f"add them with --models {' '.join(m['model'] for m in o['nearest_models'])}")
    return lines


def _enumerate(budget: Any, args: argparse.Namespace) -> Any:
    """:func:`planner.plan.enumerate_plan` with the command line's grid options."""
    from planner.plan import enumerate_plan

    return enumerate_plan(
        budget,
        models=tuple(args.models) if args.models else DEFAULT_MODELS,
        strategies=tuple(args.strategies) if args.strategies else None,
        quality_fractions=tuple(args.quality),
        pool_size=args.pool_size,
        min_epochs=args.min_epochs,
        max_epochs=args.max_epochs,
        flip_mask_ratio=args.flip_mask,
        image_size=args.image_size,
        context_length=args.context_length,
        gpu=budget.gpu,
        mfu=budget.mfu,
    )


# --- grid file -------------------------------------------------------------------------------------


def _emit_grid(args: argparse.Namespace, rows: list[dict], budget: Any) -> Any:
    """Write ``rows`` as a grid file (:func:`planner.plan.run_configs_for`), each run with its prediction."""
    from planner.plan import run_configs_for
    from runners.gridfile import write_grid

    configs = run_configs_for(rows, train_data=args.data, eval_data=args.eval, image_size=args.image_size,
                              context_length=args.context_length)
    comments = []
    for r in rows:
        note = f"{r['epochs']:.3g} epochs, {fmt.sci(r['gpu_hours'])} {budget.gpu}-hours"
        if r.get("predicted_top1") is not None:
            note = (f"predicted top-1 {fmt.pct(r['predicted_top1'])} "
                    f"[{fmt.pct(r.get('ci_low'))}, {fmt.pct(r.get('ci_high'))}], " + note)
        comments.append(note)
    header = [f"clipbudget plan: budget {budget.describe()}",
              f"{len(configs)} run(s); hyperparameters from runners.recipe.default_hyperparameters"]
    return write_grid(args.emit_grid, configs, comments=header, run_comments=comments)


# --- table -----------------------------------------------------------------------------------------


def _dropped_line(plan: Any) -> str:
    parts = ", ".join(f"{reason}: {n}" for reason, n in sorted(plan.dropped.items(), key=lambda kv: -kv[1]))
    return f"dropped {sum(plan.dropped.values())} of {plan.considered} configurations ({parts})"


def _print_table(plan: Any, rows: list[dict], ranking: Any, budget: Any, warnings: list[str],
                 args: argparse.Namespace, where: str, optimum: dict | None) -> None:
    top = args.top or DEFAULT_TABLE_ROWS
    shown = rows[:top]
    header = [
        f"Budget: {budget.describe()}",
        f"        {where}",
        ("Columns: GFLOPs/sample and total GFLOPs are forward, paper convention (image + text tower, FLOPs = 2 x "
        f"MACs); GPU-h = 3 x forward FLOPs on {budget.gpu} at {budget.mfu:.0%} MFU"),
    ]
    src = f"; sources: {', '.join(ranking.sources)}" if ranking.sources else ""
    if getattr(ranking, "citations", None):
        src += " (terms from published findings: cited with the stated assumptions below)"
    header.append(f"Fit: {ranking.fit_name}{src}")
    if getattr(ranking, "eval_dataset", None):
        header.append(f"Fit: predictions are {ranking.metric} on {ranking.eval_dataset}, the fitted study's own "
                      "evaluation set (never pooled with the prior's ImageNet rows)")
    if ranking.extrapolation:
        header.append("Fit: this budget is outside the fitted data's compute range: predictions are "
                      "extrapolation")
    columns = [("#", "right"), ("model", "left"), ("strategy", "left"), ("quality", "right"),
               ("unique", "right"), ("seen", "right"), ("epochs", "right"), ("GFLOPs/sample", "right"),
               ("total GFLOPs", "right"), ("GPU-h", "right"), ("params M", "right"), ("limited by", "left"),
               ("top-1 (95% CI)", "right"), ("p_best", "right")]
    table_rows, highlight = [], None
    for i, r in enumerate(shown):
        limit = r["limited_by"]
        if limit == "data":
            limit = f"data ({_unspent(r['total_gflops'], budget.gflops)} unspent)"
        mark = ""
        if r.get("recommended"):
            mark, highlight = "*", i
        elif r.get("tied_with_best"):
            mark = "="
        strategy = r["strategy"] + (f" {r['flip_mask_ratio']:.0%}" if r["strategy"] == "flip" else "")
        cells = [f"{mark}{i + 1}", str(r["model"]), strategy, f"{r['quality_fraction']:g}",
                 fmt.human_count(r["unique_samples"]), fmt.human_count(r["samples_seen"]), f"{r['epochs']:.3g}",
                 fmt.sci(r["gflops_per_sample"]), fmt.sci(r["total_gflops"]), fmt.sci(r["gpu_hours"]),
                 f"{r['params_m']:.1f}", limit]
        beyond = "~" if r.get("extrapolation") else ""
        cells += [(f"{beyond}{fmt.pct(r.get('predicted_top1'))} [{fmt.pct(r.get('ci_low'))}, "
                  f"{fmt.pct(r.get('ci_high'))}]"), fmt.pct(r.get("p_best"), 0)]
        table_rows.append(cells)
    footer = []
    best = next((i for i, r in enumerate(rows) if r.get("recommended")), None)
    if best is not None:
        r = rows[best]
        shown_note = "" if best < len(shown) else " (not shown; raise --top)"
        footer.append(
            f"* recommended: row {best + 1}{shown_note}: {r['model']} {r['strategy']} on the top "
            f"{r['quality_fraction']:.0%} of the pool ({fmt.human_count(r['unique_samples'])} unique), "
            f"{fmt.human_count(r['samples_seen'])} samples seen ({r['epochs']:.3g} "
            f"epoch{'' if r['epochs'] == 1 else 's'}), predicted top-1 "
            f"{fmt.pct(r.get('predicted_top1'))} [{fmt.pct(r.get('ci_low'))}, {fmt.pct(r.get('ci_high'))}], "
            f"best in {fmt.pct(r.get('p_best'), 0)} of draws (parameters, assumptions, model discrepancy); data pool {r.get('data_pool') or '-'}")
    tied = getattr(ranking, "tied", 0)
    if tied:
        footer.append(f"= tied with the recommended row within the uncertainty ({tied} row"
                      f"{'s' if tied > 1 else ''}): equally good as far as the fit can tell")
    assumptions = getattr(ranking, "assumptions", [])
    if assumptions:
        footer.append("stated assumptions behind these predictions (each drawn from its range in every bootstrap "
                      "draw; values are the point estimate's):")
        footer += fmt.assumption_lines(assumptions)
    if any(r.get("extrapolation") for r in shown):
        footer.append("~ prediction outside the fitted data's range (extrapolation)")
    footer += _optimum_line(optimum, rows)
    if len(rows) > len(shown):
        footer.append(f"showing {len(shown)} of {len(rows)} rows (--top N; --format json/csv carry every row)")
    if plan.dropped:
        footer.append(_dropped_line(plan))
    footer += [f"warning: {w}" for w in warnings]
    fmt.render_table(columns, table_rows, header_lines=header, footer_lines=footer, highlight=highlight)


def _unspent(total_gflops: float, budget_gflops: float) -> str:
    unspent = max(0.0, 1.0 - total_gflops / budget_gflops)
    return f"{unspent:.0%}" if unspent < 0.995 else f"{unspent:.4%}" if unspent < 0.999999 else ">99.9999%"
