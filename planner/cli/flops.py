"""``clipbudget flops``: per-sample cost of CLIP models (analytic, paper convention).

GFLOPs are per sample, FLOPs = 2 × MACs (open_clip's ``docs/model_profile.csv`` convention; Cherti et al. and
DataComp count MACs, half these numbers); ``forward_gflops`` is strategy-adjusted (FLIP: kept patches;
SLIP: two more image views and the SSL head); ``train_gflops`` = 3 × forward.

Examples::

    clipbudget flops ViT-B-32 RN50
    clipbudget flops ViT-B-16 --strategy flip --flip-mask 0.75 --format json
    clipbudget flops --list
"""

from __future__ import annotations

import argparse
from typing import Any

from budget.vocabulary import DEFAULT_FLIP_MASK_RATIO, STRATEGIES
from planner.cli import _format as fmt

#: JSON keys, in order.
KEYS: tuple[str, ...] = (
    "model", "image_size", "context_length", "strategy", "flip_mask_ratio", "image_gflops", "text_gflops",
    "extra_gflops", "forward_gflops", "train_gflops", "params_m",
)
#: Keys of ``--list --format json``.
LIST_KEYS: tuple[str, ...] = ("model", "family", "tiny", "image_size", "context_length", "forward_gflops", "params_m")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "flops",
        help="per-sample GFLOPs and parameters of CLIP models",
        description="Per-sample forward GFLOPs (image + text tower, FLOPs = 2 x MACs, the seed paper's and "
                    "open_clip's convention), training GFLOPs (3 x forward) and parameters, from analytic "
                    "formulas.",
        epilog="examples:\n  clipbudget flops ViT-B-32 RN50\n"
               "  clipbudget flops ViT-B-16 --strategy flip --flip-mask 0.75 --format json\n"
               "  clipbudget flops --list",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("models", nargs="*", metavar="MODEL", help="catalog names or open_clip JSON config paths")
    p.add_argument("--image-size", type=fmt.positive_int, metavar="PX", help="pixels (default: the model's own)")
    p.add_argument("--context-length", type=fmt.positive_int, metavar="TOKENS",
                   help="text tokens (default: the model's own, 77 in open_clip; the seed paper used 16)")
    p.add_argument("--strategy", default="clip", metavar="S",
                   help=f"one of {', '.join(STRATEGIES)} (default clip); the cost is strategy-adjusted")
    p.add_argument("--flip-mask", type=fmt.unit_interval, default=DEFAULT_FLIP_MASK_RATIO, metavar="R",
                   help=f"share of patches FLIP drops, in [0, 1) (default {DEFAULT_FLIP_MASK_RATIO:g})")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.add_argument("--list", action="store_true", help="list the catalog's models with family and cost")
    p.set_defaults(handler=run)
    return p


def run(args: argparse.Namespace) -> int:
    from budget.errors import ConfigError

    if args.list:
        return _list(args)
    if not args.models:
        raise ConfigError("name at least one MODEL (e.g. clipbudget flops ViT-B-32), or use --list")
    records = [_cost(name, args) for name in args.models]
    if args.format == "json":
        fmt.write_json(records)
        return 0
    columns = [("model", "left"), ("strategy", "left"), ("image px", "right"), ("tokens", "right"),
               ("image GFLOPs", "right"), ("text GFLOPs", "right"), ("extra GFLOPs", "right"),
               ("forward GFLOPs", "right"), ("train GFLOPs", "right"), ("params M", "right")]
    rows = [[r["model"], r["strategy"] + (f" {r['flip_mask_ratio']:.0%}" if r["strategy"] == "flip" else ""),
             str(r["image_size"]), str(r["context_length"]), f"{r['image_gflops']:.2f}", f"{r['text_gflops']:.2f}",
             f"{r['extra_gflops']:.2f}", f"{r['forward_gflops']:.2f}", f"{r['train_gflops']:.2f}",
             f"{r['params_m']:.1f}"] for r in records]
    fmt.render_table(columns, rows, footer_lines=[
        ("per sample; FLOPs = 2 x MACs (forward, paper/open_clip convention; MACs as in Cherti et al./DataComp "
        "are half); train = 3 x forward")])
    return 0


def _cost(name: str, args: argparse.Namespace) -> dict[str, Any]:
    from budget.cost import sample_cost_of

    c = sample_cost_of({"model": name, "strategy": args.strategy, "image_size": args.image_size,
                        "context_length": args.context_length, "flip_mask_ratio": args.flip_mask})
    return {k: getattr(c, k) for k in KEYS}


def _list(args: argparse.Namespace) -> int:
    from budget.catalog import get_model, list_models
    from budget.flops import sample_cost

    records = []
    for name in list_models():
        spec = get_model(name)
        c = sample_cost(spec, "clip")
        records.append({"model": name, "family": spec.family, "tiny": spec.tiny, "image_size": c.image_size,
                        "context_length": c.context_length, "forward_gflops": c.forward_gflops,
                        "params_m": c.params_m})
    if args.format == "json":
        fmt.write_json(records)
        return 0
    columns = [("model", "left"), ("family", "left"), ("image px", "right"), ("tokens", "right"),
               ("forward GFLOPs", "right"), ("params M", "right")]
    rows = [[r["model"] + (" (tiny)" if r["tiny"] else ""), r["family"], str(r["image_size"]),
             str(r["context_length"]), f"{r['forward_gflops']:.2f}", f"{r['params_m']:.1f}"] for r in records]
    fmt.render_table(columns, rows, footer_lines=[
        (f"{len(records)} models; forward GFLOPs per sample with strategy clip at the model's own image size and "
        "text length (FLOPs = 2 x MACs)")])
    return 0
