"""What a report shows, as plain data: pure functions from a budget, a fit or a sweep to dataclasses.

No figures and no markup here (:mod:`planner.report.figures`, :mod:`planner.report.render` draw and write).
Predictions go through :mod:`planner.report._scaling`, plans through :func:`planner.plan.enumerate_plan`, sweeps
through :mod:`runners.sweep`'s public functions. Units: compute in GFLOPs (paper convention: per-sample
forward GFLOPs × samples seen) unless a name says otherwise; accuracies are fractions.

Example:
    >>> from budget.units import parse_budget
    >>> d = budget_data(parse_budget(gflops=1e10), PlanOptions(models=("ViT-B-32", "ViT-B-16")))
    >>> d.recommended["model"] in ("ViT-B-32", "ViT-B-16"), len(d.compute_grid_gflops) > 10
    (True, True)
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from budget.errors import ConfigError
from budget.hardware import DEFAULT_GPU, DEFAULT_MFU
from planner.plan import (
    DEFAULT_FLIP_MASK_RATIO,
    DEFAULT_MAX_EPOCHS,
    DEFAULT_MIN_EPOCHS,
    DEFAULT_MODELS,
    DEFAULT_POOL_SIZE,
    DEFAULT_QUALITY_FRACTIONS,
)
from planner.report import _scaling
from planner.report._scaling import Law

#: Compute points per curve (log-spaced) and the span around the budget they cover (decades below, above).
CURVE_POINTS = 41
CURVE_DECADES = (3.0, 2.0)
#: Quality fractions and epochs the "at this budget" curves sample.
QUALITY_GRID = tuple(round(q, 3) for q in np.linspace(0.05, 1.0, 20))
EPOCHS_GRID = tuple(float(e) for e in np.unique(np.round(np.geomspace(1.0, 64.0, 19), 2)))


@dataclass(frozen=True)
class PlanOptions:
    """The plan options of ``clipbudget plan`` (see :func:`planner.plan.enumerate_plan`)."""

    models: tuple[str, ...] = DEFAULT_MODELS
    strategies: tuple[str, ...] | None = None
    quality_fractions: tuple[float, ...] = DEFAULT_QUALITY_FRACTIONS
    pool_size: int = DEFAULT_POOL_SIZE
    min_epochs: float = DEFAULT_MIN_EPOCHS
    max_epochs: float = DEFAULT_MAX_EPOCHS
    flip_mask_ratio: float = DEFAULT_FLIP_MASK_RATIO
    image_size: int | None = None
    context_length: int | None = None

    def enumerate(self, budget_gflops: float, *, gpu: str = DEFAULT_GPU, mfu: float = DEFAULT_MFU,
                  **override: Any) -> Any:
        from planner.plan import enumerate_plan

        kw = dict(models=self.models, strategies=self.strategies, quality_fractions=self.quality_fractions,
                  pool_size=self.pool_size, min_epochs=self.min_epochs, max_epochs=self.max_epochs,
                  flip_mask_ratio=self.flip_mask_ratio, image_size=self.image_size,
                  context_length=self.context_length, gpu=gpu, mfu=mfu)
        kw.update(override)
        return enumerate_plan(budget_gflops, **kw)


@dataclass(frozen=True)
class Curve:
    """One prediction curve: x values, top-1 point and 95 % band (fractions), and which points are limited by
    the data pool (``data_limited``) or lie outside the fitted compute range (``extrapolation``)."""

    label: str
    x: np.ndarray
    top1: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    data_limited: np.ndarray
    extrapolation: np.ndarray
    key: tuple = ()


@dataclass(frozen=True)
class Points:
    """Observed results drawn over curves: compute (GFLOPs), top-1 (fraction), labels/sources."""

    x: np.ndarray
    y: np.ndarray
    source: list[str]


@dataclass(frozen=True)
class BudgetData:
    budget: Any  # budget.units.Budget
    conventions: dict
    position: str
    options: PlanOptions
    law_name: str
    law_form: str
    ranked: list[dict]
    recommended: dict
    dropped: dict
    warnings: list[str]
    sources: list[str]
    compute_grid_gflops: np.ndarray
    model_curves: list[Curve]
    strategy_curves: list[Curve]
    frontier: Curve
    frontier_winners: list[tuple[float, float, str]]  # (from GFLOPs, to GFLOPs, "model strategy")
    published: Points
    quality_curve: Curve
    epochs_curve: Curve
    data_limits: list[dict]
    assumptions: list[dict]
    validation: list[dict]
    compute_range_gflops: tuple[float, float]
    discrepancy: dict | None = None


@dataclass(frozen=True)
class FitData:
    law_name: str
    law_form: str
    path: str | None
    n_points: int | None
    compute_range_gflops: tuple[float, float]
    sources: list[str]
    parameters: list[dict]
    validation: list[dict]
    assumptions: list[dict]
    residuals: dict[str, np.ndarray]  # source -> predicted - observed (points of top-1)
    coverage_in_sample: dict[str, float]  # source -> share of rows inside their 95 % interval
    model_curves: list[Curve]
    points: Points
    warnings: list[str]
    sensitivity: dict
    discrepancy: dict | None = None


@dataclass(frozen=True)
class SweepData:
    sweep_dir: str
    sweep_id: str
    sweep_name: str | None
    executor: str | None
    ledger: dict
    counts: dict
    runs: list[dict]  # every run's state (runners.sweep.RunStatus as dicts)
    measured: list[dict]  # completed runs with measured and predicted top-1 and the interval
    law_name: str
    refit_name: str | None
    refit_note: str | None
    refit_parameters: list[dict]
    refit_validation: list[dict]
    refit_warnings: list[str]
    recommendation_budget_gflops: float | None
    recommendation: list[dict]  # ranked rows (best first) from the refreshed fit
    warnings: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------------ budget


def budget_data(budget: Any, options: PlanOptions = PlanOptions(), law: Law | None = None,
                compute_grid: Sequence[float] | None = None) -> BudgetData:
    """Everything the report from a budget shows (a :class:`budget.units.Budget`, its plan, the law)."""
    from planner.budget_checks import check_budget, position

    law = law or _scaling.load_law(None)
    plan = options.enumerate(budget.gflops, gpu=budget.gpu, mfu=budget.mfu)
    ranking = _scaling.rank(plan.rows, law)
    ranked = ranking["rows"]
    rec = next(r for r in ranked if r.get("recommended"))
    warnings = list(check_budget(budget, flag=budget.given_as, value=getattr(budget, budget.given_as, None)
                                 if budget.given_as != "gpu_hours" else budget.gpu_hours()))
    warnings += list(plan.warnings) + list(ranking["warnings"])

    lo, hi = CURVE_DECADES
    grid = np.asarray(compute_grid if compute_grid is not None
                      else np.geomspace(budget.gflops / 10**lo, budget.gflops * 10**hi, CURVE_POINTS))
    q_rec = float(rec["quality_fraction"])
    all_curves = _compute_curves(law, options, grid, quality=q_rec, budget=budget)
    model_curves = [c for c in all_curves if c.key[1] == rec["strategy"]]
    strategy_curves = [c for c in all_curves if c.key[0] == rec["model"]]
    frontier, winners = _frontier(all_curves, grid)

    published = _points(law)
    quality_curve = _quality_curve(law, options, budget, rec)
    epochs_curve = _epochs_curve(law, options, rec)
    return BudgetData(
        budget=budget, conventions=budget.conventions(), position=position(budget), options=options,
        law_name=law.name, law_form=law.form, ranked=ranked, recommended=rec, dropped=dict(plan.dropped),
        warnings=_unique(warnings), sources=ranking["sources"], compute_grid_gflops=grid,
        model_curves=model_curves, strategy_curves=strategy_curves, frontier=frontier, frontier_winners=winners,
        published=published, quality_curve=quality_curve, epochs_curve=epochs_curve,
        data_limits=_data_limits(options, budget, rec), assumptions=_scaling.assumptions(law),
        validation=_scaling.validation(law), compute_range_gflops=law.compute_range_gflops,
        discrepancy=_scaling.discrepancy(law),
    )


def _compute_curves(law: Law, options: PlanOptions, grid: np.ndarray, *, quality: float, budget: Any) -> list[Curve]:
    """Predicted top-1 against compute for every model × strategy the options allow, at one quality fraction."""
    rows_by_key: dict[tuple, list[tuple[int, dict]]] = {}
    for i, c in enumerate(grid):
        try:
            plan = options.enumerate(float(c), quality_fractions=(quality,), min_epochs=DEFAULT_MIN_EPOCHS,
                                     gpu=budget.gpu, mfu=budget.mfu)
        except ConfigError:
            continue
        for r in plan.rows:
            rows_by_key.setdefault((r.model, r.strategy), []).append((i, r.to_dict()))
    flat = [(k, i, r) for k, items in rows_by_key.items() for i, r in items]
    if not flat:
        return []
    p = _scaling.predict(law, [r for _, _, r in flat])
    curves = []
    for key in rows_by_key:
        idx = [j for j, (k, _, _) in enumerate(flat) if k == key]
        xs = grid[[flat[j][1] for j in idx]]
        limited = np.asarray([flat[j][2]["limited_by"] == "data" for j in idx])
        label = f"{key[0]} {key[1]}"
        curves.append(Curve(label=label, x=xs, top1=p.top1[idx], ci_low=p.ci_low[idx], ci_high=p.ci_high[idx],
                            data_limited=limited, extrapolation=p.extrapolation[idx], key=key))
    return curves


def _frontier(curves: list[Curve], grid: np.ndarray) -> tuple[Curve, list[tuple[float, float, str]]]:
    """The compute-optimal frontier: at every compute, the best curve's point (and which curve it is)."""
    best = np.full(len(grid), -np.inf)
    lo, hi = np.full(len(grid), np.nan), np.full(len(grid), np.nan)
    who: list[str | None] = [None] * len(grid)
    limited = np.zeros(len(grid), dtype=bool)
    extra = np.zeros(len(grid), dtype=bool)
    for c in curves:
        for j, x in enumerate(c.x):
            i = int(np.searchsorted(grid, x))
            if c.top1[j] > best[i]:
                best[i], lo[i], hi[i], who[i] = c.top1[j], c.ci_low[j], c.ci_high[j], c.label
                limited[i], extra[i] = c.data_limited[j], c.extrapolation[j]
    ok = np.isfinite(best)
    winners: list[tuple[float, float, str]] = []
    for i in np.flatnonzero(ok):
        if winners and winners[-1][2] == who[i]:
            winners[-1] = (winners[-1][0], float(grid[i]), who[i])
        else:
            winners.append((float(grid[i]), float(grid[i]), str(who[i])))
    return Curve("compute-optimal frontier", grid[ok], best[ok], lo[ok], hi[ok], limited[ok], extra[ok]), winners


