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

  - ``N`` is model capacity: the model's *plain CLIP* per-sample forward GFLOPs / 10 (image + text tower at
    its image size and text length). We use per-sample compute rather than parameters because parameters
    cannot tell ViT-B/32 from ViT-B/16 (equal parameters, 5 points apart in Cherti et al.'s grid), whereas
    per-sample compute orders every published model correctly; a convolutional tower's capacity is scaled
    by ``exp(conv_capacity)`` (finding term).
  - ``D`` is effective data / 1e9 samples: repeated epochs discounted as in Muennighoff et al. 2023
    (``D_rep = U' + U' * R* * (1 - exp(-R / R*))``, ``U' = min(U, S)``, ``R = S / U' - 1``) times the
    multipliers of :mod:`planner.scaling.terms` (quality, SLIP, FLIP, augmentation, convolutional data
    efficiency) and of the data pool (``pool:<name>``: one fitted log-multiplier per pool other than the
    reference pool, which predictions are for).
  - ``gamma >= 0`` lets larger models need more data (see :data:`planner.scaling.terms.L_B_CROSSOVER_SAMPLES`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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

    def index(self, name: str) -> int:
        return self.params.index(name)


CORE_SATURATING = ("log_E", "log_A", "alpha", "log_B", "beta", "log_Rstar")
TERM_PARAMS = ("gamma", "quality_clean", "slip_kappa", "flip_phi", "aug_lambda", "conv_data", "conv_capacity")


def cherti_form() -> Form:
    return Form(
        name="cherti",
        params=("log_beta", "alpha"),
        lower=(-10.0, -1.0),
        upper=(10.0, 0.0),
        default=(math.log(5.86), -0.111),
        description="error = beta * C^alpha, C = total compute in GMACs (Cherti et al. 2023)",
    )


def saturating_form(pools: tuple[str, ...] = ()) -> Form:
    """The saturating form with one data-value offset per non-reference pool in ``pools``."""
    core_lo = (math.log(1e-4), math.log(1e-4), 0.02, math.log(1e-4), 0.02, math.log(0.5))
    core_hi = (math.log(0.9), math.log(20.0), 2.0, math.log(20.0), 2.0, math.log(500.0))
    core_def = (math.log(0.15), math.log(0.5), 0.5, math.log(0.2), 0.3, math.log(15.0))
    term_lo = (0.0, 0.15, -3.0, -3.0, 1.0, -3.0, -3.0)
    term_hi = (2.0, 1.0, 5.0, 1.0, 6.0, 3.0, 0.0)
    term_def = tuple(terms.DEFAULTS[n] for n in TERM_PARAMS)
    pool_names = tuple(f"pool:{p}" for p in pools)
    return Form(
        name="saturating",
        params=CORE_SATURATING + TERM_PARAMS + pool_names,
        lower=core_lo + term_lo + (-6.0,) * len(pools),
        upper=core_hi + term_hi + (6.0,) * len(pools),
        default=core_def + term_def + (0.0,) * len(pools),
        description="error = E + A*N^-alpha + B*N^gamma*D_eff^-beta (N: per-sample GFLOPs, D_eff: effective data)",
    )


def make_form(name: str, pools: tuple[str, ...] = ()) -> Form:
    if name == "cherti":
        return cherti_form()
    if name == "saturating":
        return saturating_form(pools)
    from budget.errors import ConfigError

    raise ConfigError(f"unknown scaling form '{name}'; choose one of: {', '.join(FORM_NAMES)}")


FORM_NAMES = ("saturating", "cherti")


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


def quality_log_multiplier(q: np.ndarray, clean: np.ndarray) -> np.ndarray:
    """log of the top-``q`` subset's value per sample relative to the whole pool's (see terms.py).

    ``q`` is ``[n]``, ``clean`` broadcasts against ``[B, 1]``; returns ``[B, n]``.
    """
    s, v = terms.QUALITY_SOFTNESS, terms.QUALITY_NOISE_VALUE

    def value(x):  # cumulative value V(x) of the top-x fraction
        integral = s * (_softplus(clean / s) - _softplus((clean - x) / s))
        return v * x + (1.0 - v) * integral

    vq = np.maximum(value(q), 1e-6 * q)
    v1 = np.maximum(value(np.ones_like(q)), 1e-6)
    return np.log(vq / q) - np.log(v1)


def log_error(form: Form, theta: np.ndarray, x) -> np.ndarray:
    """``log(1 - top1)`` predicted for every draw × row: ``theta [B, P]``, features ``x`` (n rows) → ``[B, n]``."""
    theta = np.atleast_2d(np.asarray(theta, dtype=float))
    if form.name == "cherti":
        log_c = np.log(x.compute_gmacs)[None, :]
        return theta[:, 0:1] + theta[:, 1:2] * log_c
    # A parameter that is the same in every draw (fixed terms; Jacobian columns of other parameters) is
    # evaluated on one row and broadcast; a term whose feature is absent from x is skipped.
    col = {}
    for i, name in enumerate(form.params):
        c = theta[:, i : i + 1]
        col[name] = c[:1] if c.shape[0] > 1 and c.min() == c.max() else c
    log_n = np.log(x.capacity / 10.0)[None, :]
    if x.conv.any():
        log_n = log_n + col["conv_capacity"] * x.conv[None, :]
    # effective data (Muennighoff et al. 2023), in units of 1e9 samples
    u = np.minimum(x.unique, x.seen)[None, :]
    repeats = np.maximum(x.seen[None, :] / u - 1.0, 0.0)
    if repeats.any():
        rstar = np.exp(col["log_Rstar"])
        log_d = np.log(u / 1e9) + np.log1p(rstar * (-np.expm1(-repeats / rstar)))
    else:
        log_d = np.log(u / 1e9)
    if (x.quality < 1.0).any():
        log_d = log_d + quality_log_multiplier(x.quality[None, :], col["quality_clean"])
    if x.conv.any():
        log_d = log_d + col["conv_data"] * x.conv[None, :]
    if x.is_slip.any():
        log_d = log_d + x.is_slip[None, :] * col["slip_kappa"] / (1.0 + x.seen[None, :] / terms.SLIP_FADE_SAMPLES)
    if x.is_flip.any():
        log_d = log_d + x.is_flip[None, :] * col["flip_phi"] * x.mask[None, :]
    if x.is_aug.any():
        aug = np.log(terms.AUG_ONE_EPOCH
                     * (1.0 + (col["aug_lambda"] - 1.0) * (-np.expm1(-repeats / terms.AUG_REPEATS))))
        log_d = log_d + x.is_aug[None, :] * aug
    for name in form.params:
        if name.startswith("pool:"):
            in_pool = x.pool_key == name
            if in_pool.any():
                log_d = log_d + col[name] * in_pool[None, :]
    err = (
        np.exp(col["log_E"])
        + np.exp(col["log_A"] - col["alpha"] * log_n)
        + np.exp(col["log_B"] + col["gamma"] * log_n - col["beta"] * log_d)
    )
    out = np.log(np.maximum(err, 1e-12))
    return np.broadcast_to(out, (theta.shape[0], len(x))) if out.shape[0] != theta.shape[0] else out
