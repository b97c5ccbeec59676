"""The promotion policy: rungs, the refit after each rung, and which configurations go on.

A study runs every candidate configuration first at a small share of the target compute and promotes the
ones that can still be best. Rungs sit at ``TARGET / eta**k`` GFLOPs (paper convention), ``k = n_rungs - 1
.. 0``; the last rung is the target itself.

**Refit.** After each rung the law is refitted on everything observed so far, with the prior as the
starting point. Each of the prior's bootstrap draws ``b`` gives a shape ``f_b(config, compute)`` of
``log(1 - top1)``; the observed log errors are modelled as ``f_b + a + s·t + d_c + e_c·t + noise`` with
``t = ln(compute / TARGET)``: ``a`` shifts the level of the whole study (a user's evaluation set is not
ImageNet: the prior lends the study its shape, not its level), ``s`` tilts its slope, ``d_c``/``e_c`` let
each configuration deviate from the law, all Gaussian (:class:`PolicyConfig` gives their standard
deviations; the run noise is chosen by marginal likelihood among a few). Given ``b`` this is a Gaussian
process, solved exactly; the draws are reweighted by their marginal likelihood, so data that contradict a shape retire it. At the target (``t = 0``) the prediction
of configuration ``c`` is the weighted mixture over draws of ``f_b(c, TARGET) + a + d_c``, summarised by
its mean and standard deviation in log error; the interval is mean ± z·sd (z = 1.96 for 95 %), turned into
top-1.

**Promotion** (:func:`decide`): the best lower bound among all observed configurations is the bar; a
configuration whose upper bound at the target is below it is pruned, the rest are candidates, promoted
one rung in order of their upper bound while the study budget can carry each of them to the target
(a promoted configuration reserves the cost of all its remaining rungs; the reservation is released when
it is pruned). Candidates that do not fit wait and are reconsidered after the next refit.

Pure: numpy, scipy.linalg; no I/O, no Optuna.

Example:
    >>> [f"{g:.4g}" for g in rung_gflops(1e11, eta=3, n_rungs=3)]
    ['1.111e+10', '3.333e+10', '1e+11']
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np

from budget.errors import ConfigError
from planner.study import law
from planner.study.law import Key, PlanOptions


@dataclass(frozen=True)
class PolicyConfig:
    """The refit's and the promotion rule's settings (standard deviations are in ``log(1 - top1)``).

    ``level``: two-sided confidence level of the bounds (0.95: mean ± 1.96 sd).
    ``level_sd``: study-wide level shift ``a``; ``slope_sd``: study-wide slope tilt ``s`` per unit of
    ln(compute); ``config_sd``: per-configuration deviation ``d_c`` (at least this; the prior's model
    discrepancy at the target when larger); ``config_slope_sd``: per-configuration slope deviation ``e_c``; ``noise_sd``:
    run-to-run noise (seeds): the refit uses whichever of ``noise_sd × noise_multipliers`` gives the data the
    highest marginal likelihood once there are ``min_observations_for_noise`` runs (tiny CPU runs are far
    noisier than large ones); ``n_draws``: prior draws used
    (evenly spaced over the prior's).
    """

    level: float = 0.95
    level_sd: float = 0.3
    slope_sd: float = 0.02
    config_sd: float = 0.01
    config_slope_sd: float = 0.005
    noise_sd: float = 0.01
    noise_multipliers: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0)
    min_observations_for_noise: int = 8
    n_draws: int = 200

    @property
    def z(self) -> float:
        return NormalDist().inv_cdf(0.5 + self.level / 2)

    def to_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


def rung_gflops(target_gflops: float, *, eta: float, n_rungs: int) -> list[float]:
    """Rung budgets ``TARGET / eta**k`` for ``k = n_rungs - 1 .. 0`` (ascending; the last is the target)."""
    if not (eta > 1 and math.isfinite(eta)):
        raise ConfigError(f"--eta must be a number above 1, got {eta!r}")
    if n_rungs < 1:
        raise ConfigError(f"--rungs must be at least 1, got {n_rungs!r}")
    return [target_gflops / eta ** k for k in range(n_rungs - 1, -1, -1)]


@dataclass(frozen=True)
class Observation:
    """One finished run: configuration, its rung's compute (GFLOPs) and measured top-1 (a fraction)."""

    key: Key
    gflops: float
    top1: float


@dataclass(frozen=True)
class Posterior:
    """Predictions at the target for ``keys``: log-error mean and sd, and top-1 bounds at ``level``."""

    keys: tuple[Key, ...]
    mean_log_error: np.ndarray
    sd_log_error: np.ndarray
    z: float
    n_observations: int
    effective_draws: float
    noise_sd: float = 0.0  #: the run-noise sd the refit chose (log error)

    @property
    def top1(self) -> np.ndarray:
        return law.to_accuracy(self.mean_log_error)

    @property
    def ci_low(self) -> np.ndarray:
        return law.to_accuracy(self.mean_log_error + self.z * self.sd_log_error)

    @property
    def ci_high(self) -> np.ndarray:
        return law.to_accuracy(self.mean_log_error - self.z * self.sd_log_error)

    def index(self, key: Key) -> int:
        return self.keys.index(key)

    def as_dict(self) -> dict[Key, tuple[float, float, float]]:
        """key → (predicted top-1, ci_low, ci_high)."""
        return {k: (float(a), float(b), float(c)) for k, a, b, c in zip(self.keys, self.top1, self.ci_low, self.ci_high)}


class StudyLaw:
    """Prior draws for (configuration, compute) pairs, cached, and the refit (:meth:`posterior`).

    Args:
        target_gflops: the study's target compute (paper convention, GFLOPs).
        options: the plan options rows are enumerated with at each compute.
        config: the refit's settings.
        fit: a FIT.json to start from instead of the built-in prior.
    """

    def __init__(self, target_gflops: float, options: PlanOptions, config: PolicyConfig = PolicyConfig(),
                 fit: str | None = None):
        self.target_gflops = float(target_gflops)
        self.options = options
        self.config = config
        self.fit = fit
        self._rows: dict[float, dict[Key, dict[str, Any]]] = {}
        self._draws: dict[tuple[Key, float], np.ndarray] = {}
        self._pick: np.ndarray | None = None

    def rows_at(self, gflops: float) -> dict[Key, dict[str, Any]]:
        """The plan's rows at ``gflops`` (cached)."""
        g = float(gflops)
        if g not in self._rows:
            self._rows[g] = law.plan_rows(g, self.options)
        return self._rows[g]

    def row(self, key: Key, gflops: float) -> dict[str, Any]:
        rows = self.rows_at(gflops)
        if key not in rows:
            raise ConfigError(f"configuration {law.key_str(key)} has no plan row at {gflops:.4g} GFLOPs "
                              "(the plan drops it there: too few samples or epochs)")
        return rows[key]

    def draws(self, pairs: Sequence[tuple[Key, float]]) -> np.ndarray:
        """Prior log-error draws for (key, gflops) pairs: [n_draws, len(pairs)]."""
        missing = [p for p in dict.fromkeys((k, float(g)) for k, g in pairs) if p not in self._draws]
        if missing:
            full = law.prior_log_error_draws([self.row(k, g) for k, g in missing], self.fit)
            if self._pick is None:
                n = min(self.config.n_draws, full.shape[0])
                self._pick = np.unique(np.linspace(0, full.shape[0] - 1, n).round().astype(int))
            full = full[self._pick]
            for j, p in enumerate(missing):
                self._draws[p] = full[:, j]
        return np.stack([self._draws[(k, float(g))] for k, g in pairs], axis=1)

    def discrepancy(self, keys: Sequence[Key]) -> np.ndarray:
        """Per-configuration deviation scale at the target: the prior's model discrepancy (cached)."""
        missing = [k for k in keys if (k, "disc") not in self._draws]
        if missing:
            sd = law.prior_discrepancy_sd([self.row(k, self.target_gflops) for k in missing], self.fit)
            for k, v in zip(missing, sd):
                self._draws[(k, "disc")] = np.asarray(float(v))
        return np.asarray([float(self._draws[(k, "disc")]) for k in keys])

    def posterior(self, observations: Sequence[Observation], keys: Sequence[Key]) -> Posterior:
        """Refit on ``observations`` and predict at the target for ``keys`` (see the module docstring)."""
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # pragma: no cover - ships with scipy/scikit-learn stacks
            return self._posterior(observations, keys)
        with threadpool_limits(1):  # one study-sized solve: threads only contend on shared cores
            return self._posterior(observations, keys)

    def _posterior(self, observations: Sequence[Observation], keys: Sequence[Key]) -> Posterior:
        from scipy.linalg import cho_factor, cho_solve, solve_triangular

        c = self.config
        keys = tuple(keys)
        index = {k: i for i, k in enumerate(keys)}
        f_target = self.draws([(k, self.target_gflops) for k in keys])  # [B, n_cfg]
        tau = np.maximum(self.discrepancy(keys), c.config_sd)
        if not observations:
            mean = f_target.mean(axis=0)
            sd = np.sqrt(f_target.var(axis=0) + c.level_sd ** 2 + tau ** 2)
            return Posterior(keys, mean, sd, c.z, 0, float(f_target.shape[0]))
        for o in observations:
            if o.key not in index:
                raise ConfigError(f"observation of {law.key_str(o.key)} is not among the study's configurations")
        ci = np.asarray([index[o.key] for o in observations])
        t = np.log(np.asarray([o.gflops for o in observations]) / self.target_gflops)
        y = law.to_log_error(np.asarray([o.top1 for o in observations]))
        f_obs = self.draws([(o.key, o.gflops) for o in observations])  # [B, n_obs]
        same = ci[:, None] == ci[None, :]
        tt = np.outer(t, t)
        base = c.level_sd ** 2 + c.slope_sd ** 2 * tt + same * (tau[ci][:, None] ** 2 + c.config_slope_sd ** 2 * tt)
        resid = y[None, :] - f_obs  # [B, n_obs]
        best = None
        multipliers = c.noise_multipliers if len(ci) >= c.min_observations_for_noise else (1.0,)
        for noise in sorted({c.noise_sd * m for m in multipliers}):  # run noise: the likeliest of a few
            factor = cho_factor(base + np.eye(len(ci)) * noise ** 2, lower=True)
            alpha = cho_solve(factor, resid.T)  # [n_obs, B]
            loglik = -0.5 * np.einsum("ib,bi->b", alpha, resid)
            evidence = (np.log(np.mean(np.exp(loglik - loglik.max()))) + loglik.max()
                        - np.log(np.diag(factor[0])).sum())
            if best is None or evidence > best[0]:
                best = (evidence, noise, factor, alpha, loglik)
        _, noise, factor, alpha, loglik = best
        w = np.exp(loglik - loglik.max())
        w /= w.sum()
        k_star = c.level_sd ** 2 + (ci[None, :] == np.arange(len(keys))[:, None]) * tau[:, None] ** 2  # [n_cfg, n_obs]
        means = f_target + (k_star @ alpha).T  # [B, n_cfg]
        v = solve_triangular(factor[0], k_star.T, lower=True)
        var = np.maximum(c.level_sd ** 2 + tau ** 2 - (v ** 2).sum(axis=0), 1e-12)
        mean = w @ means
        spread = w @ (means - mean[None, :]) ** 2
        return Posterior(keys, mean, np.sqrt(var + spread), c.z, len(observations), float(1.0 / (w ** 2).sum()),
                         float(noise))


@dataclass(frozen=True)
class Decision:
    """What to do after a refit: configurations to prune, to promote (key → next rung index), whether done."""

    prune: tuple[Key, ...]
    promote: dict[Key, int] = field(default_factory=dict)
    best_lower_bound: float = 0.0
    reserved_gflops: float = 0.0


def decide(post: Posterior, *, level_of: Mapping[Key, int], alive: Sequence[Key],
           rung_costs: Mapping[Key, Sequence[float]], remaining_gflops: float) -> Decision:
    """Apply the promotion rule (module docstring).

    Args:
        post: predictions at the target for every observed configuration.
        level_of: key → highest rung index run so far (0-based; ``len(rung_costs[key]) - 1`` is the target).
        alive: configurations neither pruned nor finished.
        rung_costs: key → the cost (GFLOPs) of its run at each rung.
        remaining_gflops: study budget not yet spent.
    """
    lo, hi = post.ci_low, post.ci_high
    observed = [post.index(k) for k in level_of]
    best_lcb = float(max(lo[i] for i in observed)) if observed else 0.0
    prune = tuple(k for k in alive if hi[post.index(k)] < best_lcb)
    candidates = [k for k in alive if k not in prune and level_of[k] < len(rung_costs[k]) - 1]
    candidates.sort(key=lambda k: (-hi[post.index(k)], -post.top1[post.index(k)], law.key_str(k)))
    promote: dict[Key, int] = {}
    reserved = 0.0
    for k in candidates:
        nxt = level_of[k] + 1
        to_target = float(sum(rung_costs[k][nxt:]))
        if reserved + to_target <= remaining_gflops:
            promote[k] = nxt
            reserved += to_target
    if not promote and candidates:  # nothing can reach the target any more: one more rung for the best if it fits
        k = candidates[0]
        nxt = level_of[k] + 1
        if rung_costs[k][nxt] <= remaining_gflops:
            promote[k] = nxt
            reserved = float(rung_costs[k][nxt])
    return Decision(prune=prune, promote=promote, best_lower_bound=best_lcb, reserved_gflops=reserved)