def _points(law: Law) -> Points:
    rows = _scaling.training_rows(law)
    if not rows:
        return Points(np.zeros(0), np.zeros(0), [])
    good = []
    for r in rows:
        try:
            _scaling.predict(law, [r])
            good.append(r)
        except ConfigError:  # a model this catalog does not know: not drawable
            continue
    if not good:
        return Points(np.zeros(0), np.zeros(0), [])
    p = _scaling.predict(law, good)
    return Points(p.total_gflops, np.asarray([float(r["zeroshot_top1"]) for r in good]),
                  [str(r["source"]) for r in good])


def _quality_curve(law: Law, options: PlanOptions, budget: Any, rec: dict) -> Curve:
    plan = options.enumerate(budget.gflops, models=(rec["model"],), strategies=(rec["strategy"],),
                             quality_fractions=QUALITY_GRID, min_epochs=DEFAULT_MIN_EPOCHS, gpu=budget.gpu,
                             mfu=budget.mfu)
    rows = sorted((r.to_dict() for r in plan.rows), key=lambda r: r["quality_fraction"])
    p = _scaling.predict(law, rows)
    return Curve(f"{rec['model']} {rec['strategy']}", np.asarray([r["quality_fraction"] for r in rows]),
                 p.top1, p.ci_low, p.ci_high, np.asarray([r["limited_by"] == "data" for r in rows]),
                 p.extrapolation, key=(rec["model"], rec["strategy"]))


