"""What a compute budget buys: the grid of model × strategy × data-subset configurations.

For every model × strategy × quality fraction, :func:`enumerate_plan` works out how many samples the
budget buys at that configuration's per-sample cost, over how many unique samples (the top
``quality_fraction`` of a pool) and for how many epochs, in the seed paper's compute convention:

* ``gflops_per_sample`` = strategy-adjusted per-sample *forward* GFLOPs of image + text tower
  (FLOPs = 2 × MACs; :func:`budget.flops.sample_cost`), e.g. 14.78 for ViT-B-32 at 224 px / 77 tokens;
* ``samples_seen`` = budget GFLOPs / ``gflops_per_sample`` (rounded down to whole samples);
* ``unique_samples`` = min(pool × quality fraction, ``samples_seen``): a budget that buys less than one
  pass over the subset sees only part of it, once (``epochs`` = 1);
* ``epochs`` = ``samples_seen`` / ``unique_samples``; above ``max_epochs`` (default 32, the most the seed
  paper ran) the row is capped at ``max_epochs`` passes and marked ``limited_by="data"``: the data pool,
  not compute, is the limit and part of the budget goes unspent;
* ``total_gflops`` = ``gflops_per_sample`` × ``samples_seen``; ``train_flops`` = 3 × forward FLOPs;
  ``gpu_hours`` = ``train_flops`` on the chosen GPU at the given model-FLOPs utilisation.

Rows that cannot run (FLIP on a non-ViT image tower, fewer epochs than ``min_epochs``, a budget that buys
less than one sample, a size the model cannot take) are dropped and counted by reason.

Pure: no I/O beyond reading the model catalog, no torch.

Example:
    >>> from budget.units import parse_budget
    >>> plan = enumerate_plan(parse_budget(gflops=1e10), models=("ViT-B-32",), strategies=("clip",),
    ...                       quality_fractions=(0.4,))
    >>> row = plan.rows[0]
    >>> row.model, row.quality_fraction, row.unique_samples, row.epochs, row.limited_by
    ('ViT-B-32', 0.4, 676719846, 1.0, 'compute')
"""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from budget.errors import ConfigError
from budget.hardware import DEFAULT_GPU, DEFAULT_MFU
from budget.vocabulary import DEFAULT_FLIP_MASK_RATIO

#: The seed paper's models (Li, Xie, Cubuk 2024: ViT-Ti/S/B/L and its CNN comparison).
DEFAULT_MODELS: tuple[str, ...] = (
    "ViT-Ti-16", "ViT-S-16", "ViT-B-32", "ViT-B-16", "ViT-L-16", "RN50", "convnext_tiny",
)
#: Larger catalog ViTs, added to the default candidates when a budget's compute-optimal model is larger than
#: any default one (``clipbudget plan`` says so): Cherti et al.'s and DataComp's largest models.
LARGER_MODELS: tuple[str, ...] = ("ViT-L-14", "ViT-H-14", "ViT-g-14", "ViT-bigG-14")
#: Quality fractions of the seed paper (top 20/40/60/80 % by image-text similarity, and the whole pool).
DEFAULT_QUALITY_FRACTIONS: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8, 1.0)
#: The seed paper's pool: the English subset of WebLI, ≈ 3.4e9 image-text pairs.
DEFAULT_POOL_SIZE = 3_400_000_000
#: At most this many passes over a subset (the seed paper's longest schedule: 32 epochs).
DEFAULT_MAX_EPOCHS = 32.0
#: No lower bound on repetition by default (a budget short of one pass sees part of the subset once).
DEFAULT_MIN_EPOCHS = 1.0

LIMITED_BY = ("compute", "data")

# Reasons a row is dropped (keys of Plan.dropped; shown to the user as they are).
REASON_FLIP_NON_VIT = "flip needs a ViT image tower"
REASON_BELOW_ONE_SAMPLE = "budget buys less than one sample"
REASON_MIN_EPOCHS = "fewer epochs than --min-epochs"


