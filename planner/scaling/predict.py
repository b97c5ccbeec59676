"""Predictions with intervals from a fitted scaling law (numpy only: no scipy, pandas or pyarrow).

A :class:`ScalingModel` is what FIT.json (or the built-in prior, ``planner/prior/prior_fit.json``) holds:
the form, the point estimate, the bootstrap draws (each draw also draws every stated assumption from its
range, :mod:`planner.scaling.terms`) and the model discrepancy. ``predict(rows)`` returns a
:class:`Prediction` per row, vectorised over rows × draws:

* ``top1`` — point prediction of zero-shot top-1 (a fraction, in the fit's metric);
* ``ci_low``/``ci_high`` — 95 % predictive interval: parameter and assumption draws plus the model
  discrepancy (``N(0, sigma^2)`` on the form's log scale; sigma fitted to leave-one-source-out residuals with a stated
  prior, :func:`planner.scaling.discrepancy.discrepancy_sigma`);
* ``draws`` — ``[B, n]`` accuracies per parameter/assumption draw *without* discrepancy noise (rows share a
  draw);
* ``ranked`` — ``draws`` plus a discrepancy draw split into a part shared by every row and a part per
  configuration (:meth:`ScalingModel.discrepancy_draws`, stated assumption
  :data:`planner.scaling.terms.DISCREPANCY_SHARED`): what ``p_best`` and ties are computed from, paired
  across rows, so rows closer than the per-configuration discrepancy are not separated;
* ``extrapolation`` — outside the fitted compute range; ``finding_terms`` — per row, the stated
  assumptions (term parameters not fitted) the prediction rests on; ``assumptions`` (method) — all of them
  with values and ranges.

Example:
    >>> m = load_model(None)  # the built-in prior
    >>> p = m.predict([{"model": "ViT-B-32", "samples_seen": 1.28e10, "unique_samples": 4e8}])
    >>> bool(0.55 < p.top1[0] < 0.72 and p.ci_low[0] <= p.top1[0] <= p.ci_high[0])
    True
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from budget.errors import ConfigError
from planner.scaling import terms
from planner.scaling.data import Features, build_features, extrapolation_parts
from planner.scaling.forms import CORE_SATURATING, Form, accuracy, log_error, make_form, param_applies

PRIOR_PATH = Path(__file__).resolve().parent.parent / "prior" / "prior_fit.json"
PRIOR_NAME = "built-in prior (published results + stated assumptions)"


#: Seed of the ranking's discrepancy draws (fixed: plans are reproducible).
DISCREPANCY_SEED = 20240611


#: Floor of a predicted top-1 (ImageNet chance level): the forms' error can exceed 1 far outside the data.
CHANCE_TOP1 = 1e-3


def to_accuracy(log_err: np.ndarray) -> np.ndarray:
    """Top-1 from log error (the ``cherti`` form's output), floored at chance (:data:`CHANCE_TOP1`); for any
    form use :func:`planner.scaling.forms.accuracy`."""
    return np.clip(1.0 - np.exp(log_err), CHANCE_TOP1, 1.0)


@dataclass(frozen=True)
class Prediction:
    """Arrays over rows: point prediction and 95 % interval (fractions), and per-draw accuracies."""

    top1: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    draws: np.ndarray  # [B, n] accuracies (parameter + assumption draws; no discrepancy noise)
    extrapolation: np.ndarray  # bool per row
    finding_terms: list[list[str]]  # per row: stated assumptions (unfitted term parameters) it rests on
    ranked: np.ndarray | None = None  # [B, n] accuracies: draws + shared/per-configuration discrepancy


@dataclass(frozen=True)
class ScalingModel:
    """A fitted scaling law: form, parameters (natural units), bootstrap draws, fitted ranges."""

    name: str
    form: Form
    theta: np.ndarray
    draws: np.ndarray
    free: frozenset
    reference_pool: str
    compute_range_gflops: tuple[float, float]
    samples_range: tuple[float, float]
    sources: tuple[str, ...]
    info: Mapping

    @classmethod
    def from_dict(cls, d: Mapping, name: str) -> ScalingModel:
        try:
            if d.get("clipbudget_fit") not in (1, 2):
                raise KeyError("clipbudget_fit")
            pools = tuple(d.get("pools", ()))
            form = make_form(d["form"], pools, tuple(d.get("quality_pools", ())))
            names = list(d["param_names"])
            if names != list(form.params):
                raise KeyError("param_names")
            theta = np.asarray([d["params"][n] for n in names], dtype=float)
            draws = np.asarray(d["draws"], dtype=float)
            if draws.ndim != 2 or draws.shape[1] != len(names) or not len(draws):
                raise KeyError("draws")
            return cls(name=name, form=form, theta=theta, draws=draws, free=frozenset(d.get("free", names)),
                       reference_pool=str(d.get("reference_pool", "")),
                       compute_range_gflops=tuple(float(v) for v in d["compute_range_gflops"]),
                       samples_range=tuple(float(v) for v in d.get("samples_range", (0, np.inf))),
                       sources=tuple(d.get("sources", ())), info=d)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"{name} is not a clipbudget FIT.json (bad or missing '{exc.args[0] if exc.args else exc}'); "
                              "make one with 'clipbudget fit'") from None

    def features(self, rows: Sequence[Mapping]) -> Features:
        return build_features(rows, reference_pool=self.reference_pool)

    def predict(self, rows: Sequence[Mapping] | Features, level: float = 0.95) -> Prediction:
        """Predict zero-shot top-1 for ``rows`` (mappings as in :func:`planner.scaling.data.build_features`)."""
        x = rows if isinstance(rows, Features) else self.features(rows)
        point = accuracy(self.form, log_error(self.form, self.theta[None, :], x)[0])
        le = log_error(self.form, self.draws, x)
        acc = accuracy(self.form, le)
        a = (1 - level) / 2 * 100
        sigma = self.discrepancy(x)
        if sigma.any():  # predictive draws: a fixed normal stream, so answers are reproducible
            eps = np.random.default_rng(12345).standard_normal(le.shape) * sigma[None, :]
            lo, hi = np.percentile(accuracy(self.form, le + eps), [a, 100 - a], axis=0)
        else:
            lo, hi = np.percentile(acc, [a, 100 - a], axis=0)
        lo, hi = np.minimum(lo, point), np.maximum(hi, point)
        extra = self.outside_data(x)
        ranked = accuracy(self.form, le + self.discrepancy_draws(x, len(le), sigma=sigma)) if sigma.any() else acc
        return Prediction(top1=point, ci_low=lo, ci_high=hi, draws=acc, extrapolation=extra,
                          finding_terms=self._rows_terms(x), ranked=ranked)

    @property
    def discrepancy_shared_range(self) -> tuple[float, float]:
        """Range of the share of discrepancy variance common to all rows (the fit's
        ``discrepancy.shared_range`` when it states one, else :data:`planner.scaling.terms.DISCREPANCY_SHARED`)."""
        r = (self.info.get("discrepancy") or {}).get("shared_range") or terms.DISCREPANCY_SHARED.assumed
        return float(r[0]), float(r[1])

    def discrepancy_draws(self, x: Features, n_draws: int, *, sigma: np.ndarray | None = None,
                          seed: int = DISCREPANCY_SEED) -> np.ndarray:
        """``[n_draws, n]`` model-discrepancy draws on the form's log scale, paired across rows:
        ``sigma_i (sqrt(rho_b) z_b + sqrt(1 - rho_b) w_bc)`` with ``rho_b`` drawn uniformly from
        :attr:`discrepancy_shared_range` in every draw, ``z_b`` shared by all rows and ``w_bc`` one normal per
        configuration ``c`` (:func:`configuration_keys`). Each row's marginal is ``N(0, sigma_i^2)``, as the
        intervals'. Common random numbers: ``rho``/``z`` from a fixed stream, ``w_c`` from a stream seeded by
        the configuration's name, so a row's draws do not depend on which other rows are ranked."""
        sigma = self.discrepancy(x) if sigma is None else sigma
        lo, hi = self.discrepancy_shared_range
        rho = np.random.default_rng([seed, 0]).uniform(lo, hi, n_draws)
        z = np.random.default_rng([seed, 1]).standard_normal(n_draws)
        w = np.empty((n_draws, len(x)))
        streams: dict[str, np.ndarray] = {}
        for i, key in enumerate(configuration_keys(x)):
            if key not in streams:
                streams[key] = np.random.default_rng([seed, 2, zlib.crc32(key.encode())]).standard_normal(n_draws)
            w[:, i] = streams[key]
        return sigma[None, :] * (np.sqrt(rho)[:, None] * z[:, None] + np.sqrt(1.0 - rho)[:, None] * w)

    def outside_data(self, x: Features) -> np.ndarray:
        """Per row: outside the total-compute range of the fitted rows of the row's own pool (the whole fit's
        range for fits without per-pool ranges); a pool with no fitted rows is always outside."""
        ranges = self.info.get("pool_compute_ranges") or {}
        c_lo, c_hi = self.compute_range_gflops
        lo = np.full(len(x), c_lo)
        hi = np.full(len(x), c_hi)
        if ranges:
            for i, key in enumerate(x.pool_key):
                lo[i], hi[i] = ranges.get(key, (np.inf, -np.inf))
        return (x.total_gflops < lo * 0.999) | (x.total_gflops > hi * 1.001)

    @property
    def default_pool(self) -> str:
        """The pool predictions are for when a row names none: the fit's ``default_data_pool`` (the prior:
        ``commonpool``, see :mod:`planner.prior.build`), else its reference pool."""
        return str(self.info.get("default_data_pool") or self.reference_pool)

    @property
    def discrepancy_sigma(self) -> float:
        """Model discrepancy inside the fitted data, on the form's log scale (0 for fits without one)."""
        return float((self.info.get("discrepancy") or {}).get("sigma_log_error", 0.0))

    def discrepancy(self, x: Features) -> np.ndarray:
        """Per row: the discrepancy sigma, ``sqrt(s0^2 + (sc dc)^2 + (su du)^2)`` with ``dc``/``du`` the decades of
        total compute / unique samples outside the fitted data of the row's pool
        (:func:`planner.scaling.discrepancy.discrepancy_sigma`; older fits: one ``sigma_per_decade`` for both). A row
        of one of the fit's own sources (its ``source``; a row without one is ``own``, the user's) takes the
        fit's ``known_source`` calibration where it has one, so every answer of ``plan``/``predict`` from the
        built-in prior (a user's run, in none of its published sources) gets the new-source one."""
        d = self.info.get("discrepancy") or {}
        s1 = float(d.get("sigma_per_decade", 0.0))
        s0 = np.full(len(x), float(d.get("sigma_log_error", 0.0)))
        sc = np.full(len(x), float(d.get("sigma_per_decade_compute", s1)))
        su = np.full(len(x), float(d.get("sigma_per_decade_unique", s1)))
        known = d.get("known_source")
        if known and x.source is not None:
            own = np.isin(x.source, list(self.sources))
            s0 = np.where(own, float(known["sigma_log_error"]), s0)
            sc = np.where(own, float(known["sigma_per_decade_compute"]), sc)
            su = np.where(own, float(known["sigma_per_decade_unique"]), su)
        if not (sc.any() or su.any()) or not d.get("ranges"):
            return s0
        dc, du = extrapolation_parts(x, d["ranges"])
        return np.sqrt(s0 ** 2 + (sc * dc) ** 2 + (su * du) ** 2)

    @property
    def assumed_ranges(self) -> dict[str, tuple[float, float]]:
        return {k: tuple(v) for k, v in (self.info.get("assumed_ranges") or {}).items()}

    def assumptions(self, names: Sequence[str] | None = None) -> list[dict]:
        """The stated assumptions (term parameters this fit did not fit) with ``name``, ``term``, ``value``,
        ``range`` (drawn in every bootstrap draw), ``fitted`` (False), ``statement``, ``citation``;
        ``names`` limits the list. Fitted term parameters are listed by :meth:`terms_table`."""
        return [a for a in self.terms_table() if not a["fitted"] and (names is None or a["name"] in names)]

    def terms_table(self) -> list[dict]:
        """Every term parameter (fitted or assumed) as in :func:`planner.scaling.terms.assumption_table`."""
        if self.form.name != "saturating":
            return []
        params = {n: float(v) for n, v in zip(self.form.params, self.theta) if n not in CORE_SATURATING}
        return terms.assumption_table(params, self.free, self.assumed_ranges)

    def _rows_terms(self, x: Features) -> list[list[str]]:
        if self.form.name != "saturating":
            return [[] for _ in range(len(x))]
        out: list[list[str]] = [[] for _ in range(len(x))]
        for name in self.form.params:
            if name in self.free or name in CORE_SATURATING:
                continue
            hit = param_applies(self.form, name, x)
            for i in np.flatnonzero(hit):
                out[i].append(name)
        return out