def _epochs_curve(law: Law, options: PlanOptions, rec: dict) -> Curve:
    """At the recommended row's samples seen, a subset of ``seen / epochs`` unique samples of its quality
    subset (only epochs the subset allows: unique ≤ pool × quality fraction)."""
    seen = float(rec["samples_seen"])
    subset = float(rec["pool_size"]) * float(rec["quality_fraction"])
    rows = []
    for e in EPOCHS_GRID:
        unique = seen / e
        if unique > subset * (1 + 1e-9) or unique < 1:
            continue
        rows.append({**rec, "unique_samples": unique, "epochs": e})
    if not rows:
        rows = [dict(rec)]
    p = _scaling.predict(law, rows)
    return Curve(f"{rec['model']} {rec['strategy']}", np.asarray([r["epochs"] for r in rows]), p.top1, p.ci_low,
                 p.ci_high, np.asarray([r["epochs"] > options.max_epochs for r in rows]), p.extrapolation,
                 key=(rec["model"], rec["strategy"]))


def _data_limits(options: PlanOptions, budget: Any, rec: dict) -> list[dict]:
    """Per model (recommended strategy and quality fraction): the compute above which the pool, not compute,
    limits (``max_epochs`` passes over pool × quality fraction)."""
    from budget.flops import sample_cost

    out = []
    subset = options.pool_size * float(rec["quality_fraction"])
    for model in options.models:
        try:
            cost = sample_cost(model, rec["strategy"], image_size=options.image_size,
                               context_length=options.context_length, flip_mask_ratio=options.flip_mask_ratio)
        except ConfigError:
            continue
        limit = cost.forward_gflops * options.max_epochs * subset
        out.append({"model": model, "strategy": rec["strategy"], "quality_fraction": float(rec["quality_fraction"]),
                    "gflops_per_sample": cost.forward_gflops, "data_limit_gflops": limit,
                    "limited_at_budget": limit < budget.gflops})
    return out


