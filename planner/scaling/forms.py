"""Scaling-law forms: vectorised log-error predictions over (parameter draws × rows).

Every form maps a parameter matrix ``theta`` of shape ``[B, P]`` (B draws, P = ``len(form.params)``) and a
:class:`~planner.scaling.data.Features` of ``n`` rows to ``log(error)`` of shape ``[B, n]``, where
``error = 1 - zeroshot_top1`` (a fraction). Pure numpy; no scipy, no I/O.

Forms:

* ``cherti`` — Cherti et al. 2023 (CVPR, "Reproducible scaling laws for contrastive language-image
  learning"): ``error = beta * C^alpha`` with ``C`` the total compute in GMACs (strategy-adjusted per-sample
  forward GMACs × samples seen; their published fit on LAION: beta 5.86, alpha -0.111). Two parameters.
* ``saturating`` — ``error = E + A * N^-alpha + B * N^gamma * D^-beta`` (Hoffmann et al. 2022's form, fitted
  as Epoch AI's replication does), where

  - ``N`` is model capacity: the model's *image tower* per-sample forward GFLOPs / 10 at its image size
    (plain CLIP). We use per-sample compute rather than parameters because parameters cannot tell ViT-B/32
    from ViT-B/16 (equal parameters, 5 points apart in Cherti et al.'s grid), whereas per-sample compute
    orders every published model correctly. The text tower is left out of the capacity: the seed paper
    keeps one text tower and varies the image tower, and the published models' text towers grow with
    their image towers, so a separate text term cannot be told apart from the image exponent. Text length
    thus changes a run's cost (``total_gflops``), not what the model can learn. A convolutional tower's
    capacity is scaled by ``exp(conv_capacity)`` (finding term).
  - ``D`` is effective data / 1e9 samples: unique samples (capped at samples seen) times the
    log-multipliers of the terms in :mod:`planner.scaling.terms` (repetition, quality, gamma, SLIP, FLIP,
    batch, augmentation, convolutional data efficiency) and of the data pool (``pool:<name>``: one fitted
    log-multiplier per pool other than the reference pool, which predictions are for).
  - the law is the core form plus the sum of the terms: each term is one record in
    :data:`planner.scaling.terms.TERMS`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from planner.scaling import terms

_LOG_TINY = math.log(1e-12)


@dataclass(frozen=True)
class Form:
    """A form's parameters: names, bounds (natural units), default start/fixed values."""

    name: str
    params: tuple[str, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    default: tuple[float, ...]
    description: str
    link: str = "error"  # "error": out = log(1 - top1); "neglogacc": out = log(-log(top1))

    def index(self, name: str) -> int:
        return self.params.index(name)


CORE_SATURATING = ("log_E", "log_A", "alpha", "log_B", "beta")
TERM_PARAMS = terms.TERM_PARAMS


def cherti_form() -> Form:
    return Form(
        name="cherti",
        params=("log_beta", "alpha"),
        lower=(-10.0, -1.0),
        upper=(10.0, 0.0),
        default=(math.log(5.86), -0.111),
        description="error = beta * C^alpha, C = total compute in GMACs (Cherti et al. 2023)",
    )


def saturating_form(pools: tuple[str, ...] = (), quality_pools: tuple[str, ...] = ()) -> Form:
    """The saturating form: core, every term of :mod:`planner.scaling.terms`, a clean fraction and a noise
    value per pool in ``quality_pools`` and one data-value offset per non-reference pool in ``pools``."""
    core_lo = (math.log(1e-4), math.log(1e-4), 0.02, math.log(1e-4), 0.02)
    core_hi = (math.log(0.9), math.log(20.0), 2.0, math.log(20.0), 2.0)
    core_def = (math.log(0.15), math.log(0.5), 0.5, math.log(0.2), 0.3)
    recs = ([terms.param(n) for n in TERM_PARAMS] + [terms.param("quality_clean")] * len(quality_pools)
            + [terms.param("quality_noise")] * len(quality_pools))
    return Form(
        name="saturating",
        params=CORE_SATURATING + TERM_PARAMS + tuple(f"quality_clean:{p}" for p in quality_pools)
        + tuple(f"quality_noise:{p}" for p in quality_pools)
        + tuple(f"pool:{p}" for p in pools) + ("pool:*",) + tuple(f"pool_slope:{p}" for p in pools)
        + ("pool_slope:*",),
        lower=core_lo + tuple(r.lower for r in recs) + (-6.0,) * (len(pools) + 1)
        + (terms.POOL_SLOPE.lower,) * (len(pools) + 1),
        upper=core_hi + tuple(r.upper for r in recs) + (6.0,) * (len(pools) + 1)
        + (terms.POOL_SLOPE.upper,) * (len(pools) + 1),
        default=core_def + tuple(r.default for r in recs) + (0.0,) * (2 * len(pools) + 2),
        description="-log(top1) = E + A*N^-alpha + B*D_eff^-beta; log N and log D_eff = core + sum of the "
                    "terms (planner.scaling.terms)",
        link="neglogacc",
    )


def make_form(name: str, pools: tuple[str, ...] = (), quality_pools: tuple[str, ...] = ()) -> Form:
    if name == "cherti":
        return cherti_form()
    if name == "saturating":
        return saturating_form(pools, quality_pools)
    from budget.errors import ConfigError

    raise ConfigError(f"unknown scaling form '{name}'; choose one of: {', '.join(FORM_NAMES)}")


FORM_NAMES = ("saturating", "cherti")


def quality_log_multiplier(q: np.ndarray, clean: np.ndarray, noise: float | np.ndarray = -0.2,
                           softness: float | np.ndarray = 0.1) -> np.ndarray:
    """See :func:`planner.scaling.terms.quality_log_multiplier`."""
    return terms.quality_log_multiplier(q, clean, noise, softness)


#: Floor of a predicted top-1 (ImageNet chance level).
CHANCE_TOP1 = 1e-3


def target(form: Form, y: np.ndarray) -> np.ndarray:
    """The observed metric ``y`` (fractions) on the scale ``form`` predicts (see :func:`log_error`)."""
    y = np.asarray(y, dtype=float)
    return np.log1p(-y) if form.link == "error" else np.log(-np.log(y))


def accuracy(form: Form, out: np.ndarray) -> np.ndarray:
    """Top-1 (fraction, floored at :data:`CHANCE_TOP1`) from a form's output."""
    acc = -np.expm1(out) if form.link == "error" else np.exp(-np.exp(out))
    return np.clip(acc, CHANCE_TOP1, 1.0)


def param_applies(form: Form, name: str, x) -> np.ndarray:
    """Per row of ``x``: does parameter ``name`` of ``form`` change the prediction? (Core parameters: always.)"""
    if name.startswith(("pool:", "pool_slope:")):
        key = "pool:" + name.split(":", 1)[1]
        if key != "pool:*":
            return x.pool_key == key
        known = {p for p in form.params if p.startswith("pool:") and p != "pool:*"}
        return np.asarray([k != "pool:" and k not in known for k in x.pool_key], dtype=bool)
    if name.startswith(("quality_clean", "quality_noise")):
        own = np.isin(x.pool_key, [f"pool:{p.split(':', 1)[1]}" for p in form.params if p.startswith("quality_clean:")])
        sel = (x.pool_key == "pool:" + name.split(":", 1)[1]) if ":" in name else ~own
        return (x.quality < 1.0) & sel
    t = terms.term_of(name)
    return np.ones(len(x), dtype=bool) if t is None else np.asarray(t.applies(x), dtype=bool)


@lru_cache(maxsize=64)
def _pool_slots(names: tuple[str, ...], keys: tuple[str, ...]) -> np.ndarray:
    """Per row: 0 for the reference pool, ``i + 1`` for the pool of parameter ``names[i]``, ``len(names) + 1``
    for a pool without a parameter (``pool:*``). Cached: a fit evaluates the same rows thousands of times."""
    slot = {n: i + 1 for i, n in enumerate(names)}
    out = np.asarray([0 if k == "pool:" else slot.get(k, len(names) + 1) for k in keys])
    out.setflags(write=False)
    return out


def _add_term(acc: np.ndarray, t, x, col: dict, d: dict) -> np.ndarray:
    """``acc`` plus term ``t``'s effect on the rows it applies to (zero elsewhere). A term that applies to few
    rows is evaluated on those only (in a bootstrap's Jacobian the quality integrals on every row would be
    most of a fit's cost); one that applies to most is evaluated on all and masked (cheaper than a copy)."""
    rows = np.asarray(t.applies(x), dtype=bool)
    idx = np.flatnonzero(rows)
    if not len(idx):
        return acc
    if 2 * len(idx) > len(x):
        return acc + np.where(rows[None, :], t.effect(x, col, d), 0.0)
    part = t.effect(x.take(idx), col, {k: v[:, idx] for k, v in d.items()})
    out = np.zeros((max(acc.shape[0], part.shape[0]), len(x))) + acc
    out[:, idx] += part
    return out


def log_error(form: Form, theta: np.ndarray, x) -> np.ndarray:
    """The form's output for every draw × row: ``theta [B, P]``, features ``x`` (n rows) → ``[B, n]``.

    ``cherti``: ``log(1 - top1)`` (log error, as Cherti et al. fit it). ``saturating``: ``log(-log(top1))``:
    the saturating law describes ``-log(top1)``, which follows a power law in compute from DataComp small
    (2.7 %) to xlarge (72 %) — it falls 2.1×, 2.2×, 2.4× per scale — where the error does not (1.2×, 1.5×,
    2.0×); at high accuracy the two agree (``-log(a) ≈ 1 - a``). Use :func:`accuracy` to convert.
    """
    theta = np.atleast_2d(np.asarray(theta, dtype=float))
    if form.name == "cherti":
        log_c = np.log(x.compute_gmacs)[None, :]
        return theta[:, 0:1] + theta[:, 1:2] * log_c
    # A parameter that is the same in every draw (Jacobian columns of other parameters) is evaluated on
    # one row and broadcast; a term that applies to no row is skipped.
    same = (theta == theta[:1]).all(axis=0) if theta.shape[0] > 1 else np.ones(theta.shape[1], dtype=bool)
    col = {name: theta[:1, i : i + 1] if same[i] else theta[:, i : i + 1] for i, name in enumerate(form.params)}
    u = np.minimum(x.unique, x.seen)[None, :]
    d = {"u": u, "repeats": np.maximum(x.seen[None, :] / u - 1.0, 0.0)}
    log_n = np.log(x.capacity / 10.0)[None, :]
    for t in terms.TERMS:
        if t.acts_on == "capacity":
            log_n = _add_term(log_n, t, x, col, d)
    d["log_n"] = log_n
    log_d = np.log(u / 1e9)
    for t in terms.TERMS:
        if t.acts_on == "data":
            log_d = _add_term(log_d, t, x, col, d)
    # pools: column 0 the reference pool (no change), then one per pool parameter, last ``pool:*`` (a pool
    # the fit has no parameter for: drawn assumptions); each row gathers its pool's offset and slope
    names = tuple(n for n in form.params if n.startswith("pool:") and n != "pool:*")
    where = _pool_slots(names, tuple(x.pool_key.tolist()))
    if where.any():
        offs = [col[n] for n in names] + [col["pool:*"]]
        slopes = [col["pool_slope:" + n[5:]] for n in names] + [col["pool_slope:*"]]
        b = max(c.shape[0] for c in offs + slopes)
        off, slope = np.zeros((b, len(offs) + 1)), np.zeros((b, len(offs) + 1))
        for i, (o, sl) in enumerate(zip(offs, slopes), start=1):
            off[:, i], slope[:, i] = o[:, 0], sl[:, 0]
        log_d = log_d + off[:, where] + slope[:, where] * np.log(u / 1e9)
    err = (
        np.exp(col["log_E"])
        + np.exp(col["log_A"] - col["alpha"] * log_n)
        + np.exp(col["log_B"] - col["beta"] * log_d)
    )
    out = np.log(np.maximum(err, 1e-12))
    return np.broadcast_to(out, (theta.shape[0], len(x))) if out.shape[0] != theta.shape[0] else out