@dataclass(frozen=True)
class PlanRow:
    """One configuration the budget can pay for (units in the field names; counts are samples).

    ``gflops_per_sample`` is the strategy-adjusted per-sample forward cost (paper convention,
    FLOPs = 2 × MACs); ``total_gflops`` = ``gflops_per_sample`` × ``samples_seen``; ``train_flops`` =
    3 × ``total_gflops`` × 1e9; ``gpu_hours`` is ``train_flops`` on the plan's GPU at its MFU;
    ``params_m`` is both towers' parameters in millions; ``limited_by`` is ``"compute"`` (the budget is
    spent) or ``"data"`` (capped at ``max_epochs`` passes over ``unique_samples``; budget left unspent).
    """

    model: str
    strategy: str
    flip_mask_ratio: float
    image_size: int
    context_length: int
    quality_fraction: float
    pool_size: int
    unique_samples: int
    samples_seen: int
    epochs: float
    gflops_per_sample: float
    total_gflops: float
    train_flops: float
    gpu_hours: float
    params_m: float
    limited_by: str

    def to_dict(self) -> dict[str, Any]:
        """The row as a plain dict (field order kept)."""
        return asdict(self)


@dataclass(frozen=True)
class Plan:
    """The feasible rows, the dropped ones counted by reason, and warnings about the whole plan.

    ``budget_gflops`` is the budget (paper convention, GFLOPs); ``gpu``/``mfu`` what ``gpu_hours`` assume.
    """

    rows: list[PlanRow]
    dropped: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    budget_gflops: float = 0.0
    gpu: str = DEFAULT_GPU
    mfu: float = DEFAULT_MFU

    @property
    def considered(self) -> int:
        """Rows enumerated before filters (kept + dropped)."""
        return len(self.rows) + sum(self.dropped.values())


def enumerate_plan(
    budget: Any,
    *,
    models: Sequence[str] = DEFAULT_MODELS,
    strategies: Sequence[str] | None = None,
    quality_fractions: Sequence[float] = DEFAULT_QUALITY_FRACTIONS,
    pool_size: float = DEFAULT_POOL_SIZE,
    min_epochs: float = DEFAULT_MIN_EPOCHS,
    max_epochs: float = DEFAULT_MAX_EPOCHS,
    flip_mask_ratio: float = DEFAULT_FLIP_MASK_RATIO,
    image_size: int | None = None,
    context_length: int | None = None,
    gpu: str = DEFAULT_GPU,
    mfu: float = DEFAULT_MFU,
) -> Plan:
    """Every model × strategy × quality-fraction configuration the budget pays for (see module docstring).

    Args:
        budget: a :class:`budget.units.Budget` (or anything with ``.gflops``), or a number of GFLOPs
            (paper convention: per-sample forward GFLOPs × samples seen).
        models: catalog names or paths of open_clip JSON configs.
        strategies: subset of :data:`budget.flops.STRATEGIES` (default: all four).
        quality_fractions: top fractions of the pool, each in (0, 1].
        pool_size: image-text pairs in the data pool (count).
        min_epochs, max_epochs: passes over the subset; rows below ``min_epochs`` are dropped, rows above
            ``max_epochs`` are capped (``limited_by="data"``).
        flip_mask_ratio: fraction of patches FLIP drops, in [0, 1).
        image_size, context_length: pixels / tokens; None: each model's own.
        gpu, mfu: what ``gpu_hours`` assume (:data:`budget.hardware.GPUS`, model-FLOPs utilisation in (0, 1]).

    Raises:
        ConfigError: invalid arguments, or no row left after the filters (the message says which filter
            removed how many).
    """
    from budget.catalog import get_model
    from budget.cost import cost_for_samples, sample_cost_of
    from budget.hardware import gpu_hours as _gpu_hours
    from budget.vocabulary import STRATEGIES

    budget_gflops = float(getattr(budget, "gflops", budget))
    if not math.isfinite(budget_gflops) or budget_gflops <= 0:
        raise ConfigError(f"budget must be a positive, finite number of GFLOPs, got {budget_gflops!r}")
    strategies = tuple(STRATEGIES if strategies is None else strategies)
    models = tuple(models)
    quality_fractions = tuple(float(q) for q in quality_fractions)
    _check_arguments(models, strategies, STRATEGIES, quality_fractions, pool_size, min_epochs, max_epochs, mfu)
    pool = int(pool_size)
    _gpu_hours(1.0, gpu=gpu, mfu=mfu)  # validates gpu and mfu once, before the loop

    rows: list[PlanRow] = []
    dropped: dict[str, int] = {}

    def drop(reason: str, n: int = 1) -> None:
        dropped[reason] = dropped.get(reason, 0) + n

    for model in _unique(models):
        spec = get_model(model)
        name = spec.name if spec.path is None or _is_catalog_path(spec.path) else spec.path
        for strategy in _unique(strategies):
            if strategy == "flip" and spec.family != "vit":
                drop(REASON_FLIP_NON_VIT, len(quality_fractions))
                continue
            try:
                cost = sample_cost_of({"model": spec, "strategy": strategy, "image_size": image_size,
                                       "context_length": context_length, "flip_mask_ratio": flip_mask_ratio})
            except ConfigError as exc:  # e.g. an image size the patch size does not divide
                drop(f"{spec.name}: {exc}", len(quality_fractions))
                continue
            per_sample = cost.forward_gflops
            affordable = math.floor(budget_gflops / per_sample)
            for q in _unique(quality_fractions):
                if affordable < 1:
                    drop(REASON_BELOW_ONE_SAMPLE)
                    continue
                subset = max(1, round(pool * q))
                unique = min(subset, affordable)
                seen = affordable
                limited_by = "compute"
                if seen / unique > max_epochs:
                    seen = math.floor(max_epochs * unique)
                    limited_by = "data"
                epochs = seen / unique
                if epochs < min_epochs - 1e-12:
                    drop(REASON_MIN_EPOCHS)
                    continue
                spent = cost_for_samples(cost, seen, gpu=gpu, mfu=mfu)
                rows.append(PlanRow(
                    model=name, strategy=strategy, flip_mask_ratio=cost.flip_mask_ratio,
                    image_size=cost.image_size, context_length=cost.context_length, quality_fraction=q,
                    pool_size=pool, unique_samples=unique, samples_seen=seen, epochs=epochs,
                    gflops_per_sample=per_sample, total_gflops=spent.total_gflops, train_flops=spent.train_flops,
                    gpu_hours=spent.gpu_hours, params_m=cost.params_m,
                    limited_by=limited_by,
                ))

    if not rows:
        counts = "; ".join(f"{reason}: {n}" for reason, n in sorted(dropped.items(), key=lambda kv: -kv[1]))
        raise ConfigError(f"no configuration is left after the filters ({counts or 'nothing to enumerate'}); "
                          "relax --min-epochs/--max-epochs, raise the budget or change --models/--strategies")

    rows.sort(key=lambda r: (-r.samples_seen, r.model, r.strategy, -r.quality_fraction))
    return Plan(rows=rows, dropped=dropped, warnings=_plan_warnings(rows, budget_gflops, max_epochs),
                budget_gflops=budget_gflops, gpu=gpu, mfu=float(mfu))