# --------------------------------------------------------------------------------------------- fit


def fit_data(law: Law) -> FitData:
    """What the report from a fit shows: parameters, residuals by source, held-out table, curves."""
    rows = _scaling.training_rows(law)
    drawable, residuals, inside = [], {}, {}
    for r in rows:
        try:
            _scaling.predict(law, [r])
        except ConfigError:
            continue
        drawable.append(r)
    if drawable:
        p = _scaling.predict(law, drawable)
        obs = np.asarray([float(r["zeroshot_top1"]) for r in drawable])
        src = np.asarray([str(r["source"]) for r in drawable])
        for s in sorted(set(src.tolist())):
            m = src == s
            residuals[s] = (p.top1[m] - obs[m]) * 100.0
            inside[s] = float(np.mean((obs[m] >= p.ci_low[m]) & (obs[m] <= p.ci_high[m])))
        points = Points(p.total_gflops, obs, src.tolist())
    else:
        points = Points(np.zeros(0), np.zeros(0), [])
    lo, hi = law.compute_range_gflops
    grid = np.geomspace(max(lo, 1e3) / 3, hi * 3, CURVE_POINTS)
    models = _fit_models(drawable) or list(DEFAULT_MODELS)
    curves = []
    for model in models:
        rs = [{"model": model, "strategy": "clip", "samples_seen": c / g, "unique_samples": c / g,
               "quality_fraction": 1.0} for c, g in zip(grid, [_gflops_per_sample(model)] * len(grid)) if g]
        if not rs:
            continue
        p = _scaling.predict(law, rs)
        curves.append(Curve(f"{model} clip", p.total_gflops, p.top1, p.ci_low, p.ci_high,
                            np.zeros(len(rs), dtype=bool), p.extrapolation, key=(model, "clip")))
    info = law.info
    return FitData(
        law_name=law.name, law_form=law.form, path=law.path, n_points=info.get("n_points"),
        compute_range_gflops=law.compute_range_gflops, sources=[str(s) for s in info.get("sources", ())],
        parameters=_scaling.parameters(law), validation=_scaling.validation(law),
        assumptions=_scaling.assumptions(law), residuals=residuals, coverage_in_sample=inside,
        model_curves=curves, points=points, warnings=[str(w) for w in info.get("warnings", ())],
        sensitivity=dict(info.get("sensitivity") or {}), discrepancy=_scaling.discrepancy(law),
    )


def _fit_models(rows: list[dict]) -> list[str]:
    """Up to six models of the fit's data, most rows first, then by name."""
    counts: dict[str, int] = {}
    for r in rows:
        counts[str(r["model"])] = counts.get(str(r["model"]), 0) + 1
    return sorted(counts, key=lambda m: (-counts[m], m))[:6]


def _gflops_per_sample(model: str) -> float | None:
    from budget.flops import sample_cost

    try:
        return sample_cost(model, "clip").forward_gflops
    except ConfigError:
        return None


# ------------------------------------------------------------------------------------------- sweep


