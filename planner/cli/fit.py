"""``clipbudget fit``: fit scaling laws to results tables (plus, by default, the built-in published prior).

Reads CSV/parquet tables or results-store folders with at least ``model``, ``samples_seen``,
``unique_samples`` and the metric (``zeroshot_top1``, a fraction); ``strategy`` defaults to ``clip``,
``quality_fraction`` to 1, image size and text length to the model's own. Prints the chosen form, the
parameters with 95 % bootstrap intervals and the held-out errors; writes everything to FIT.json.

Examples::

    clipbudget fit sweep/results --out FIT.json
    clipbudget fit mine.csv --no-prior --form cherti --bootstrap 2000 --out FIT.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from planner.cli import _format as fmt
from results.atomic import write_atomic

REQUIRED = ("model", "samples_seen", "unique_samples")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "fit",
        help="fit scaling laws (with bootstrap intervals) to results tables",
        description="Fit scaling laws to results (CSV, parquet or results folders), by default together with "
                    "the built-in published prior; choose the form by held-out error; write FIT.json.",
        epilog="example:\n  clipbudget fit sweep/results --out FIT.json\n"
               "  clipbudget plan --gflops 1e10 --fit FIT.json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("results", nargs="+", metavar="RESULTS", help="CSV/parquet tables or results folders")
    p.add_argument("--out", required=True, metavar="FIT.json", help="where to write the fit")
    p.add_argument("--no-prior", action="store_true", help="fit the given data alone (no published rows)")
    p.add_argument("--form", default="auto", choices=("auto", "saturating", "cherti"),
                   help="scaling-law form (default auto: lowest held-out error)")
    p.add_argument("--bootstrap", type=fmt.positive_int, default=1000, metavar="N",
                   help="bootstrap resamples for intervals (default 1000)")
    p.add_argument("--metric", default="zeroshot_top1", metavar="COLUMN", help="accuracy column (a fraction)")
    p.add_argument("--frontier", choices=("all", "pareto", "hull"), default="all",
                   help="points to fit: all, the Pareto frontier or its upper convex hull in compute")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.set_defaults(handler=run)
    return p


def load_rows(paths, metric: str) -> list[dict]:
    """Rows of every table (completed runs only), as dicts; the source defaults to ``own``."""
    from budget.errors import ConfigError
    from results.tables import read_table

    rows: list[dict] = []
    for path in paths:
        df = read_table(path, required=REQUIRED + (metric,))
        if "status" in df.columns:
            df = df[df["status"].isna() | (df["status"] == "completed")]
        for rec in df.to_dict(orient="records"):
            rec = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in rec.items()}
            if not rec.get("source"):
                rec["source"] = "own"
            rows.append(rec)
    if not rows:
        raise ConfigError(f"no completed result rows in {', '.join(map(str, paths))}")
    return rows


#: Names under which the prior's evaluation set (ImageNet-1k validation) appears in results tables.
IMAGENET_NAMES = ("imagenet-1k", "imagenet", "imagenet1k", "ilsvrc2012", "imagenet-val", "in1k")


def _eval_sets(rows: list[dict]) -> list[str]:
    return sorted({str(r.get("eval_dataset")).strip() for r in rows if r.get("eval_dataset")})


def pooling_refusal(own: list[dict], metric: str) -> str | None:
    """Why ``own`` rows must not be pooled with the published (ImageNet) prior, or None.

    The prior's rows are ImageNet-1k zero-shot top-1; a study on another evaluation set (or another metric)
    measures something else, and one law through both fits neither (a Fashion-MNIST study pooled with the
    prior misses by ~20 points at 3x its compute; alone it extrapolates within a point). So such a study is
    fitted alone."""
    if metric != "zeroshot_top1":
        return (f"the published prior reports ImageNet zeroshot_top1 only; fitting {metric} on your rows alone "
                "(different metrics are never pooled into one law)")
    other = [e for e in _eval_sets(own) if e.lower() not in IMAGENET_NAMES]
    if other:
        return (f"your rows are evaluated on {', '.join(other)}, the prior's on ImageNet-1k: different evaluation "
                "sets are never pooled into one law, so your rows are fitted alone and predictions are in your "
                "evaluation set's top-1")
    return None


def _thin(own: list[dict]) -> tuple[str, str] | None:
    """(what the rows have, what to run next) when they are too few for a law of their own, else None."""
    models = sorted({str(r["model"]) for r in own})
    budgets = sorted({round(math.log10(float(r["samples_seen"])), 2) for r in own})
    if len(models) >= 2 and len(budgets) >= 2 or len(budgets) >= 3:
        return None
    have = (f"{len(own)} row{'s' if len(own) != 1 else ''} of {len(models)} model{'s' if len(models) != 1 else ''} "
            f"({', '.join(models)}) at {len(budgets)} sample count{'s' if len(budgets) != 1 else ''}")
    need = []
    if len(budgets) < 3:
        s = max(float(r["samples_seen"]) for r in own)
        need.append(f"the same model at two or three more sample counts (e.g. {s / 4:.3g} and {s * 3:.3g} samples "
                    "seen) to measure the data exponent")
    if len(models) < 2:
        need.append("a second model size (e.g. the next larger catalog model) at one of those counts, for the "
                    "capacity term")
    return have, "; ".join(need)


def what_is_missing(own: list[dict], metric: str) -> str | None:
    """Why ``own`` alone cannot be fitted and what to run next, or None when a law can be fitted."""
    thin = _thin(own)
    if thin is None:
        return None
    return (f"cannot fit a scaling law to {metric} from {thin[0]}: a law needs at least three compute points; "
            f"run next: {thin[1]}")


def run(args: argparse.Namespace) -> int:
    from budget.errors import ConfigError

    out_path = Path(args.out)
    if out_path.exists() and out_path.is_dir():
        raise ConfigError(f"--out {out_path} is a folder; give a file name such as FIT.json")
    own = load_rows(args.results, args.metric)
    from planner.scaling.data import build_features

    build_features(own, metric=args.metric)  # every input error first, one line each
    rows = list(own)
    fixed: dict = {}
    why_alone = None if args.no_prior else pooling_refusal(own, args.metric)
    if why_alone:
        fmt.warn(why_alone)
    elif not args.no_prior:
        from planner.prior import published_rows
        from planner.prior.build import PRIOR_ASSUMED

        fixed = dict(PRIOR_ASSUMED)
        rows += published_rows(prior_only=True)
    missing = what_is_missing(own, args.metric)
    if missing and (args.no_prior or why_alone):
        from budget.errors import ConfigError

        raise ConfigError(missing)
    n_work = args.bootstrap * len(rows)
    fit = _fit_with_progress(rows, args, fixed, show=n_work > 60_000 and sys.stderr.isatty())
    d = fit.to_dict()
    d["inputs"] = [str(p) for p in args.results]
    d["prior_included"] = not args.no_prior and not why_alone
    d["prior_refused"] = why_alone
    others = [e for e in _eval_sets(own) if e.lower() not in IMAGENET_NAMES]
    d["eval_dataset"] = ", ".join(others) or None  # set only when it is not the prior's ImageNet
    d["prior_fixed_terms"] = fixed
    d["n_own_rows"] = len(own)
    if missing:
        d["warnings"] = list(d["warnings"]) + [missing]
    try:
        write_atomic(out_path, json.dumps(d, separators=(",", ":")))
    except OSError as exc:
        raise ConfigError(f"cannot write {out_path}: {exc.strerror or exc}") from None
    _print(fit, d, out_path)
    if missing:
        have, need = _thin(own)
        fmt.warn(f"your own rows are {have}: the published prior supplies the law's shape; run next: {need}")
    return 0


def _fit_with_progress(rows, args, fixed, show: bool):
    from planner.scaling.fit import fit_rows

    kw = {"metric": args.metric, "form": args.form, "n_boot": args.bootstrap, "seed": args.seed,
              "frontier": args.frontier, "fixed": fixed}
    if not show:
        return fit_rows(rows, **kw)
    from rich.progress import Progress

    with Progress(console=fmt.console(sys.stderr), transient=True) as prog:
        task = prog.add_task("bootstrap", total=args.bootstrap)
        return fit_rows(rows, progress=lambda k: prog.advance(task, k), **kw)


def _print(fit, d: dict, out_path: Path) -> None:
    out = fmt.console()
    out.print(f"[bold]{fit.form}[/bold] form fitted to {fit.n_points} points "
              f"({', '.join(fit.sources)}); compute {fmt.sci(fit.compute_range_gflops[0])}–"
              f"{fmt.sci(fit.compute_range_gflops[1])} GFLOPs (paper convention); {len(fit.draws)} bootstrap draws")
    ints = fit.intervals()
    rows = []
    for name in fit.param_names:
        lo, hi = ints[name]
        if name in fit.free:
            state, cell = "fitted", f"{lo:.4g} – {hi:.4g}"
        elif name in fit.assumed:
            a_lo, a_hi = fit.assumed[name]
            state, cell = "stated assumption, drawn from its range", f"{a_lo:.4g} – {a_hi:.4g}"
        else:
            state, cell = "fixed", "-"
        rows.append([name, f"{fit.params[name]:.4g}", cell, state])
    fmt.render_table([("parameter", "left"), ("value", "right"), ("95% interval", "right"), ("", "left")], rows)
    err_rows = []
    for form, c in fit.candidates.items():
        if "skipped" in c:
            err_rows.append([form, "-", "-", "-", f"not fitted: {c['skipped']}"])
            continue
        h = c["heldout"]

        def cell(k: str, h: dict = h) -> str:
            return f"{h[k]['rmse_points']:.2f} (n={h[k]['n']})" if k in h else "-"

        err_rows.append([form + (" (chosen)" if form == fit.form else ""), f"{c['train']['rmse_points']:.2f}",
                         cell("leave_one_model_out"), cell("low_to_high_compute"), f"{c['n_free']} free"])
    fmt.render_table([("form", "left"), ("train RMSE", "right"), ("leave-one-model-out", "right"),
                      ("low→high compute", "right"), ("", "left")], err_rows,
                     title="error in points of top-1 (RMSE)")
    disc = fit.discrepancy or {}
    if disc.get("sigma_log_error"):
        out.print(f"model discrepancy: sigma {disc['sigma_log_error']:.3g} on the form's log scale "
                  f"({disc.get('method')}, {disc.get('n')} held-out points), added to every interval")
        known = disc.get("known_source")
        if known:
            out.print(f"  for a run of a source in the fit: sigma {known['sigma_log_error']:.3g} "
                      f"({known.get('method')}, {known.get('n')} held-out points)")
    s = fit.sensitivity
    if s.get("dropped_rows"):
        out.print(f"outlier sensitivity: refitting without each of the {len(s['dropped_rows'])} largest-residual "
                  f"points moves predictions by at most {s['max_prediction_change_points']:.2f} points")
    for w in fit.warnings:
        fmt.warn(w)
    out.print(f"wrote {out_path}")
