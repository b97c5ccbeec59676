"""A ground truth to rehearse a study against: no training, results drawn from a law (``--executor simulate``).

The truth is the prior with per-configuration deviations drawn from its own uncertainty, all seeded:

* the study-wide shape is a random mixture ``u·f_b1 + (1 - u)·f_b2`` of two of the prior's bootstrap draws
  of ``log(1 - top1)`` (so it is none of the draws the policy starts from);
* each configuration ``c`` deviates from it by ``d_c ~ N(0, sd_c)``, ``sd_c`` the prior's model discrepancy
  at the target for ``c`` (how far published results sit from the law; at least ``config_sd``), plus a slope ``e_c ~ N(0, config_slope_sd)`` per unit of
  ln(compute / target);
* every run adds noise ``N(0, noise_sd)`` (seeds), a deterministic function of (seed, configuration,
  compute), so that a resumed study sees the same results.

:meth:`GroundTruth.true_top1` is the noise-free top-1 (what regret is measured on).

Example:
    >>> from planner.study.law import PlanOptions
    >>> opts = PlanOptions(models=("ViT-B-32", "ViT-B-16"), strategies=("clip",), quality_fractions=(0.4,))
    >>> truth = GroundTruth(1e10, opts, [1e9, 1e10], seed=0)
    >>> k = ("ViT-B-16", "clip", 0.4)
    >>> truth.observe(k, 1e9) == truth.observe(k, 1e9), 0 < truth.true_top1(k) < 1
    (True, True)
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence

import numpy as np

from planner.study import law
from planner.study.law import Key, PlanOptions


class GroundTruth:
    """Seeded true top-1 of every configuration at every rung (see the module docstring).

    Args:
        target_gflops: the study's target (paper convention, GFLOPs).
        options: plan options (which configurations exist).
        rungs: every compute (GFLOPs) a run may be observed at; the target is added.
        seed: the truth's and the noise's seed.
        noise_sd, config_sd, config_slope_sd: in ``log(1 - top1)``.
        fit: a FIT.json instead of the built-in prior.
    """

    def __init__(self, target_gflops: float, options: PlanOptions, rungs: Sequence[float], *, seed: int = 0,
                 noise_sd: float = 0.01, config_sd: float = 0.01, config_slope_sd: float = 0.005,
                 fit: str | None = None):
        self.target_gflops = float(target_gflops)
        self.seed = int(seed)
        self.noise_sd = float(noise_sd)
        rungs = sorted({float(g) for g in rungs} | {self.target_gflops})
        rows_at = {g: law.plan_rows(g, options) for g in rungs}
        self.keys: tuple[Key, ...] = tuple(rows_at[self.target_gflops])
        pairs = [(k, g) for g in rungs for k in self.keys if k in rows_at[g]]
        draws = law.prior_log_error_draws([rows_at[g][k] for k, g in pairs], fit)  # [B, n]
        rng = np.random.default_rng([self.seed, 7])
        b1, b2 = rng.choice(draws.shape[0], size=2, replace=False)
        u = rng.uniform()
        shape = u * draws[b1] + (1 - u) * draws[b2]
        target_cols = [i for i, (_, g) in enumerate(pairs) if g == self.target_gflops]
        disc = law.prior_discrepancy_sd([rows_at[self.target_gflops][pairs[i][0]] for i in target_cols], fit)
        spread = {pairs[i][0]: float(d) for i, d in zip(target_cols, disc)}
        dev = {k: (rng.normal(0, max(spread[k], config_sd)), rng.normal(0, config_slope_sd)) for k in self.keys}
        self._true: dict[tuple[Key, float], float] = {}
        for (k, g), f in zip(pairs, shape):
            d, e = dev[k]
            self._true[(k, g)] = float(f + d + e * math.log(g / self.target_gflops))

    def true_log_error(self, key: Key, gflops: float | None = None) -> float:
        g = self.target_gflops if gflops is None else float(gflops)
        try:
            return self._true[(key, g)]
        except KeyError:
            raise KeyError(f"no simulated truth for {law.key_str(key)} at {g:.6g} GFLOPs") from None

    def true_top1(self, key: Key, gflops: float | None = None) -> float:
        """Noise-free top-1 (a fraction); at the target unless ``gflops`` is given."""
        return float(law.to_accuracy(self.true_log_error(key, gflops)))

    def observe(self, key: Key, gflops: float) -> float:
        """One run's measured top-1: the truth plus seeded noise."""
        tag = zlib.crc32(f"{law.key_str(key)}@{float(gflops):.6g}".encode())
        noise = np.random.default_rng([self.seed, 11, tag]).normal(0, self.noise_sd)
        return float(law.to_accuracy(self.true_log_error(key, gflops) + noise))

    def best(self) -> tuple[Key, float]:
        """The configuration with the highest true top-1 at the target, and that top-1."""
        k = max(self.keys, key=lambda key: (self.true_top1(key), law.key_str(key)))
        return k, self.true_top1(k)

    def regret(self, key: Key) -> float:
        """True best top-1 at the target minus the true top-1 of ``key`` (fractions; ≥ 0)."""
        return self.best()[1] - self.true_top1(key)