def sweep_data(sweep_dir: str | os.PathLike, *, law: Law | None = None, refit_bootstrap: int = 200,
               gpu: str = DEFAULT_GPU, mfu: float = DEFAULT_MFU) -> SweepData:
    """What the report from a sweep shows. Reads the sweep folder (nothing is written there).

    Raises:
        ConfigError: not a sweep folder, or no completed run yet.
    """
    from runners.sweep import load_manifest, status

    root = Path(sweep_dir)
    manifest = load_manifest(root)
    st = status(root)
    runs = [r.to_dict() for r in st.runs]
    completed = _completed_rows(root, set(manifest.get("runs", {})))
    if not completed:
        counts = ", ".join(f"{n} {s}" for s, n in sorted(st.counts.items())) or "no runs"
        raise ConfigError(f"sweep {root} has no completed runs yet ({counts}); wait for them "
                          f"(clipbudget status {root} --watch) or resubmit failed ones (clipbudget resubmit {root})")
    law = law or _scaling.load_law(None)
    measured, warnings = [], []
    predictable = []
    for r in completed:
        try:
            _scaling.predict(law, [r])
            predictable.append(r)
        except ConfigError as exc:
            warnings.append(f"run {r.get('run_id')}: no prediction ({exc})")
    if predictable:
        p = _scaling.predict(law, predictable)
        for i, r in enumerate(predictable):
            measured.append({"run_id": r.get("run_id"), "model": r.get("model"), "strategy": r.get("strategy"),
                             "quality_fraction": r.get("quality_fraction"), "samples_seen": r.get("samples_seen"),
                             "total_gflops": float(p.total_gflops[i]), "measured_top1": float(r["zeroshot_top1"]),
                             "predicted_top1": float(p.top1[i]), "ci_low": float(p.ci_low[i]),
                             "ci_high": float(p.ci_high[i]), "eval_dataset": r.get("eval_dataset")})

    refit_law, note = None, None
    try:
        refit_law = _scaling.refit([root / "results"], n_boot=refit_bootstrap)
    except ConfigError as exc:
        note = f"the fit was not refreshed: {exc}"
    except Exception as exc:  # noqa: BLE001 - the report still shows the runs when a refit fails
        note = f"the fit was not refreshed: {type(exc).__name__}: {exc}"
    if refit_law is not None and measured:
        q = _scaling.predict(refit_law, predictable)
        for i, m in enumerate(measured):
            m.update(refit_top1=float(q.top1[i]), refit_low=float(q.ci_low[i]), refit_high=float(q.ci_high[i]))
    basis = refit_law or law
    rec_rows, rec_budget = [], None
    if predictable:
        rec_budget = max(float(r.get("total_gflops") or 0) or float(_scaling.predict(law, [r]).total_gflops[0])
                         for r in predictable)
        opts = PlanOptions(
            models=tuple(sorted({str(r["model"]) for r in predictable})),
            strategies=tuple(sorted({str(r.get("strategy") or "clip") for r in predictable})),
            quality_fractions=tuple(sorted({float(r.get("quality_fraction") or 1.0) for r in predictable})),
            pool_size=int(max(float(r.get("pool_size") or r.get("unique_samples") or 1) for r in predictable)),
        )
        try:
            plan = opts.enumerate(rec_budget * (1 + 1e-9), gpu=gpu, mfu=mfu)
            rec_rows = _scaling.rank(plan.rows, basis)["rows"]
        except ConfigError as exc:
            warnings.append(f"no recommendation: {exc}")
    return SweepData(
        sweep_dir=str(root), sweep_id=st.sweep_id, sweep_name=st.sweep_name, executor=st.executor,
        ledger=st.ledger.to_dict(), counts=dict(st.counts), runs=runs, measured=measured, law_name=law.name,
        refit_name=refit_law.name if refit_law else None, refit_note=note,
        refit_parameters=_scaling.parameters(refit_law) if refit_law else [],
        refit_validation=_scaling.validation(refit_law) if refit_law else [],
        refit_warnings=_refit_warnings(refit_law),
        recommendation_budget_gflops=rec_budget, recommendation=rec_rows, warnings=warnings,
    )


def _refit_warnings(law: Law | None) -> list[str]:
    if law is None:
        return []
    out = [f"fitted without the published prior: {law.info['prior_refused']}"] if law.info.get("prior_refused") else []
    return out + [str(w) for w in law.info.get("warnings", ())]


def _completed_rows(root: Path, run_ids: set[str]) -> list[dict]:
    """The sweep's completed result rows (one per run), without writing into the sweep folder."""
    from results.store import ResultStore

    df = ResultStore(root / "results").read(latest=True)
    if not len(df):
        return []
    df = df[(df["status"] == "completed") & df["run_id"].isin(sorted(run_ids))]
    out = []
    for rec in df.sort_values("run_id").to_dict(orient="records"):
        rec = {k: (None if _isnan(v) else v) for k, v in rec.items()}
        if rec.get("zeroshot_top1") is None:
            continue
        rec.setdefault("source", "own")
        rec["source"] = rec.get("source") or "own"
        out.append(rec)
    return out


def _isnan(v: Any) -> bool:
    return isinstance(v, float) and math.isnan(v)


def _unique(items: Sequence[str]) -> list[str]:
    out: list[str] = []
    for s in items:
        if s not in out:
            out.append(s)
    return out


__all__ = ["BudgetData", "Curve", "FitData", "PlanOptions", "Points", "SweepData", "budget_data", "fit_data",
           "sweep_data"]

