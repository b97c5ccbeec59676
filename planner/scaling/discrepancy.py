"""Model discrepancy: how far a fitted law's predictions stray beyond its own parameter spread, calibrated
on held-out results (:func:`discrepancy_sigma`). Pure: features and a fit in, a dict for FIT.json out.

Two calibrations, for the two situations a prediction is in: a run of a *new* source (leave one source
out: every answer of ``plan``/``predict`` from the built-in prior), and a run of a source the fit has
rows of, extrapolated to more compute (``known_source``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from planner.scaling.bootstrap import bootstrap_draws
from planner.scaling.data import Features, data_ranges, extrapolation_parts
from planner.scaling.fit import HUBER_DELTA, _acc, _identifiable, assumed_ranges, fit_point, free_mask
from planner.scaling.forms import Form, log_error, param_applies
from planner.scaling.forms import target as form_target

#: Prior of the model discrepancy (log(-log top-1) scale): ``sigma`` inside the fitted data, and per decade of
#: total compute / of unique samples outside the fitted rows of the row's pool; worth
#: :data:`DISCREPANCY_PRIOR_POINTS` calibration points. A stated assumption (rounded from the built-in
#: prior's own leave-one-source-out calibration: 0.06–0.11 inside, 0.15–0.25 per decade), so that a fit with
#: few calibration points (a held-out source that leaves three) does not claim a discrepancy of zero.
DISCREPANCY_PRIOR = (0.1, 0.2, 0.2)
DISCREPANCY_PRIOR_POINTS = 12.0
#: Prior of the ``known_source`` discrepancy (a run of a source the fit has rows of, extrapolated to more
#: compute), worth as many points. A stated assumption, rounded up from the built-in prior's own
#: calibration of it with no prior (0.02–0.035 inside, 0.04–0.10 per decade of compute, 0.07–0.22 per decade
#: of unique samples, over the full prior and the validation's training sets): 0.4× the new-source
#: discrepancy inside the data, half of it per decade of compute, the same per decade of unique samples.
KNOWN_SOURCE_PRIOR = (0.04, 0.1, 0.2)


def discrepancy_sigma(form: Form, x: Features, theta: np.ndarray, fixed: Mapping[str, float], groups: np.ndarray,
                      *, delta: float = HUBER_DELTA, assumed=None, seed: int = 0, n_boot: int = 60) -> dict:
    """Model discrepancy (on the form's log scale) from held-out groups: the residual variance the fit's
    own spread does not explain, growing with the distance outside the fitted data.

    Groups are the sources (``published:<key>``, ``own``) when there are three or more, else the models.
    Each group is predicted by a fit without it (parameters *and* its own assumption draws, ``n_boot``);
    a held-out point that rests on a parameter only its own group identifies (its pool, strategy or quality
    ladder) tests that parameter's assumed range, not the law, and is left out of the calibration. Each
    calibration point ``i`` has residual ``r_i`` (held-out fit's point prediction), that fit's spread
    ``sd_i`` and its decades outside the held-out fit's data, ``dc_i`` in total compute and ``du_i`` in unique
    samples (:func:`planner.scaling.data.extrapolation_parts`). The discrepancy
    ``sigma_i^2 = s0^2 + (sc dc_i)^2 + (su du_i)^2`` is fitted by maximum likelihood of
    ``r_i ~ N(0, sd_i^2 + sigma_i^2)`` with the stated prior :data:`DISCREPANCY_PRIOR` worth
    :data:`DISCREPANCY_PRIOR_POINTS` points (pseudo-observations at 0 and 1 decade out), i.e. a MAP
    estimate: calibrated where there are held-out points, the prior where there are few. Predictions add
    ``N(0, sigma^2)`` to every draw's output (decades relative to this fit's data, :func:`data_ranges`).

    That calibration is for a run of a *new* source (another lab's recipe, code and evaluation), as every
    answer ``plan`` and ``predict`` give from the built-in prior is. A run of a source that is in the fit
    shares what that source's rows already measured, so when the groups are sources a second calibration,
    ``known_source``, holds out each source's rows above its own 75 % quantile of total compute, predicts
    them from the rest (same fit, draws and exclusions) and fits ``(s0, sc, su)`` to those residuals under
    its own stated prior :data:`KNOWN_SOURCE_PRIOR`. Rows whose ``source`` is one of the fit's sources use
    it (:meth:`planner.scaling.predict.ScalingModel.discrepancy`).
    """
    keys = groups if len(np.unique(groups)) >= 3 else x.model
    uniq = np.unique(keys)
    p0, pc, pu = DISCREPANCY_PRIOR
    base = {"sigma_log_error": p0, "sigma_per_decade": pc, "sigma_per_decade_compute": pc,
            "sigma_per_decade_unique": pu, "ranges": data_ranges(x), "n": 0,
            "prior": list(DISCREPANCY_PRIOR), "prior_points": DISCREPANCY_PRIOR_POINTS}
    if len(uniq) < 3:
        return {**base, "method": "stated prior only (fewer than 3 groups to hold out)"}
    free_full = free_mask(form, x, fixed)
    kw = {"delta": delta, "assumed": assumed, "seed": seed, "n_boot": n_boot}
    parts = [_held_out(form, x, theta, fixed, free_full, keys != g, keys == g, **kw) for g in uniq]
    per_group = {str(g): p[1] for g, p in zip(uniq, parts) if p}
    r, sd, dc, du = _stack([p[0] for p in parts if p])
    s0, sc, su = _map_discrepancy(r, sd, dc, du)
    out = {**base, "sigma_log_error": s0, "sigma_per_decade": sc, "sigma_per_decade_compute": sc,
           "sigma_per_decade_unique": su,
           "method": "maximum a posteriori of held-out residuals beyond the fit's own spread, leave-one-" +
           ("source" if keys is groups else "model") + "-out, with a stated prior", "n": int(len(r)),
           "groups": [str(g) for g in uniq], "per_group": per_group}
    if keys is groups:
        known = []
        for g in uniq:
            own = groups == g
            top = own & (x.total_gflops > np.quantile(x.total_gflops[own], 0.75))
            if own.sum() >= 4 and top.any():
                known.append(_held_out(form, x, theta, fixed, free_full, ~top, top, **kw))
        r, sd, dc, du = _stack([p[0] for p in known if p])
        if len(r):
            k0, kc, ku = _map_discrepancy(r, sd, dc, du, KNOWN_SOURCE_PRIOR)
            out["known_source"] = {
                "sigma_log_error": k0, "sigma_per_decade_compute": kc, "sigma_per_decade_unique": ku,
                "n": int(len(r)), "prior": list(KNOWN_SOURCE_PRIOR), "prior_points": DISCREPANCY_PRIOR_POINTS,
                "method": "maximum a posteriori of each source's top-compute quarter predicted from the rest"}
    return out


def _held_out(form: Form, x: Features, theta: np.ndarray, fixed: Mapping[str, float], free_full: np.ndarray,
              train: np.ndarray, test: np.ndarray, *, delta: float, assumed, seed: int, n_boot: int):
    """Residuals of ``test`` predicted by a fit to ``train`` (point and draws): ``((r, sd, dc, du), summary)``
    over its calibrating points (see :func:`discrepancy_sigma`), or None when ``train`` cannot be fitted."""
    xt = x.take(train)
    free = free_mask(form, xt, fixed)
    if train.sum() < 3 or _identifiable(form, xt, free):
        return None
    th, _, _ = fit_point(form, xt, free, theta, starts=[theta], delta=delta, polish=1)
    ranges = {form.index(n): v for n, v in assumed_ranges(form, free, assumed).items()}
    dr = bootstrap_draws(form, xt, th, free, n_boot=n_boot, seed=seed, delta=delta, ranges=ranges, iters=25)
    xs = x.take(test)
    # points resting on a parameter that only the held-out rows identified test that parameter's assumed
    # range (pool, strategy, quality ladder), not the law: they do not calibrate the discrepancy
    ok = np.ones(len(xs), dtype=bool)
    for j, n in enumerate(form.params):
        if free_full[j] and not free[j]:
            ok &= ~param_applies(form, n, xs)
    point = log_error(form, th[None], xs)[0]
    r = form_target(form, xs.y) - point
    sd = np.std(log_error(form, dr, xs), axis=0)
    dc, du = extrapolation_parts(xs, data_ranges(xt))
    dp = (_acc(form, point) - xs.y) * 100
    summary = {"n": int(test.sum()), "n_calibrating": int(ok.sum()),
               "mae_points": float(np.mean(np.abs(dp))), "max_abs_points": float(np.max(np.abs(dp))),
               "rms_log": float(np.sqrt(np.mean(r[ok] ** 2))) if ok.any() else 0.0,
               "mean_decades_out": float((dc + du)[ok].mean()) if ok.any() else 0.0}
    return (r[ok], sd[ok], dc[ok], du[ok]), summary


def _stack(parts) -> tuple[np.ndarray, ...]:
    """Concatenate ``(r, sd, dc, du)`` tuples column by column (four empty arrays for none)."""
    return tuple(np.concatenate(v) for v in zip(*parts)) if parts else (np.zeros(0),) * 4


def _map_discrepancy(r: np.ndarray, sd: np.ndarray, dc: np.ndarray, du: np.ndarray,
                     prior_values: Sequence[float] = DISCREPANCY_PRIOR,
                     points: float = DISCREPANCY_PRIOR_POINTS) -> tuple[float, float, float]:
    """MAP ``(s0, sc, su)`` of ``r ~ N(0, sd^2 + s0^2 + (sc dc)^2 + (su du)^2)`` under :data:`DISCREPANCY_PRIOR`
    (pseudo-observations worth :data:`DISCREPANCY_PRIOR_POINTS`, split over 0 decades out, 1 decade of
    compute out and 1 decade of unique samples out, each with its prior variance as squared residual)."""
    from scipy.optimize import minimize

    prior = np.asarray(prior_values, dtype=float)
    pseudo = ((0.0, 0.0), (1.0, 0.0), (0.0, 1.0))
    w = points / len(pseudo)

    def nll(z):
        s = np.exp(z)
        v = sd ** 2 + s[0] ** 2 + (s[1] * dc) ** 2 + (s[2] * du) ** 2
        out = float(np.sum(0.5 * np.log(v) + 0.5 * r ** 2 / v))
        for a, b in pseudo:
            pv = s[0] ** 2 + (s[1] * a) ** 2 + (s[2] * b) ** 2
            qv = prior[0] ** 2 + (prior[1] * a) ** 2 + (prior[2] * b) ** 2
            out += w * (0.5 * math.log(pv) + 0.5 * qv / pv)
        return out

    best = None
    for a in (0.03, 0.1, 0.3):
        for b in (0.03, 0.1, 0.3):
            res = minimize(nll, np.log([a, b, b]), method="Nelder-Mead", options={"xatol": 1e-4, "fatol": 1e-6})
            if best is None or res.fun < best.fun:
                best = res
    s = np.exp(best.x)
    return float(s[0]), float(s[1]), float(s[2])