def unspent_fraction(row: PlanRow, budget_gflops: float) -> float:
    """Share of the budget a row leaves unspent (0 for compute-limited rows, up to rounding)."""
    return max(0.0, 1.0 - row.total_gflops / budget_gflops)


def run_configs_for(
    rows: Sequence[Any],
    *,
    train_data: str,
    eval_data: str,
    image_size: int | None = None,
    context_length: int | None = None,
) -> list[Any]:
    """The bridge from a plan to a sweep: one :class:`runners.config.RunConfig` per plan row.

    Each row (a :class:`PlanRow` or a dict with its keys, e.g. a ranked row) keeps its model, strategy,
    FLIP mask, quality fraction, pool and sample counts; hyper-parameters come from the recipe
    :func:`runners.recipe.default_hyperparameters` (batch size, learning rate, warm-up for the samples
    seen). Relative data paths are made absolute against the current folder. ``image_size``/``context_length`` are written only when given (None: the model's own, so the
    run id does not change with a default). The configs are validated whole (:class:`ConfigError` names
    the row); write them with :func:`runners.gridfile.write_grid`.

    Example:
        >>> plan = enumerate_plan(1e8, models=("tiny-vit-28",), strategies=("flip",), quality_fractions=(1.0,),
        ...                       pool_size=1e6)
        >>> cfg, = run_configs_for(plan.rows, train_data="shards/", eval_data="eval/")
        >>> cfg.model, cfg.strategy, cfg.flip_mask_ratio, cfg.samples_seen == plan.rows[0].samples_seen
        ('tiny-vit-28', 'flip', 0.5, True)
    """
    from runners.config import RunConfig
    from runners.gridfile.paths import resolve_path
    from runners.recipe import default_hyperparameters

    # why: a run id hashes the data paths and a grid file resolves relative ones against its own folder, so
    # relative paths are made absolute here, against the caller's folder: one run id wherever the grid lives.
    train_data, eval_data = (resolve_path(str(p), os.getcwd()) for p in (train_data, eval_data))
    configs = []
    for row in rows:
        r = row.to_dict() if isinstance(row, PlanRow) else dict(row)
        seen = int(r["samples_seen"])
        d: dict[str, Any] = {
            "model": r["model"], "strategy": r["strategy"], "samples_seen": seen,
            "train_data": train_data, "eval_data": eval_data, "quality_fraction": r["quality_fraction"],
            "unique_samples": int(r["unique_samples"]), "pool_size": int(r["pool_size"]),
        }
        if r["strategy"] == "flip":
            d["flip_mask_ratio"] = r["flip_mask_ratio"]
        if image_size:
            d["image_size"] = image_size
        if context_length:
            d["context_length"] = context_length
        d.update(default_hyperparameters(r["model"], seen))
        configs.append(RunConfig.from_dict(d, where=f"plan row {r['model']}/{r['strategy']}"))
    return configs


