"""The one place the report touches the scaling-law API (:mod:`planner.scaling`, :mod:`planner.prior`).

Everything the report needs from a fit goes through these functions, so that a change of that API is fixed
here and nowhere else: load a law, predict rows with 95 % intervals, rank a plan, refit with new rows, and
read what a fit knows about itself (parameters, assumptions, held-out validation). Optional parts of the
API (assumption lists, coverage, tied rows) are used when present and derived from the FIT.json otherwise.

Numpy only at import time; scipy is imported by :func:`refit` alone.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from budget.errors import ConfigError

#: Points of top-1 within which a row counts as tied with the best, when the ranking does not say.
TIE_POINTS = 0.05


@dataclass(frozen=True)
class Law:
    """A loaded scaling law: its name, form, fitted compute range and the raw FIT.json mapping."""

    name: str
    form: str
    path: str | None
    compute_range_gflops: tuple[float, float]
    info: Mapping[str, Any]
    model: Any  # planner.scaling.predict.ScalingModel
    is_prior: bool = False


@dataclass(frozen=True)
class Predictions:
    """Arrays over rows (fractions): point, 95 % interval, extrapolation flag, total GFLOPs (paper)."""

    top1: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    extrapolation: np.ndarray
    total_gflops: np.ndarray


def load_law(fit: str | os.PathLike | None = None) -> Law:
    """The built-in prior (``fit=None``) or a FIT.json; :class:`ConfigError` for a file of another format."""
    from planner.scaling.predict import load_model

    m = load_model(fit)
    return Law(name=m.name, form=m.form.name, path=None if fit is None else str(fit),
               compute_range_gflops=tuple(float(v) for v in m.compute_range_gflops), info=m.info, model=m,
               is_prior=fit is None)


def predict(law: Law, rows: Sequence[Mapping]) -> Predictions:
    """Predicted zero-shot top-1 with 95 % intervals for ``rows`` (plan-row or result-row mappings); a row
    without ``data_pool`` gets the fit's default pool, as :func:`planner.scaling.rank.rank_plan` gives it."""
    m = law.model
    pool = getattr(m, "default_pool", None)  # as rank_plan does: rows that name no pool train on the fit's default
    rows = [r if r.get("data_pool") or not pool else {**r, "data_pool": pool} for r in rows]
    x = m.features(rows)
    p = m.predict(x)
    return Predictions(top1=np.asarray(p.top1), ci_low=np.asarray(p.ci_low), ci_high=np.asarray(p.ci_high),
                       extrapolation=np.asarray(p.extrapolation, dtype=bool),
                       total_gflops=np.asarray(x.total_gflops, dtype=float))


def rank(rows: Sequence, law: Law) -> dict:
    """Rank plan rows: ``{"rows": [...best first, each with predicted_top1, ci_low, ci_high, p_best,
    recommended, tied], "warnings": [...], "sources": [...], "fit_name": str}``.

    ``tied`` is the ranking's ``tied_with_best`` when it says; otherwise a row is tied with the best when its
    point prediction is within :data:`TIE_POINTS` points of the best one's.
    """
    from planner.scaling.rank import rank_plan

    if law.path is None and not law.is_prior:  # a refit held in memory: rank through a temporary file
        with tempfile.TemporaryDirectory(prefix="clipbudget-report-") as tmp:
            p = Path(tmp) / "law.json"
            p.write_text(json.dumps(dict(law.info)), encoding="utf-8")
            out = rank(rows, Law(law.name, law.form, str(p), law.compute_range_gflops, law.info, law.model))
        out["fit_name"] = law.name
        return out
    r = rank_plan(rows, fit=law.path)
    out = [dict(row) for row in r.rows]
    if out:
        best = out[0]["predicted_top1"]
        for row in out:
            api_tied = row.get("tied_with_best", row.get("tied"))
            row["tied"] = bool(api_tied) if api_tied is not None else abs(row["predicted_top1"] - best) * 100 <= TIE_POINTS
    return {"rows": out, "warnings": list(getattr(r, "warnings", [])), "sources": list(getattr(r, "sources", [])) + list(getattr(r, "citations", [])),
            "fit_name": getattr(r, "fit_name", law.name), "extrapolation": bool(getattr(r, "extrapolation", False))}


def parameters(law: Law) -> list[dict]:
    """Every parameter: ``name``, ``value``, ``ci_low``/``ci_high`` (95 %, None when fixed), ``status``."""
    info = law.info
    params = info.get("params", {})
    ints = info.get("intervals_95", {})
    free = set(info.get("free", params))
    prior_fixed = set(info.get("prior_fixed_terms", {}) or {})
    out = []
    for name in info.get("param_names", list(params)):
        lo, hi = ints.get(name, (None, None)) if name in free else (None, None)
        status = ("fitted" if name in free else "fixed (prior)" if name in prior_fixed
                  else "fixed (finding-based)" if not name.startswith("pool:") else "fixed")
        out.append({"name": name, "value": float(params[name]), "ci_low": None if lo is None else float(lo),
                    "ci_high": None if hi is None else float(hi), "status": status})
    return out


