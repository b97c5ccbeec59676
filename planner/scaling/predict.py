"""Predictions with intervals from a fitted scaling law (numpy only: no scipy, pandas or pyarrow).

A :class:`ScalingModel` is what FIT.json (or the built-in prior, ``planner/prior/prior_fit.json``) holds:
the form, the point estimate and the bootstrap draws. ``predict(rows)`` returns the point prediction of
zero-shot top-1 (a fraction) and the 2.5/97.5 percentiles over the draws for every row, vectorised over
rows × draws.

Example:
    >>> m = load_model(None)  # the built-in prior
    >>> p = m.predict([{"model": "ViT-B-32", "samples_seen": 1.28e10, "unique_samples": 4e8}])
    >>> bool(0.55 < p.top1[0] < 0.72 and p.ci_low[0] <= p.top1[0] <= p.ci_high[0])
    True
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from budget.errors import ConfigError
from planner.scaling import terms
from planner.scaling.data import Features, build_features
from planner.scaling.forms import Form, log_error, make_form

PRIOR_PATH = Path(__file__).resolve().parent.parent / "prior" / "prior_fit.json"
PRIOR_NAME = "built-in prior (published results + finding-based terms)"


#: Floor of a predicted top-1 (ImageNet chance level): the forms' error can exceed 1 far outside the data.
CHANCE_TOP1 = 1e-3


def to_accuracy(log_err: np.ndarray) -> np.ndarray:
    """Top-1 from log error, floored at chance (:data:`CHANCE_TOP1`)."""
    return np.clip(1.0 - np.exp(log_err), CHANCE_TOP1, 1.0)


@dataclass(frozen=True)
class Prediction:
    """Arrays over rows: point prediction and 95 % interval (fractions), and per-draw accuracies."""

    top1: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    draws: np.ndarray  # [B, n] accuracies
    extrapolation: np.ndarray  # bool per row
    finding_terms: list[list[str]]  # per row: fixed (finding-based) terms the prediction rests on


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
            if d.get("clipbudget_fit") != 1:
                raise KeyError("clipbudget_fit")
            pools = tuple(d.get("pools", ()))
            form = make_form(d["form"], pools)
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
        point = to_accuracy(log_error(self.form, self.theta[None, :], x)[0])
        acc = to_accuracy(log_error(self.form, self.draws, x))
        a = (1 - level) / 2 * 100
        lo, hi = np.percentile(acc, [a, 100 - a], axis=0)
        lo, hi = np.minimum(lo, point), np.maximum(hi, point)
        c_lo, c_hi = self.compute_range_gflops
        extra = (x.total_gflops < c_lo * 0.999) | (x.total_gflops > c_hi * 1.001)
        return Prediction(top1=point, ci_low=lo, ci_high=hi, draws=acc, extrapolation=extra,
                          finding_terms=[self._terms_used(x, i) for i in range(len(x))])

    def _terms_used(self, x: Features, i: int) -> list[str]:
        if self.form.name != "saturating":
            return []
        used = []
        checks = {
            "quality_clean": x.quality[i] < 1.0,
            "slip_kappa": x.is_slip[i] > 0,
            "flip_phi": x.is_flip[i] > 0,
            "aug_lambda": x.is_aug[i] > 0,
            "conv_data": x.conv[i] > 0,
            "conv_capacity": x.conv[i] > 0,
            "gamma": True,
        }
        for name, applies in checks.items():
            if applies and name not in self.free:
                used.append(name)
        return used


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
                   context_length: int | None = None, fit: str | os.PathLike | None = None) -> dict:
    """One configuration's prediction as the JSON ``clipbudget predict`` prints.

    Keys: ``predicted_top1``, ``ci_low``, ``ci_high`` (fractions, 95 %), ``form``, ``fit``,
    ``extrapolation`` (outside the fitted total-compute range), ``finding_terms`` (finding-based terms the
    prediction rests on), ``total_gflops`` (paper convention), ``sources``.
    """
    if not samples_seen > 0 or not unique_samples > 0:
        raise ConfigError(f"samples_seen={samples_seen:g} and unique_samples={unique_samples:g} must be positive")
    m = load_model(fit)
    row = {"model": model, "samples_seen": samples_seen, "unique_samples": unique_samples,
           "quality_fraction": quality_fraction, "strategy": strategy, "image_size": image_size,
           "context_length": context_length}
    if flip_mask_ratio is not None:
        row["flip_mask_ratio"] = flip_mask_ratio
    x = m.features([row])
    p = m.predict(x)
    used = p.finding_terms[0]
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
        "extrapolation": bool(p.extrapolation[0]),
        "finding_terms": used,
        "sources": list(m.sources) + term_citations(used),
    }


def term_citations(names: Sequence[str]) -> list[str]:
    """Citations of finding-based terms (for a prediction's ``sources``)."""
    return [f"{n}: {terms.CITATIONS[n]}" for n in names if n in terms.CITATIONS]