# --- internals -------------------------------------------------------------------------------------


def _plan_warnings(rows: list[PlanRow], budget_gflops: float, max_epochs: float) -> list[str]:
    data_rows = [r for r in rows if r.limited_by == "data"]
    if not data_rows:
        return []
    spent = sorted(1.0 - unspent_fraction(r, budget_gflops) for r in data_rows)
    lo, hi = _share(spent[0]), _share(spent[-1])
    scope = "every row" if len(data_rows) == len(rows) else f"{len(data_rows)} of {len(rows)} rows"
    return [(f"the data pool, not compute, limits {scope}: capped at {max_epochs:g} epochs over their "
            f"unique samples, they spend only {lo if lo == hi else f'{lo} to {hi}'} of the budget and leave "
            "the rest unspent (raise --pool-size or --max-epochs, or lower the budget)")]


def _share(x: float) -> str:
    """A share of the budget: '62%', '0.4%', '1.6e-05'."""
    if x >= 0.1:
        return f"{x:.0%}"
    if x >= 0.001:
        return f"{x:.1%}"
    return f"{x:.2g}"


def _check_arguments(models: tuple, strategies: tuple, valid_strategies: Sequence[str],
                     quality_fractions: tuple, pool_size: float, min_epochs: float, max_epochs: float,
                     mfu: float) -> None:
    if not models:
        raise ConfigError("no models given; name at least one (clipbudget flops --list)")
    if not strategies:
        raise ConfigError(f"no strategies given; valid: {', '.join(valid_strategies)}")
    for s in strategies:
        if s not in valid_strategies:
            near = difflib.get_close_matches(str(s), list(valid_strategies), n=1, cutoff=0.5)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise ConfigError(f"unknown strategy {s!r}{hint}; valid: {', '.join(valid_strategies)}")
    if not quality_fractions:
        raise ConfigError("no quality fractions given; each must be in (0, 1], e.g. 0.2 0.4 1.0")
    for q in quality_fractions:
        if not (math.isfinite(q) and 0.0 < q <= 1.0):
            raise ConfigError(f"quality fraction {q:g} is outside (0, 1]; give the top share of the pool, "
                              "e.g. 0.4 for the top 40 %")
    if not (math.isfinite(float(pool_size)) and pool_size >= 1):
        raise ConfigError(f"pool size must be a positive number of image-text pairs, got {pool_size!r}")
    for name, value in (("min epochs", min_epochs), ("max epochs", max_epochs)):
        if not (math.isfinite(float(value)) and value > 0):
            raise ConfigError(f"{name} must be a positive number, got {value!r}")
    if min_epochs > max_epochs:
        raise ConfigError(f"--min-epochs {min_epochs:g} is above --max-epochs {max_epochs:g}")
    if not (math.isfinite(float(mfu)) and 0.0 < mfu <= 1.0):
        raise ConfigError(f"MFU must be in (0, 1], got {mfu!r} (0.4 is typical for large CLIP runs)")


def _unique(values: Sequence) -> list:
    seen: list = []
    for v in values:
        if v not in seen:
            seen.append(v)
    return seen


def _is_catalog_path(path: str) -> bool:
    from budget.catalog import MODELS_DIR

    return Path(path).resolve().parent == MODELS_DIR
