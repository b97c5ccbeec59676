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


def _prior_fixed(own_rows: list[dict], metric: str) -> dict:
    """Finding-based terms the user's own rows cannot identify keep the prior's values."""
    import numpy as np

    from planner.scaling.data import build_features
    from planner.scaling.fit import free_mask
    from planner.scaling.forms import TERM_PARAMS, make_form
    from planner.scaling.predict import load_model

    prior = load_model(None)
    x = build_features(own_rows, metric=metric)
    form = make_form("saturating")
    free = dict(zip(form.params, free_mask(form, x)))
    params = dict(zip(prior.form.params, np.asarray(prior.theta, dtype=float)))
    return {n: float(params[n]) for n in TERM_PARAMS if not free[n] and n in params}


def run(args: argparse.Namespace) -> int:
    from budget.errors import ConfigError

    out_path = Path(args.out)
    if out_path.exists() and out_path.is_dir():
        raise ConfigError(f"--out {out_path} is a folder; give a file name such as FIT.json")
    own = load_rows(args.results, args.metric)
    rows = list(own)
    fixed: dict = {}
    if not args.no_prior:
        from planner.prior import published_rows

        fixed = _prior_fixed(own, args.metric) if args.metric == "zeroshot_top1" else {}
        if args.metric != "zeroshot_top1":
            fmt.warn(f"the published prior reports zeroshot_top1 only; fitting {args.metric} without it")
        else:
            rows += published_rows(prior_only=True)
    n_work = args.bootstrap * len(rows)
    fit = _fit_with_progress(rows, args, fixed, show=n_work > 60_000 and sys.stderr.isatty())
    d = fit.to_dict()
    d["inputs"] = [str(p) for p in args.results]
    d["prior_included"] = not args.no_prior and args.metric == "zeroshot_top1"
    d["prior_fixed_terms"] = fixed
    d["n_own_rows"] = len(own)
    try:
        write_atomic(out_path, json.dumps(d, separators=(",", ":")))
    except OSError as exc:
        raise ConfigError(f"cannot write {out_path}: {exc.strerror or exc}") from None
    _print(fit, d, out_path)
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
        state = "fitted" if name in fit.free else "fixed (finding-based)" if not name.startswith("pool:") else "fixed"
        if name in d.get("prior_fixed_terms", {}):
            state = "fixed (prior)"
        rows.append([name, f"{fit.params[name]:.4g}", f"{lo:.4g} – {hi:.4g}" if name in fit.free else "-", state])
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
    s = fit.sensitivity
    if s.get("dropped_rows"):
        out.print(f"outlier sensitivity: refitting without each of the {len(s['dropped_rows'])} largest-residual "
                  f"points moves predictions by at most {s['max_prediction_change_points']:.2f} points")
    for w in fit.warnings:
        fmt.warn(w)
    out.print(f"wrote {out_path}")
