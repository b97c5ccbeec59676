"""Vectorised bootstrap: every resample refitted at once by a batched Levenberg–Marquardt on the Huber loss.

Each bootstrap replicate draws ``n`` rows with replacement (multinomial counts as weights) and is refitted
from the full-data optimum by iteratively reweighted Gauss–Newton steps (Huber weights ``min(1, δ/|r|)``),
with per-replicate damping and the form's bounds enforced by clipping. All replicates share one
``[B, n, k]`` Jacobian evaluation per iteration, so 1,000 replicates cost about as much as a few dozen
single fits. Pure numpy.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from planner.scaling.forms import Form, log_error
from planner.scaling.forms import target as form_target


def huber(r: np.ndarray, delta: float) -> np.ndarray:
    """Huber loss of residuals ``r`` (quadratic inside ``|r| <= delta``, linear outside)."""
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))


def batched_lm(form: Form, x, theta0: np.ndarray, free: np.ndarray, weights: np.ndarray, *,
               delta: float = 0.05, iters: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Refit ``B`` weighted problems at once from ``theta0 [B, P]`` (weights ``[B, n]``): (theta, loss)."""
    target = form_target(form, x.y)[None, :]
    lo = np.asarray(form.lower)
    hi = np.asarray(form.upper)
    free_idx = np.flatnonzero(free)
    k = len(free_idx)
    b, n = weights.shape
    theta = np.array(theta0, dtype=float, copy=True)
    lam = np.full(b, 1e-2)

    def loss_of(th, wts):
        r = log_error(form, th, x) - target
        loss = (wts * huber(r, delta)).sum(axis=1)
        return r, np.where(np.isfinite(loss), loss, np.inf)

    r, loss = loss_of(theta, weights)
    jac_of = _jacobian(form, x, free_idx, target)
    eye = np.eye(k)[None]
    active = np.ones(b, dtype=bool)  # replicates still improving; converged ones drop out of the batch
    for _ in range(iters):
        idx = np.flatnonzero(active)
        if not len(idx):
            break
        th, ra, wa, la = theta[idx], r[idx], weights[idx], lam[idx]
        jac = jac_of(th, ra)
        w = wa * np.minimum(1.0, delta / np.maximum(np.abs(ra), 1e-12))
        w = np.where(np.isfinite(ra), w, 0.0)
        rr = np.where(np.isfinite(ra), ra, 0.0)
        jw = jac * w[:, :, None]
        hess = np.matmul(jw.transpose(0, 2, 1), jac)  # [b, k, k] (batched BLAS)
        grad = np.einsum("bnk,bn->bk", jw, rr)
        diag = np.einsum("bkk->bk", hess) + 1e-9
        damped = hess + la[:, None, None] * (diag[:, :, None] * eye)
        try:
            step = np.linalg.solve(damped, -grad[:, :, None])[:, :, 0]
        except np.linalg.LinAlgError:
            step = -grad / (diag * (1 + la[:, None]))
        cand = th.copy()
        cand[:, free_idx] = np.clip(th[:, free_idx] + step, lo[free_idx], hi[free_idx])
        r_new, loss_new = loss_of(cand, wa)
        better = loss_new <= loss[idx]
        gain = np.where(better, loss[idx] - loss_new, 0.0)
        theta[idx[better]] = cand[better]
        r[idx[better]] = r_new[better]
        loss[idx[better]] = loss_new[better]
        lam[idx] = np.clip(np.where(better, la / 3.0, la * 4.0), 1e-9, 1e9)
        done = (better & (gain <= 1e-9 * np.maximum(loss[idx], 1e-12))) | (lam[idx] >= 1e8)
        active[idx[done]] = False
    return theta, loss


def _jacobian(form: Form, x, free_idx: np.ndarray, target: np.ndarray) -> Callable:
    """``jac(theta [m, P], residuals [m, n]) -> [m, n, k]``: forward differences of the residuals in the free
    parameters. A parameter that moves only some rows (a pool's offset, a strategy's or the quality
    ladder's terms: :func:`planner.scaling.forms.param_applies`) is differenced on those rows only; the
    parameters that move the same rows are differenced together. With the prior's many pool and term
    parameters most columns are zero on most rows, and skipping them is most of a bootstrap's cost."""
    from planner.scaling.forms import param_applies

    groups: dict[bytes, list] = {}
    for j, p in enumerate(free_idx):
        rows = np.flatnonzero(param_applies(form, form.params[p], x))
        if len(rows):
            groups.setdefault(rows.tobytes(), [rows, []])[1].append((j, p))
    parts = [(rows, x if len(rows) == len(x) else x.take(rows), np.asarray([j for j, _ in jp]),
              np.asarray([p for _, p in jp])) for rows, jp in groups.values()]

    def jac(th: np.ndarray, ra: np.ndarray) -> np.ndarray:
        m = th.shape[0]
        out = np.zeros((m, len(x), len(free_idx)))
        for rows, xs, js, ps in parts:
            g = len(ps)
            h = 1e-6 * np.maximum(1.0, np.abs(th[:, ps]))  # [m, g]
            stacked = np.repeat(th[None], g, axis=0)  # [g, m, P]
            stacked[np.arange(g), :, ps] += h.T
            res = log_error(form, stacked.reshape(g * m, -1), xs).reshape(g, m, len(rows)) - target[:, rows]
            out[:, rows[:, None], js[None, :]] = np.transpose((res - ra[None][:, :, rows]) / h.T[:, :, None], (1, 2, 0))
        return np.where(np.isfinite(out), out, 0.0)

    return jac


def bootstrap_draws(
    form: Form,
    x,
    theta_hat: np.ndarray,
    free: np.ndarray,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    delta: float = 0.05,
    iters: int = 40,
    chunk: int = 250,
    progress: Callable[[int], None] | None = None,
    ranges: dict[int, tuple[float, float]] | None = None,
) -> np.ndarray:
    """``[n_boot, P]`` parameter draws.

    ``ranges`` maps the index of each stated assumption to the range it is drawn from (uniformly, afresh in
    every draw); the free parameters are then refitted given the drawn assumptions, so each draw is a
    consistent law. Parameters neither free nor in ``ranges`` are copied from ``theta_hat``.

    ``free`` is a boolean mask over ``form.params``; ``x.y`` holds the observed accuracies (fractions).
    ``progress(k)`` is called after each chunk of ``k`` replicates. Replicates start at the full-data
    optimum and drop out of the batch once converged, so most need only a few damped Gauss-Newton steps.
    """
    rng = np.random.default_rng(seed)
    arng = np.random.default_rng([seed, 1])  # assumptions: own stream (resampling stays reproducible)
    ranges = ranges or {}
    n = len(x)
    out = np.empty((n_boot, len(form.params)))
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        counts = rng.multinomial(n, np.full(n, 1.0 / n), size=b).astype(float)
        theta0 = np.tile(theta_hat, (b, 1))
        for j, (lo, hi) in ranges.items():
            theta0[:, j] = arng.uniform(lo, hi, b)
        out[start : start + b], _ = batched_lm(form, x, theta0, free, counts, delta=delta, iters=iters)
        if progress is not None:
            progress(b)
    return out