def configuration_keys(x: Features) -> list[str]:
    """Per row: the configuration its per-configuration discrepancy belongs to (model, strategy, FLIP mask,
    quality fraction, pool; not samples seen, so one configuration's scaling curve shares its error)."""
    return [f"{m}|{s}|{k:.4g}|{q:.4g}|{p}" for m, s, k, q, p in
            zip(x.model, x.strategy, x.mask, x.quality, x.pool_key)]


@lru_cache(maxsize=8)
def _load(path: str, mtime: float) -> ScalingModel:
    p = Path(path)
    try:
        with open(p, encoding="utf-8") as fh:
            d = json.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read fit file {p}: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ConfigError(f"{p} is not a clipbudget FIT.json (not JSON); make one with 'clipbudget fit'") from None
    if not isinstance(d, dict):
        raise ConfigError(f"{p} is not a clipbudget FIT.json (not a JSON object); make one with 'clipbudget fit'")
    name = PRIOR_NAME if p == PRIOR_PATH else f"fit {p.name} ({d.get('form', '?')} form)"
    return ScalingModel.from_dict(d, name)


def load_model(fit: str | os.PathLike | None = None) -> ScalingModel:
    """The built-in prior (``fit=None``) or a FIT.json written by ``clipbudget fit``."""
    p = PRIOR_PATH if fit is None else Path(fit)
    if not p.is_file():
        if fit is None:
            raise ConfigError(f"the built-in prior {p} is missing; regenerate it with 'python -m planner.prior.build'")
        raise ConfigError(f"no fit file at {p} (make one with 'clipbudget fit RESULTS --out FIT.json')")
    return _load(str(p), p.stat().st_mtime)


