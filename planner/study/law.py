"""The study's one adapter to the plan and the scaling law (:mod:`planner.plan`, :mod:`planner.scaling`).

Everything the study needs from those packages goes through this module, so an API change there is fixed
here only:

* :func:`plan_rows` — the plan's rows at one compute budget, keyed by configuration
  (``(model, strategy, quality_fraction)``), from :func:`planner.plan.enumerate_plan`;
* :func:`prior_log_error_draws` — the prior's bootstrap draws of ``log(1 - top1)`` for rows
  (:meth:`planner.scaling.predict.ScalingModel.predict`, accuracies turned back into log error);
* :func:`prior_discrepancy_sd` — the prior's model discrepancy per row (how far one configuration may sit
  from the law), the scale of per-configuration deviations.

Compute is the paper convention throughout: per-sample forward GFLOPs × samples seen.

Example:
    >>> rows = plan_rows(1e10, PlanOptions(models=("ViT-B-32",), strategies=("clip",), quality_fractions=(0.4,)))
    >>> list(rows)
    [('ViT-B-32', 'clip', 0.4)]
    >>> draws = prior_log_error_draws(list(rows.values()))
    >>> draws.shape[1], bool((draws < 0).all())
    (1, True)
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from budget.errors import ConfigError
from budget.hardware import DEFAULT_GPU, DEFAULT_MFU

#: A configuration's key: model, strategy, quality fraction.
Key = tuple[str, str, float]

#: Floor of ``1 - top1`` when turning an accuracy back into log error.
_MIN_ERROR = 1e-6


@dataclass(frozen=True)
class PlanOptions:
    """The plan options a study enumerates with (see :func:`planner.plan.enumerate_plan`); ``None`` = default."""

    models: tuple[str, ...] | None = None
    strategies: tuple[str, ...] | None = None
    quality_fractions: tuple[float, ...] | None = None
    pool_size: float | None = None
    min_epochs: float | None = None
    max_epochs: float | None = None
    flip_mask_ratio: float | None = None
    image_size: int | None = None
    context_length: int | None = None
    gpu: str = DEFAULT_GPU
    mfu: float = DEFAULT_MFU
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("extra")
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PlanOptions:
        kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**kw)


def key_of(row: Mapping[str, Any]) -> Key:
    """A row's configuration key."""
    return (str(row["model"]), str(row["strategy"]), round(float(row["quality_fraction"]), 6))


def key_str(key: Key) -> str:
    """``ViT-B-32/clip/q0.4`` (stable text form of a key)."""
    return f"{key[0]}/{key[1]}/q{key[2]:g}"


def plan_rows(gflops: float, options: PlanOptions) -> dict[Key, dict[str, Any]]:
    """The plan's rows at ``gflops`` (paper convention) as plain dicts keyed by configuration.

    Raises :class:`ConfigError` from :func:`planner.plan.enumerate_plan` (bad options, nothing affordable).
    """
    from planner.plan import enumerate_plan

    kw: dict[str, Any] = {k: v for k, v in options.to_dict().items() if v is not None and k not in ("gpu", "mfu")}
    for k in ("models", "strategies", "quality_fractions"):
        if k in kw:
            kw[k] = tuple(kw[k])
    plan = enumerate_plan(float(gflops), gpu=options.gpu, mfu=options.mfu, **kw)
    out = {}
    for r in plan.rows:
        d = dict(vars(r))  # PlanRow.to_dict() is asdict(): a deep copy, 20x slower for these flat rows
        out[key_of(d)] = d
    return out


def prior_log_error_draws(rows: Sequence[Mapping[str, Any]], fit: str | os.PathLike | None = None) -> np.ndarray:
    """The fit's (default: the built-in prior's) draws of ``log(1 - top1)`` for ``rows``: shape [draws, rows]."""
    from planner.scaling.predict import load_model

    if not rows:
        raise ConfigError("no rows to predict")
    model = load_model(fit)
    pred = model.predict([dict(r) for r in rows])
    return np.log(np.clip(1.0 - np.asarray(pred.draws, dtype=float), _MIN_ERROR, 1.0))


def prior_discrepancy_sd(rows: Sequence[Mapping[str, Any]], fit: str | os.PathLike | None = None) -> np.ndarray:
    """The fit's model-discrepancy sd per row, in log error: how far a real configuration may sit from the law
    beyond the parameters' uncertainty (:meth:`planner.scaling.predict.ScalingModel.discrepancy`; zeros for a
    fit without one)."""
    from planner.scaling.predict import load_model

    model = load_model(fit)
    if not hasattr(model, "discrepancy"):
        return np.zeros(len(rows))
    return np.asarray(model.discrepancy(model.features([dict(r) for r in rows])), dtype=float)


def prior_name(fit: str | os.PathLike | None = None) -> str:
    """The fit's display name."""
    from planner.scaling.predict import load_model

    return load_model(fit).name


def to_accuracy(log_error: np.ndarray | float) -> np.ndarray:
    """``1 - exp(log_error)``, clipped to [0, 1]."""
    return np.clip(1.0 - np.exp(np.asarray(log_error, dtype=float)), 0.0, 1.0)


def to_log_error(top1: np.ndarray | float) -> np.ndarray:
    """``log(1 - top1)`` with ``1 - top1`` floored at 1e-6."""
    return np.log(np.clip(1.0 - np.asarray(top1, dtype=float), _MIN_ERROR, 1.0))


def run_configs(rows: Sequence[Mapping[str, Any]], *, train_data: str, eval_data: str,
                options: PlanOptions) -> list[Any]:
    """One :class:`runners.config.RunConfig` per plan row (:func:`planner.plan.run_configs_for`)."""
    from planner.plan import run_configs_for

    return run_configs_for(list(rows), train_data=train_data, eval_data=eval_data, image_size=options.image_size,
                           context_length=options.context_length)