def assumptions(law: Law) -> list[dict]:
    """Every term parameter a prediction may rest on: ``name``, ``value``, ``range`` (the range every bootstrap
    draw samples, for an assumption; None when fitted), ``fitted``, ``statement``, ``citation``.

    Uses the scaling API's own table (``ScalingModel.terms_table``, else ``.assumptions``) when it offers
    one, else derives it from the FIT.json and :mod:`planner.scaling.terms`."""
    for attr in ("terms_table", "assumptions"):
        fn = getattr(law.model, attr, None)
        if fn is None:
            continue
        try:
            got = fn() if callable(fn) else fn
            items = [dict(a) if isinstance(a, Mapping) else dict(vars(a)) for a in got]
        except Exception:  # noqa: BLE001 - an API in flux: fall back to the FIT.json
            continue
        return [_normalise_assumption(a, law) for a in items]
    from planner.scaling import terms

    params = law.info.get("params", {})
    free = set(law.info.get("free", ()))
    out = []
    for name in getattr(terms, "DEFAULTS", {}):
        if name not in params:
            continue
        out.append({"name": name, "value": float(params[name]), "range": None, "fitted": name in free,
                    "statement": "", "citation": getattr(terms, "CITATIONS", {}).get(name, "")})
    return out


def _normalise_assumption(a: dict, law: Law) -> dict:
    params = law.info.get("params", {})
    name = str(a.get("name", a.get("term", "")))
    value = a.get("value", params.get(name))
    rng = a.get("range")
    return {"name": name, "value": None if value is None else float(value),
            "range": None if rng is None else [float(v) for v in rng],
            "fitted": bool(a.get("fitted", name in set(law.info.get("free", ())))),
            "statement": str(a.get("statement", a.get("assumption", a.get("description", ""))) or ""),
            "citation": str(a.get("citation", a.get("source", "")) or "")}


def validation(law: Law) -> list[dict]:
    """Held-out validation of the fit: one dict per split with ``split``, ``mae_points``, ``rmse_points``,
    ``n``, ``coverage`` (share of held-out results inside their 95 % interval; None if the fit has none)."""
    held = law.info.get("heldout") or law.info.get("validation") or {}
    out = []
    if isinstance(held, Mapping):
        for split, v in held.items():
            if not isinstance(v, Mapping):
                continue
            cov = v.get("coverage", v.get("coverage_95"))
            out.append({"split": str(split), "mae_points": _f(v.get("mae_points")),
                        "rmse_points": _f(v.get("rmse_points")), "n": int(v.get("n", 0) or 0),
                        "coverage": _f(cov)})
    return out


def discrepancy(law: Law) -> dict | None:
    """The fit's model-discrepancy calibration (``sigma_log_error``, ``method``, ``n``), or None."""
    d = law.info.get("discrepancy")
    return dict(d) if isinstance(d, Mapping) and d else None


def _f(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def training_rows(law: Law) -> list[dict]:
    """The rows behind the fit that can still be read: the published rows (when the prior is part of it)
    and the fit's own input tables (when they still exist). Each has ``source`` and ``zeroshot_top1``."""
    from planner.prior import published_rows

    info = law.info
    metric = info.get("metric", "zeroshot_top1")
    rows: list[dict] = []
    sources = [str(s) for s in info.get("sources", ())]
    excluded = set(info.get("excluded_published_rows", ()))
    if any(s.startswith("published:") for s in sources) or info.get("prior_included"):
        rows += [r for r in published_rows(prior_only=True) if r.get("run_id") not in excluded]
    for path in info.get("inputs", ()) or ():
        if not Path(path).exists():
            continue
        try:
            from planner.cli.fit import load_rows

            rows += load_rows([path], metric)
        except Exception:  # noqa: BLE001 - an input that moved or changed is shown as missing, not fatal
            continue
    out = []
    for r in rows:
        try:
            y = float(r.get(metric))
        except (TypeError, ValueError):
            continue
        if math.isfinite(y):
            out.append({**r, "zeroshot_top1": y, "source": str(r.get("source") or "own")})
    return out


def refit(results: Sequence[str | os.PathLike], *, n_boot: int = 200, seed: int = 0) -> Law:
    """The fit ``clipbudget fit RESULTS --bootstrap n_boot`` makes of these results tables or folders (with the
    published prior where that command pools it), held in memory.

    Runs the ``fit`` command's handler in-process, its output captured: the policy of what may be pooled with
    the prior (evaluation sets, metrics) lives in that command, and its flags are a stable contract. Raises
    :class:`ConfigError` with the command's reason when it refuses.
    """
    import contextlib
    import io
    import logging

    from planner.cli.main import UsageError, build_parser

    with tempfile.TemporaryDirectory(prefix="clipbudget-report-") as tmp:
        p = Path(tmp) / "refit.json"
        argv = ["fit", *[str(r) for r in results], "--out", str(p), "--bootstrap", str(n_boot), "--seed", str(seed)]
        quiet = logging.getLogger("planner.scaling")  # the fit's warnings travel in FIT.json, shown by the report
        level = quiet.level
        quiet.setLevel(logging.ERROR)
        try:
            args = build_parser(("fit",)).parse_args(argv)
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                code = args.handler(args)
        except UsageError as exc:  # pragma: no cover - the arguments above are always valid
            raise ConfigError(str(exc)) from None
        finally:
            quiet.setLevel(level)
        if code not in (0, None) or not p.is_file():
            raise ConfigError(f"clipbudget fit exited with code {code} and wrote no fit")
        law = load_law(p)
    info = dict(law.info)
    own = info.get("n_own_rows", "?")
    with_prior = bool(info.get("prior_included"))
    name = f"refreshed fit ({law.form} form, {own} own rows{' + the published prior' if with_prior else ''})"
    return Law(name=name, form=law.form, path=None, compute_range_gflops=law.compute_range_gflops, info=info,
               model=law.model)


def check_fit_file(path: str | os.PathLike) -> None:
    """Raise :class:`ConfigError` (one line) unless ``path`` is a FIT.json this version reads."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"no fit file at {p} (make one with 'clipbudget fit RESULTS --out FIT.json')")
    load_law(p)