def predict_config(*, model: str, samples_seen: float, unique_samples: float, quality_fraction: float = 1.0,
                   strategy: str = "clip", flip_mask_ratio: float | None = None, image_size: int | None = None,
                   context_length: int | None = None, fit: str | os.PathLike | None = None,
                   data_pool: str | None = None) -> dict:
    """One configuration's prediction as the JSON ``clipbudget predict`` prints.

    Keys: ``predicted_top1``, ``ci_low``, ``ci_high`` (fractions, 95 % predictive interval), ``form``,
    ``fit``, ``metric``, ``extrapolation`` (outside the fitted total-compute range), ``finding_terms`` (names
    of the stated assumptions the prediction rests on), ``assumptions`` (those, with ``value`` and the
    ``range`` every bootstrap draw samples, ``statement`` and ``citation``), ``total_gflops`` (paper
    convention), ``data_pool`` (default: the fit's :attr:`ScalingModel.default_pool`), ``warnings``,
    ``sources``.
    """
    if not samples_seen > 0 or not unique_samples > 0:
        raise ConfigError(f"samples_seen={samples_seen:g} and unique_samples={unique_samples:g} must be positive")
    m = load_model(fit)
    data_pool = data_pool or m.default_pool or None
    row = {"model": model, "samples_seen": samples_seen, "unique_samples": unique_samples,
           "quality_fraction": quality_fraction, "strategy": strategy, "image_size": image_size,
           "context_length": context_length, "data_pool": data_pool}
    if flip_mask_ratio is not None:
        row["flip_mask_ratio"] = flip_mask_ratio
    x = m.features([row])
    p = m.predict(x)
    used = p.finding_terms[0]
    warnings = []
    if strategy == "flip" and float(x.mask[0]) > terms.FLIP_MAX_PUBLISHED_MASK:
        warnings.append(f"FLIP mask {float(x.mask[0]):g} is beyond the largest published mask "
                        f"({terms.FLIP_MAX_PUBLISHED_MASK:g}, FLIP Table 1): the mask term is extrapolated")
    if p.extrapolation[0]:
        warnings.append("outside the compute range of the fitted data for this pool: an extrapolation")
    return {
        "model": model,
        "strategy": strategy,
        "samples_seen": float(samples_seen),
        "unique_samples": float(unique_samples),
        "quality_fraction": float(quality_fraction),
        "total_gflops": float(x.total_gflops[0]),
        "predicted_top1": float(p.top1[0]),
        "ci_low": float(p.ci_low[0]),
        "ci_high": float(p.ci_high[0]),
        "form": m.form.name,
        "fit": m.name,
        "metric": str(m.info.get("metric", "zeroshot_top1")),
        "data_pool": data_pool or m.reference_pool or None,
        "extrapolation": bool(p.extrapolation[0]),
        "finding_terms": used,
        "assumptions": m.assumptions(used),
        "warnings": warnings,
        "sources": list(m.sources) + term_citations(used),
    }


def term_citations(names: Sequence[str]) -> list[str]:
    """Citations of finding-based terms (for a prediction's ``sources``)."""
    groups: dict[str, list[str]] = {}
    cites: dict[str, str] = {}
    for n in names:
        t = terms.term_of(n)
        key = t.name if t is not None else "pool" if n.startswith(("pool:", "pool_slope:")) else None
        if key is None:
            continue
        groups.setdefault(key, []).append(n)
        cites[key] = t.citation if t is not None else terms.POOL_CITATION
    return [f"{k} ({', '.join(v)}): {cites[k]}" for k, v in groups.items()]
