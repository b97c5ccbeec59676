"""Fit scaling-law forms to result rows: Huber loss on log error, multi-start L-BFGS-B, bootstrap,
held-out validation, form choice and an outlier-sensitivity check. Pure: rows in, a :class:`FitResult` out.

Practice follows Epoch AI's Chinchilla replication and Nezhurina et al. 2025: residuals on the log-error
scale (``log(1 - top1)``), Huber loss (δ = 0.05 by default, ≈5 % relative error), L-BFGS-B from a grid of
starting points keeping the best, bounds that keep exponents physical, bootstrap percentile intervals
(1,000 resamples by default, :mod:`planner.scaling.bootstrap`), and a model discrepancy fitted to
held-out residuals (:func:`planner.scaling.discrepancy.discrepancy_sigma`: in the data, per decade of
compute and per decade of unique samples outside it, maximum a posteriori under a stated prior; for a run of
a new source and for a run of a fitted source) so that 95 % intervals cover held-out results.

Example:
    >>> rows = [{"model": m, "samples_seen": s, "unique_samples": s, "zeroshot_top1": a}
    ...         for m, s, a in [("ViT-B-32", 1e8, 0.30), ("ViT-B-32", 1e9, 0.50), ("ViT-B-16", 1e9, 0.56),
    ...                         ("ViT-B-16", 1e8, 0.34)]]
    >>> fit = fit_rows(rows, form="cherti", n_boot=50)
    >>> fit.form, fit.params["alpha"] < 0
    ('cherti', True)
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from budget.errors import ConfigError
from planner.scaling import terms
from planner.scaling.bootstrap import bootstrap_draws, huber
from planner.scaling.data import (
    Features,
    build_features,
    data_hash,
    select_frontier,
)
from planner.scaling.forms import CORE_SATURATING, FORM_NAMES, TERM_PARAMS, Form, log_error, make_form
from planner.scaling.forms import accuracy as form_accuracy
from planner.scaling.forms import target as form_target

log = logging.getLogger(__name__)

HUBER_DELTA = 0.05
FIT_FORMAT = 2


@dataclass(frozen=True)
class FitResult:
    """A fitted form with bootstrap draws; ``to_dict()`` is what FIT.json holds."""

    form: str
    param_names: tuple[str, ...]
    theta: tuple[float, ...]
    free: tuple[str, ...]
    draws: np.ndarray  # [B, P]
    reference_pool: str
    pools: tuple[str, ...]
    compute_range_gflops: tuple[float, float]
    samples_range: tuple[float, float]
    n_points: int
    train_error: dict
    heldout: dict
    candidates: dict
    sensitivity: dict
    warnings: tuple[str, ...]
    data_hash: str
    sources: tuple[str, ...]
    metric: str
    frontier: str
    huber_delta: float
    seed: int
    extra: dict = field(default_factory=dict)
    assumed: dict = field(default_factory=dict)  # {name: (low, high)}: assumptions drawn in every draw
    discrepancy: dict = field(default_factory=dict)  # {"sigma_log_error": s, "groups": ..., "n": ...}
    quality_pools: tuple[str, ...] = ()
    pool_compute_ranges: dict = field(default_factory=dict)  # {"pool:<name>": (lo, hi)} GFLOPs, paper convention

    @property
    def params(self) -> dict[str, float]:
        return dict(zip(self.param_names, self.theta))

    def intervals(self, level: float = 0.95) -> dict[str, tuple[float, float]]:
        """Bootstrap percentile interval of every parameter (natural units)."""
        a = (1 - level) / 2 * 100
        lo = np.percentile(self.draws, a, axis=0)
        hi = np.percentile(self.draws, 100 - a, axis=0)
        return {n: (float(lo[i]), float(hi[i])) for i, n in enumerate(self.param_names)}

    def covariance(self) -> list[list[float]]:
        free = [self.param_names.index(n) for n in self.free]
        return np.cov(self.draws[:, free], rowvar=False).reshape(len(free), len(free)).tolist()

    def to_dict(self) -> dict:
        from planner import __version__

        ints = self.intervals()
        return {
            "clipbudget_fit": FIT_FORMAT,
            "clipbudget_version": __version__,
            "form": self.form,
            "param_names": list(self.param_names),
            "params": self.params,
            "free": list(self.free),
            "fixed_terms": [n for n in self.param_names if n in TERM_PARAMS and n not in self.free],
            "assumed_ranges": {n: list(v) for n, v in self.assumed.items()},
            "assumptions": terms.assumption_table({n: v for n, v in self.params.items() if n not in
                                                   CORE_SATURATING}, self.free, self.assumed)
            if self.form == "saturating" else [],
            "discrepancy": self.discrepancy,
            "quality_pools": list(self.quality_pools),
            "pool_compute_ranges": {k: list(v) for k, v in self.pool_compute_ranges.items()},
            "intervals_95": {n: list(v) for n, v in ints.items()},
            "covariance_free": self.covariance(),
            "draws": np.round(self.draws, 7).tolist(),
            "reference_pool": self.reference_pool,
            "pools": list(self.pools),
            "compute_range_gflops": list(self.compute_range_gflops),
            "samples_range": list(self.samples_range),
            "n_points": self.n_points,
            "train_error": self.train_error,
            "heldout": self.heldout,
            "candidates": self.candidates,
            "sensitivity": self.sensitivity,
            "warnings": list(self.warnings),
            "data_hash": self.data_hash,
            "sources": list(self.sources),
            "metric": self.metric,
            "frontier": self.frontier,
            "huber_delta": self.huber_delta,
            "seed": self.seed,
            **self.extra,
        }


# ---------------------------------------------------------------- free parameters


def free_mask(form: Form, x: Features, fixed: Mapping[str, float] | None = None) -> np.ndarray:
    """Which parameters the data can identify (each term's own rule, :mod:`planner.scaling.terms`); the
    rest are stated assumptions, drawn from their ranges in every bootstrap draw."""
    fixed = fixed or {}
    if form.name == "cherti":
        return np.ones(len(form.params), dtype=bool)
    free = []
    for name in form.params:
        if name in CORE_SATURATING:
            ok = True
        elif name in ("pool:*", "pool_slope:*"):
            ok = False
        elif name.startswith("pool:"):
            ok = bool((x.pool_key == name).sum() >= 1)
        elif name.startswith("pool_slope:"):
            sel = x.pool_key == "pool:" + name.split(":", 1)[1]
            ok = len(np.unique(np.round(np.log10(np.minimum(x.unique, x.seen)[sel]), 0))) >= 3
        else:
            rec, term = terms.param(name), terms.term_of(name)
            ok = rec.fittable and bool(term.identifiable(x, name))
        free.append(ok and name not in fixed)
    return np.asarray(free)


def assumed_ranges(form: Form, free: np.ndarray, overrides: Mapping[str, Sequence[float]] | None = None) -> dict:
    """``{name: (low, high)}`` of every parameter that is not fitted: the range each bootstrap draw samples."""
    if form.name != "saturating":
        return {}
    overrides = overrides or {}
    out = {}
    for j, name in enumerate(form.params):
        if not free[j] and name not in CORE_SATURATING:
            lo, hi = overrides.get(name, terms.param(name).assumed)
            out[name] = (float(lo), float(hi))
    return out


def _identifiable(form: Form, x: Features, free: np.ndarray) -> str | None:
    """Why ``form`` cannot be fitted to ``x`` (None if it can)."""
    n, k = len(x), int(free.sum())
    if form.name == "saturating":
        if len(np.unique(np.round(x.capacity, 3))) < 2:
            return "one model size only (the capacity term needs two or more)"
        if len(np.unique(np.round(np.log10(x.seen * x.quality), 2))) < 2:
            return "one data size only (the data term needs two or more)"
    if form.name == "cherti" and len(np.unique(np.round(np.log10(x.compute_gmacs), 3))) < 2:
        return "one compute value only"
    if n < k + 1:
        return f"{n} points for {k} free parameters of '{form.name}'"
    return None


# ---------------------------------------------------------------- point fits


def _objective(form: Form, x: Features, theta_full: np.ndarray, free_idx: np.ndarray, target: np.ndarray,
               weights: np.ndarray, delta: float):
    k = len(free_idx)

    def fun(z):
        th = np.tile(theta_full, (k + 1, 1))
        th[:, free_idx] = z
        h = 1e-7 * np.maximum(1.0, np.abs(z))
        th[np.arange(1, k + 1), free_idx] += h
        r = log_error(form, th, x) - target
        losses = (weights * huber(r, delta)).sum(axis=1)
        if not np.isfinite(losses[0]):
            return 1e10, np.zeros(k)
        return float(losses[0]), (losses[1:] - losses[0]) / h

    return fun


def start_grid(form: Form, x: Features, base: np.ndarray) -> list[np.ndarray]:
    """The grid of starting points (natural units) for ``form``."""
    if form.name == "cherti":
        a, b = np.polyfit(np.log(x.compute_gmacs), np.log1p(-x.y), 1)
        s = base.copy()
        s[:] = [b, min(a, -1e-3)]
        return [s, base.copy()]
    starts = []
    idx = {n: i for i, n in enumerate(form.params)}
    for alpha in (0.3, 0.8):
        for beta in (0.2, 0.5):
            for log_e in (math.log(0.05), math.log(0.2)):
                for log_b in (math.log(0.1), math.log(1.0)):
                    s = base.copy()
                    s[idx["alpha"]], s[idx["beta"]], s[idx["log_E"]], s[idx["log_B"]] = alpha, beta, log_e, log_b
                    starts.append(s)
    return starts


def fit_point(form: Form, x: Features, free: np.ndarray, base: np.ndarray, *, starts: Sequence[np.ndarray] | None = None,
              delta: float = HUBER_DELTA, weights: np.ndarray | None = None, polish: int = 2) -> tuple[np.ndarray, float, bool]:
    """Best fit over ``starts``: (theta [P], loss, converged).

    All starts are first refined together by a batched Levenberg–Marquardt; the ``polish`` best are then
    finished with L-BFGS-B within the form's bounds.
    """
    from scipy.optimize import minimize

    from planner.scaling.bootstrap import batched_lm

    target = form_target(form, x.y)[None, :]
    w = np.ones(len(x)) if weights is None else weights
    free_idx = np.flatnonzero(free)
    lo, hi = np.asarray(form.lower)[free_idx], np.asarray(form.upper)[free_idx]
    bounds = list(zip(lo, hi))
    starts = np.vstack(list(starts) if starts is not None else start_grid(form, x, base))
    starts[:, free_idx] = np.clip(starts[:, free_idx], lo, hi)
    # Stage 1: all starts at once (batched Levenberg-Marquardt); stage 2: L-BFGS-B from the best few.
    coarse, coarse_loss = batched_lm(form, x, starts, free, np.tile(w, (len(starts), 1)), delta=delta, iters=60)
    best, best_loss, converged = coarse[np.argmin(coarse_loss)].copy(), float(np.min(coarse_loss)), False
    for i in np.argsort(coarse_loss)[:polish]:
        s = coarse[i]
        fun = _objective(form, x, s, free_idx, target, w, delta)
        res = minimize(fun, s[free_idx], jac=True, method="L-BFGS-B", bounds=bounds,
                       options={"maxiter": 300, "ftol": 1e-12})
        if np.isfinite(res.fun) and res.fun <= best_loss + 1e-12:
            best = s.copy()
            best[free_idx] = res.x
            best_loss = float(res.fun)
        converged = converged or bool(res.success) or res.fun <= best_loss + 1e-9
    return best, best_loss, converged and np.isfinite(best_loss)


def _errors_points(form: Form, theta: np.ndarray, x: Features) -> dict:
    pred = _acc(form, log_error(form, theta, x)[0])
    d = (pred - x.y) * 100.0
    return {"rmse_points": float(np.sqrt(np.mean(d * d))), "mae_points": float(np.mean(np.abs(d))), "n": len(x)}


def _refit(form: Form, x: Features, fixed: Mapping[str, float], base: np.ndarray, delta: float, quick: bool):
    free = free_mask(form, x, fixed)
    if _identifiable(form, x, free):
        return None
    starts = start_grid(form, x, base)
    if quick and len(starts) > 4:
        starts = starts[:: len(starts) // 4]
    return fit_point(form, x, free, base, starts=starts, delta=delta)[0]


def heldout_errors(form: Form, x: Features, fixed: Mapping[str, float], base: np.ndarray, delta: float = HUBER_DELTA) -> dict:
    """Leave-one-model-out and fit-low/predict-high-compute errors (points of accuracy)."""
    out: dict = {}
    models = np.unique(x.model)
    if len(models) >= 3:
        preds, obs = [], []
        for m in models:
            train, test = x.model != m, x.model == m
            th = _refit(form, x.take(train), fixed, base, delta, quick=True)
            if th is None:
                continue
            preds.append(_acc(form, log_error(form, th, x.take(test))[0]))
            obs.append(x.y[test])
        if preds:
            d = (np.concatenate(preds) - np.concatenate(obs)) * 100
            out["leave_one_model_out"] = {"rmse_points": float(np.sqrt(np.mean(d * d))),
                                          "mae_points": float(np.mean(np.abs(d))), "n": len(d)}
    cut = np.quantile(x.total_gflops, 0.75)
    train, test = x.total_gflops <= cut, x.total_gflops > cut
    if test.sum() >= 1 and train.sum() >= 3:
        th = _refit(form, x.take(train), fixed, base, delta, quick=True)
        if th is not None:
            out["low_to_high_compute"] = {**_errors_points(form, th, x.take(test)), "cut_gflops": float(cut)}
    return out


def _acc(form: Form, out: np.ndarray) -> np.ndarray:
    return form_accuracy(form, out)


def _heldout_score(h: dict) -> float:
    vals = [v["rmse_points"] for v in h.values()]
    return float(np.mean(vals)) if vals else math.inf


def sensitivity(form: Form, x: Features, theta: np.ndarray, free: np.ndarray, delta: float, k: int = 5) -> dict:
    """Refit without each of the ``k`` most influential points (largest |residual|); report the spread."""
    r = log_error(form, theta, x)[0] - form_target(form, x.y)
    order = np.argsort(-np.abs(r))[: min(k, max(len(x) - int(free.sum()) - 1, 0))]
    base_pred = _acc(form, log_error(form, theta, x)[0])
    changes, params = [], []
    for i in order:
        keep = np.ones(len(x), dtype=bool)
        keep[i] = False
        th, _, _ = fit_point(form, x.take(keep), free, theta, starts=[theta], delta=delta)
        pred = _acc(form, log_error(form, th, x)[0])
        changes.append(float(np.max(np.abs(pred - base_pred)) * 100))
        params.append(th)
    if not changes:
        return {"dropped_rows": [], "max_prediction_change_points": 0.0, "param_spread": {}}
    spread = np.ptp(np.vstack([theta] + params), axis=0)
    return {
        "dropped_rows": [int(i) for i in order],
        "max_prediction_change_points": float(max(changes)),
        "prediction_change_points": changes,
        "param_spread": {n: float(spread[j]) for j, n in enumerate(form.params) if free[j]},
    }


# ---------------------------------------------------------------- the whole fit


def _reference_pool(rows: Sequence[Mapping]) -> str:
    pools = [str(r.get("data_pool") or "") for r in rows if str(r.get("source") or "own") == "own"]
    if not pools:
        pools = [str(r.get("data_pool") or "") for r in rows]
    vals, counts = np.unique(np.asarray(pools, dtype=str), return_counts=True)
    return str(vals[np.argmax(counts)])


def fit_rows(rows: Sequence[Mapping], **kwargs) -> FitResult:
    """Fit ``rows`` with BLAS limited to one thread (small matrices; threads only contend). See :func:`_fit_rows`."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn/scipy stacks
        return _fit_rows(rows, **kwargs)
    with threadpool_limits(1):
        return _fit_rows(rows, **kwargs)


def _fit_rows(
    rows: Sequence[Mapping],
    *,
    metric: str = "zeroshot_top1",
    form: str = "auto",
    n_boot: int = 1000,
    seed: int = 0,
    frontier: str = "all",
    fixed: Mapping[str, float] | None = None,
    reference_pool: str | None = None,
    delta: float = HUBER_DELTA,
    heldout: bool = True,
    progress: Callable[[int], None] | None = None,
    assumed: Mapping[str, Sequence[float]] | None = None,
    extra_pools: Sequence[str] = (),
    discrepancy: bool = True,
    _carry: tuple[str, ...] = (),
) -> FitResult:
    """Fit ``rows`` (mappings with model, samples_seen, unique_samples, ``metric`` …) and bootstrap.

    ``form``: ``auto`` (lowest held-out error among the forms the data support), ``saturating`` or
    ``cherti``. ``fixed``: values of parameters that are not fitted (their point value; a term parameter
    is still drawn from its assumed range in every bootstrap draw). ``assumed``: ``{name: (low, high)}``
    overriding a term's assumed range (:mod:`planner.scaling.terms`). ``extra_pools``: pools to give a
    parameter although no row uses them (drawn as assumptions). ``discrepancy``: estimate the model
    discrepancy from leave-one-group-out residuals (:func:`discrepancy_sigma`). Too-thin data or a fit that
    does not converge falls back to the simpler ``cherti`` form with a warning in ``FitResult.warnings``.
    """
    if form not in ("auto",) + FORM_NAMES:
        raise ConfigError(f"unknown scaling form '{form}'; choose one of: auto, {', '.join(FORM_NAMES)}")
    if n_boot < 10:
        raise ConfigError(f"--bootstrap {n_boot} is too few; give 10 or more (1000 recommended)")
    rows = list(rows)
    ref = _reference_pool(rows) if reference_pool is None else reference_pool
    x_all = build_features(rows, metric=metric, reference_pool=ref)
    keep = select_frontier(x_all, frontier)
    x = x_all.take(keep)
    fixed = dict(fixed or {})
    pools = tuple(sorted({p[5:] for p in x.pool_key if p != "pool:"} | {p for p in extra_pools if p != ref}))
    quality_pools = tuple(p for p in pools if len(np.unique(np.round(x.quality[x.pool_key == f"pool:{p}"], 3))) >= 3)
    kept = set(keep.tolist())
    groups = np.asarray([str(r.get("source") or "own") for i, r in enumerate(rows) if i in kept], dtype=str)
    warnings: list[str] = []
    candidates: dict = {}
    fits: dict = {}
    names = FORM_NAMES if form == "auto" else (form,)
    for name in names:
        f = make_form(name, pools, quality_pools)
        base = np.asarray(f.default, dtype=float)
        for k, v in fixed.items():
            if k in f.params:
                base[f.index(k)] = v
        free = free_mask(f, x, fixed)
        why = _identifiable(f, x, free)
        if why:
            candidates[name] = {"skipped": why}
            msg = f"form '{name}' not fitted: {why}"
            warnings.append(msg)
            log.warning(msg)
            continue
        theta, _loss, ok = fit_point(f, x, free, base, delta=delta)
        if not ok:
            candidates[name] = {"skipped": "did not converge"}
            msg = f"form '{name}' did not converge from any starting point"
            warnings.append(msg)
            log.warning(msg)
            continue
        h = heldout_errors(f, x, fixed, base, delta) if heldout else {}
        candidates[name] = {"train": _errors_points(f, theta, x), "heldout": h, "n_free": int(free.sum())}
        fits[name] = (f, theta, free)
    if not fits:
        if form != "cherti" and "cherti" not in candidates:
            msg = f"falling back to the simpler 'cherti' form ({candidates[form]['skipped']})"
            warnings.append(msg)
            log.warning(msg)
            return _fit_rows(rows, metric=metric, form="cherti", n_boot=n_boot, seed=seed, frontier=frontier,
                            fixed=fixed, reference_pool=ref, delta=delta, heldout=heldout, progress=progress,
                            assumed=assumed, extra_pools=extra_pools, discrepancy=discrepancy,
                            _carry=_carry + tuple(warnings))
        why = "; ".join(f"{k}: {v.get('skipped')}" for k, v in candidates.items())
        raise ConfigError(f"cannot fit a scaling law to {len(x)} point(s): {why}")
    if form == "auto":
        chosen = min(fits, key=lambda n: (_heldout_score(candidates[n]["heldout"]), FORM_NAMES.index(n)))
    else:
        chosen = form
    f, theta, free = fits[chosen]
    span = np.asarray(f.upper) - np.asarray(f.lower)
    for j, name in enumerate(f.params):
        if free[j] and min(theta[j] - f.lower[j], f.upper[j] - theta[j]) < 1e-3 * span[j]:
            msg = f"parameter {name}={theta[j]:.4g} sits at its bound [{f.lower[j]:.4g}, {f.upper[j]:.4g}]: the data do not pin it down"
            warnings.append(msg)
            log.warning(msg)
    ranges = assumed_ranges(f, free, assumed)
    idx_ranges = {f.index(n): v for n, v in ranges.items()}
    draws = bootstrap_draws(f, x, theta, free, n_boot=n_boot, seed=seed, delta=delta, progress=progress,
                            ranges=idx_ranges)
    sens = sensitivity(f, x, theta, free, delta)
    if ranges:
        log.info("stated assumptions drawn in every bootstrap draw: %s", ", ".join(ranges))
    from planner.scaling.discrepancy import discrepancy_sigma  # it refits with this module's functions

    disc = (discrepancy_sigma(f, x, theta, fixed, groups, delta=delta, assumed=assumed, seed=seed)
            if discrepancy else {"sigma_log_error": 0.0, "sigma_per_decade": 0.0, "method": "none"})
    sources = sorted(set(groups.tolist()))
    return FitResult(
        form=chosen,
        param_names=f.params,
        theta=tuple(float(v) for v in theta),
        free=tuple(n for n, fr in zip(f.params, free) if fr),
        draws=draws,
        reference_pool=ref,
        pools=pools,
        compute_range_gflops=(float(x.total_gflops.min()), float(x.total_gflops.max())),
        samples_range=(float(x.seen.min()), float(x.seen.max())),
        n_points=len(x),
        train_error=candidates[chosen]["train"],
        heldout=candidates[chosen]["heldout"],
        candidates=candidates,
        sensitivity=sens,
        warnings=_carry + tuple(warnings),
        data_hash=data_hash(rows, ("model", "strategy", "samples_seen", "unique_samples", "quality_fraction",
                                   "data_pool", metric)),
        sources=tuple(sources),
        metric=metric,
        frontier=frontier,
        huber_delta=delta,
        seed=seed,
        assumed=ranges,
        discrepancy=disc,
        quality_pools=quality_pools,
        pool_compute_ranges={str(k): (float(x.total_gflops[x.pool_key == k].min()),
                                      float(x.total_gflops[x.pool_key == k].max())) for k in np.unique(x.pool_key)},
    )
