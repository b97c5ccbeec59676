"""``clipbudget predict``: zero-shot top-1 of one configuration, with a 95 % interval.

Without ``--fit`` the built-in prior answers (published results + finding-based terms). Compute follows the
paper convention (per-sample forward GFLOPs, FLOPs = 2 × MACs, × samples seen).

Examples::

    clipbudget predict --model ViT-B-32 --samples-seen 1.36e9 --unique-samples 1.36e9 --quality-fraction 0.4
    clipbudget predict --fit FIT.json --model ViT-B-16 --samples-seen 3.4e9 --unique-samples 4e8 --format json
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from budget.vocabulary import DEFAULT_FLIP_MASK_RATIO, STRATEGIES
from planner.cli import _format as fmt

#: Keys of ``--format json`` (always present).
KEYS = ("predicted_top1", "ci_low", "ci_high", "form", "extrapolation", "sources")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "predict",
        help="predict zero-shot top-1 of one configuration (with a 95% interval)",
        description="Predict ImageNet zero-shot top-1 of one training configuration from a scaling-law fit "
                    "(the built-in published prior unless --fit is given).",
        epilog="example:\n  clipbudget predict --model ViT-B-32 --samples-seen 1.36e9 --unique-samples 1.36e9 "
               "--quality-fraction 0.4",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--fit", metavar="FIT.json", help="a fit written by 'clipbudget fit' (default: built-in prior)")
    p.add_argument("--model", required=True, metavar="M", help="catalog name or open_clip JSON config path")
    p.add_argument("--samples-seen", required=True, type=fmt.positive_number, metavar="S",
                   help="samples seen in training (e.g. 3.4e9 or 3.4B)")
    p.add_argument("--unique-samples", required=True, type=fmt.positive_number, metavar="U",
                   help="unique samples (epochs = S / U)")
    p.add_argument("--quality-fraction", type=fmt.fraction, default=1.0, metavar="Q",
                   help="top fraction of the pool kept by quality, in (0, 1] (default 1)")
    p.add_argument("--strategy", default="clip", choices=STRATEGIES)
    p.add_argument("--flip-mask", type=fmt.unit_interval, default=None, metavar="R",
                   help=f"FLIP's share of dropped patches, in [0, 1) (default {DEFAULT_FLIP_MASK_RATIO:g})")
    p.add_argument("--image-size", type=fmt.positive_int, default=None, metavar="PX")
    p.add_argument("--context-length", type=fmt.positive_int, default=None, metavar="TOKENS")
    p.add_argument("--data-pool", metavar="NAME", default=None,
                   help="the data pool the run trains on: laion (400M), laion2b, wit, commonpool, yfcc15m, cc12m, "
                        "cc3m, webli or custom (default: the fit's default pool; the built-in prior's is commonpool, a raw web "
                        "pool ranked by image-text score, where quality ladders are published at every scale)")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(handler=run)
    return p


def run(args: argparse.Namespace) -> int:
    from planner.scaling.predict import predict_config

    if args.unique_samples > args.samples_seen:
        from budget.errors import ConfigError

        raise ConfigError(f"--unique-samples {args.unique_samples:g} exceeds --samples-seen {args.samples_seen:g}: "
                          "a run cannot see more unique samples than samples (epochs = S / U must be >= 1)")
    res = predict_config(model=args.model, samples_seen=args.samples_seen, unique_samples=args.unique_samples,
                         quality_fraction=args.quality_fraction, strategy=args.strategy,
                         flip_mask_ratio=args.flip_mask if args.strategy == "flip" else None,
                         image_size=args.image_size, context_length=args.context_length, fit=args.fit,
                         data_pool=args.data_pool)
    if args.format == "json":
        json.dump(res, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    out = fmt.console()
    epochs = res["samples_seen"] / res["unique_samples"]
    plural = "" if epochs == 1 else "s"
    out.print(f"[bold]{res['model']}[/bold] {res['strategy']}, {fmt.human_count(res['samples_seen'])} samples seen, "
              f"{fmt.human_count(res['unique_samples'])} unique ({epochs:.3g} epoch{plural}), "
              f"quality {res['quality_fraction']:g}, {fmt.sci(res['total_gflops'])} GFLOPs (paper convention)")
    out.print(f"predicted zero-shot top-1: [bold]{fmt.pct(res['predicted_top1'])}[/bold] "
              f"(95% interval {fmt.pct(res['ci_low'])} – {fmt.pct(res['ci_high'])})")
    out.print(f"fit: {res['fit']}, {res['form']} form, metric {res['metric']}, data pool {res['data_pool'] or '-'}")
    for w in res["warnings"]:
        fmt.warn(w)
    if res["assumptions"]:
        out.print("stated assumptions behind this answer (each drawn from its range in every bootstrap draw):")
        for line in fmt.assumption_lines(res["assumptions"]):
            out.print(line, soft_wrap=True, markup=False, highlight=False)
    out.print("sources: " + "; ".join(res["sources"]), soft_wrap=True)
    return 0
