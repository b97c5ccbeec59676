"""One training run as a frozen dataclass of plain values: :class:`RunConfig`.

A ``RunConfig`` is what ``clipbudget run CONFIG.yaml`` trains, what one entry of a grid file holds and
what is saved whole (as JSON) with every result row. Its :attr:`RunConfig.run_id` is a stable hash of the
fields that change the result, so re-submitting the same configuration finds its existing result.

This module imports neither torch nor pyarrow (``plan --emit-grid`` and ``submit`` use it); the model
name is checked against :mod:`budget.catalog`, imported lazily.

Units: ``samples_seen``, ``unique_samples``, ``pool_size`` and ``batch_size`` are counts of image-text
pairs (``batch_size`` is the *global* batch: all GPUs and all accumulation steps together);
``warmup_steps`` and ``checkpoint_every_steps`` count optimizer steps; ``image_size`` is pixels;
``context_length`` is tokens; ``quality_fraction`` and ``flip_mask_ratio`` are fractions.

Example:
    >>> cfg = RunConfig.from_dict({"model": "ViT-B-32", "strategy": "flip", "samples_seen": "1.36e9",
    ...                            "train_data": "/data/shards", "eval_data": "/data/eval"},
    ...                           check_model=False)
    >>> cfg.samples_seen, cfg.flip_mask_ratio, cfg.aug
    (1360000000, 0.5, 'none')
    >>> len(cfg.run_id)
    16
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import logging
import math
import os
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from budget.coerce import to_float as _to_float
from budget.coerce import to_int as _to_int
from budget.errors import ConfigError
from budget.vocabulary import (  # the strategy/augmentation vocabulary, defined once (re-exported here)
    AUG_PRESETS,
    SLIP_EMB_DIM,
    SLIP_MLP_DIM,
    STRATEGIES,
    default_aug,
    default_flip_mask_ratio,
)

log = logging.getLogger(__name__)

#: Numeric precision choices (open_clip's ``--precision`` names, plus ``auto``: bf16 autocast where the
#: device supports it, else fp32).
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "amp", "amp_bf16", "bf16", "fp16", "pure_bf16", "pure_fp16")
#: Fields that do not change the result and are left out of :attr:`RunConfig.run_id`.
NON_RESULT_FIELDS: frozenset[str] = frozenset({"workers", "eval_batch_size", "checkpoint_every_steps"})
#: Fields without a default.
REQUIRED_FIELDS: tuple[str, ...] = ("model", "strategy", "samples_seen", "train_data", "eval_data")
#: Salt of the run_id hash; bump only when the meaning of a field changes.
_RUN_ID_SALT = "clipbudget-run-v1"


@dataclass(frozen=True)
class RunConfig:
    """One training run (plain values; validated on construction; hashed into :attr:`run_id`).

    Construct it with :meth:`from_dict` for user input (coerces ``"1.36e9"`` and reports every problem
    at once); the constructor validates too, so an invalid ``RunConfig`` cannot exist. ``None`` for
    ``flip_mask_ratio``/``aug`` resolves on construction (0.5 for ``flip`` else 0.0; ``stacked_randaug``
    for ``clip_aug`` else ``none``); ``None`` for ``image_size``/``context_length`` means the model's own.
    """

    model: str  #: catalog name (``budget.catalog``) or path to an open_clip JSON config
    strategy: str  #: clip | slip | flip | clip_aug
    samples_seen: int  #: image-text pairs seen in training (count)
    train_data: str  #: training shards (folder, brace pattern or URL)
    eval_data: str  #: evaluation set folder (``runners.data.evalset`` layout)
    quality_fraction: float = 1.0  #: top fraction of the pool by quality score, in (0, 1]
    unique_samples: int | None = None  #: pairs in the training subset (None: pool_size × quality_fraction)
    pool_size: int | None = None  #: pairs in the whole data pool (None: what the shards hold)
    data_pool: str = ""  #: a name for the pool, for tables ("" = unnamed)
    flip_mask_ratio: float | None = None  #: FLIP share of patches dropped, in [0, 1)
    aug: str | None = None  #: augmentation preset (AUG_PRESETS)
    image_size: int | None = None  #: pixels (None: the model's)
    context_length: int | None = None  #: text tokens (None: the model's)
    batch_size: int = 256  #: global batch (pairs per optimizer step)
    lr: float = 5e-4  #: peak learning rate (AdamW, cosine schedule)
    weight_decay: float = 0.2
    beta1: float = 0.9
    beta2: float = 0.98
    eps: float = 1e-6
    warmup_steps: int = 0  #: linear warm-up, optimizer steps
    grad_clip_norm: float = 1.0  #: global gradient-norm clip (0 = off)
    grad_accum_steps: int = 1  #: micro-batches per optimizer step (batch_size must divide evenly)
    grad_checkpointing: bool = False
    precision: str = "auto"  #: PRECISIONS
    slip_ssl_weight: float = 1.0  #: weight of SLIP's SimCLR loss
    slip_ssl_temperature: float = 0.1  #: SimCLR temperature
    seed: int = 0
    workers: int = 2  #: data-loader processes per GPU (not in run_id)
    checkpoint_every_steps: int = 0  #: 0 = automatic (not in run_id)
    eval_batch_size: int = 256  #: (not in run_id)
    linear_probe: bool = True  #: evaluate a linear probe
    retrieval: bool = True  #: evaluate image-text retrieval (needs captions in the eval set)
    slip_mlp_dim: int = SLIP_MLP_DIM  #: SLIP SSL head hidden width
    slip_emb_dim: int = SLIP_EMB_DIM  #: SLIP SSL head output width

    def __post_init__(self) -> None:
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        coerced, problems = _check_values(values, check_model=_CHECK_MODEL_ON_INIT.get())
        if problems:
            raise _config_error([msg for _, msg in problems], where="")
        for name, value in coerced.items():
            if value is not values[name]:
                object.__setattr__(self, name, value)

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, where: str = "", check_model: bool = True) -> RunConfig:
        """Build a config from user input, reporting **every** problem in one :class:`ConfigError`.

        Counts given as floats or strings (``1.36e9``, ``"1.36e9"``) become ints when whole; numeric
        strings become floats. Unknown keys get the nearest field name as a suggestion. ``where``
        (e.g. ``"run.yaml"``) prefixes each problem. ``check_model=False`` skips the catalog look-up.
        """
        coerced, problems = check_config_dict(d, check_model=check_model)
        if problems:
            raise _config_error([msg for _, msg in problems], where=where)
        token = _CHECK_MODEL_ON_INIT.set(False)  # checked above; do not look the model up twice
        try:
            return cls(**coerced)
        finally:
            _CHECK_MODEL_ON_INIT.reset(token)

    @classmethod
    def from_json(cls, text: str, *, where: str = "") -> RunConfig:
        """Inverse of :meth:`to_json` (the ``config_json`` column of a result row)."""
        try:
            d = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{where + ': ' if where else ''}config JSON is not valid JSON: {exc}") from None
        if not isinstance(d, dict):
            raise ConfigError(f"{where + ': ' if where else ''}config JSON must be an object, got {type(d).__name__}")
        return cls.from_dict(d, where=where, check_model=False)

    def replace(self, **changes: Any) -> RunConfig:
        """A copy with ``changes`` applied, validated.

        Changing ``strategy`` without giving ``flip_mask_ratio``/``aug`` re-resolves their defaults
        (``dataclasses.replace`` would keep the old strategy's values and may then fail validation).
        """
        d = self.to_dict()
        if "strategy" in changes:
            for key in ("flip_mask_ratio", "aug"):
                if key not in changes:
                    d[key] = None
        d.update(changes)
        return type(self).from_dict(d, check_model="model" in changes)

    # ------------------------------------------------------------------ views

    def to_dict(self) -> dict[str, Any]:
        """All fields as plain values (JSON- and YAML-ready), in declaration order."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def to_json(self) -> str:
        """Canonical JSON of all fields (sorted keys), as stored in the ``config_json`` column."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def result_fields(self) -> dict[str, Any]:
        """The fields that define the result (all but :data:`NON_RESULT_FIELDS`)."""
        return {k: v for k, v in self.to_dict().items() if k not in NON_RESULT_FIELDS}

    def result_columns(self) -> dict[str, Any]:
        """The columns of a result row (``results.schema``) that this config determines.

        ``run_id``, the config columns, the data columns (``unique_samples`` and ``epochs`` when the
        subset size is known) and ``config_json`` (the whole config, canonical JSON). The runner adds
        compute, metrics and provenance.
        """
        out = {"run_id": self.run_id}
        for key in ("model", "strategy", "flip_mask_ratio", "aug", "image_size", "context_length", "batch_size",
                    "lr", "weight_decay", "warmup_steps", "seed", "data_pool", "pool_size", "quality_fraction",
                    "samples_seen"):  # fmt: skip
            out[key] = getattr(self, key)
        out["data_pool"] = self.data_pool or None
        out["unique_samples"] = self.effective_unique_samples
        out["epochs"] = self.epochs
        out["config_json"] = self.to_json()
        return out

    @property
    def run_id(self) -> str:
        """16 hex chars: sha256 of the canonical JSON of :meth:`result_fields` (stable across processes)."""
        payload = _RUN_ID_SALT + json.dumps(self.result_fields(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]

    @property
    def steps(self) -> int:
        """Optimizer steps: ceil(samples_seen / batch_size) (the last batch may be short)."""
        return -(-self.samples_seen // self.batch_size)

    @property
    def effective_unique_samples(self) -> int | None:
        """Unique pairs trained on: ``unique_samples``, else pool_size × quality_fraction, else None."""
        if self.unique_samples is not None:
            return self.unique_samples
        if self.pool_size is not None:
            return max(1, round(self.pool_size * self.quality_fraction))
        return None

    @property
    def epochs(self) -> float | None:
        """samples_seen / effective unique samples (passes over the subset), None when the subset size is unknown."""
        unique = self.effective_unique_samples
        return None if not unique else self.samples_seen / unique


# The constructor checks the model name unless from_dict has just done so.
_CHECK_MODEL_ON_INIT: ContextVar[bool] = ContextVar("_CHECK_MODEL_ON_INIT", default=True)

FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(RunConfig))
_DEFAULTS: dict[str, Any] = {
    f.name: f.default for f in dataclasses.fields(RunConfig) if f.default is not dataclasses.MISSING
}

_INT_FIELDS = {
    "samples_seen", "unique_samples", "pool_size", "image_size", "context_length", "batch_size",
    "warmup_steps", "grad_accum_steps", "seed", "workers", "checkpoint_every_steps", "eval_batch_size",
    "slip_mlp_dim", "slip_emb_dim",
}  # fmt: skip
_FLOAT_FIELDS = {
    "quality_fraction", "flip_mask_ratio", "lr", "weight_decay", "beta1", "beta2", "eps",
    "grad_clip_norm", "slip_ssl_weight", "slip_ssl_temperature",
}  # fmt: skip
_BOOL_FIELDS = {"grad_checkpointing", "linear_probe", "retrieval"}
_STR_FIELDS = {"model", "strategy", "train_data", "eval_data", "data_pool", "aug", "precision"}
_OPTIONAL = {"unique_samples", "pool_size", "flip_mask_ratio", "aug", "image_size", "context_length"}
if _INT_FIELDS | _FLOAT_FIELDS | _BOOL_FIELDS | _STR_FIELDS != set(FIELDS):  # pragma: no cover
    raise RuntimeError("runners.config: every RunConfig field needs a type class")


def suggest(name: str, choices: Any, n: int = 2) -> str:
    """`` (did you mean 'x'?)`` for the nearest of ``choices``, or ``""``."""
    near = difflib.get_close_matches(str(name), list(choices), n=n, cutoff=0.6)
    if not near:
        return ""
    return " (did you mean " + " or ".join(repr(x) for x in near) + "?)"


def choices_hint(value: Any, choices: Any) -> str:
    """`` (did you mean 'x'? valid: a, b, c)`` for a value not among ``choices``."""
    near = difflib.get_close_matches(str(value), [str(c) for c in choices], n=2, cutoff=0.6)
    mean = ("did you mean " + " or ".join(repr(x) for x in near) + "? ") if near else ""
    return f" ({mean}valid: {', '.join(str(c) for c in choices)})"


def _config_error(problems: list[str], where: str) -> ConfigError:
    prefix = f"{where}: " if where else ""
    lines = [prefix + p for p in problems]
    err = ConfigError("; ".join(lines))
    err.problems = lines  # type: ignore[attr-defined]
    return err


def _fmt(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


_MODEL_CHECKS: dict[str, str | None] = {}


def _model_problem(name: str) -> str | None:
    """The catalog's complaint about ``name`` (None if known), cached per name."""
    if name in _MODEL_CHECKS:
        return _MODEL_CHECKS[name]
    from budget.catalog import get_model
    from budget.errors import ClipbudgetError

    try:
        get_model(name)
        problem = None
    except ClipbudgetError as exc:  # UnknownModelError, or an unreadable custom JSON
        problem = str(exc).strip().splitlines()[0] if str(exc).strip() else f"unknown model {name!r}"
    _MODEL_CHECKS[name] = problem
    return problem


def check_config_dict(
    d: Mapping[str, Any], *, check_model: bool = True
) -> tuple[dict[str, Any], list[tuple[str | None, str]]]:
    """Coerce and check a mapping of RunConfig fields.

    Returns ``(values, problems)``: ``values`` holds the known keys, coerced, with defaults resolved;
    ``problems`` is a list of ``(key, message)`` (key None for problems of the whole config), empty when
    the mapping makes a valid :class:`RunConfig`. Used by :meth:`RunConfig.from_dict` and the grid
    loader (which maps each key to its line).
    """
    problems: list[tuple[str | None, str]] = []
    if not isinstance(d, Mapping):
        return {}, [(None, f"a run config must be a mapping of field: value, got {type(d).__name__}")]
    values: dict[str, Any] = {}
    for key, value in d.items():
        if key not in FIELDS:
            problems.append((key, f"unknown key {str(key)!r}{suggest(str(key), FIELDS)}"))
        else:
            values[key] = value
    for key in REQUIRED_FIELDS:
        if key not in values:
            problems.append((None, f"missing required key {key!r}"))
    full = dict(_DEFAULTS)
    full.update(values)
    coerced, value_problems = _check_values(full, check_model=check_model)
    problems.extend(value_problems)
    return coerced, problems


def _check_values(
    values: dict[str, Any], *, check_model: bool
) -> tuple[dict[str, Any], list[tuple[str | None, str]]]:
    """Coerce types, resolve defaults and check ranges of a full field mapping."""
    problems: list[tuple[str | None, str]] = []
    out: dict[str, Any] = {}
    bad: set[str] = set()

    def problem(key: str | None, msg: str) -> None:
        problems.append((key, msg))
        if key:
            bad.add(key)

    for key in FIELDS:
        if key not in values:
            continue
        value = values[key]
        if value is None and key in _OPTIONAL:
            out[key] = None
            continue
        if value is None and key == "grad_clip_norm":
            out[key] = 0.0
            continue
        try:
            if key in _INT_FIELDS:
                out[key] = _to_int(value)
            elif key in _FLOAT_FIELDS:
                out[key] = _to_float(value)
            elif key in _BOOL_FIELDS:
                if not isinstance(value, bool):
                    raise ValueError(f"a {type(value).__name__}")
                out[key] = value
            else:
                if isinstance(value, os.PathLike) and key in ("train_data", "eval_data", "model"):
                    value = os.fspath(value)
                if not isinstance(value, str):
                    raise ValueError(f"a {type(value).__name__}")
                out[key] = value
        except ValueError as exc:
            kind = (
                "a whole number" if key in _INT_FIELDS
                else "a finite number" if key in _FLOAT_FIELDS
                else "true or false" if key in _BOOL_FIELDS
                else "a string"
            )  # fmt: skip
            problem(key, f"{key} must be {kind}, got {_fmt(value)} ({exc})")

    def ok(key: str) -> bool:
        return key in out and key not in bad and out[key] is not None

    # --- identity
    for key in ("model", "train_data", "eval_data"):
        if ok(key) and not out[key].strip():
            problem(key, f"{key} is empty; set it to " + ("a model name" if key == "model" else "a path"))
    if ok("strategy") and out["strategy"] not in STRATEGIES:
        problem("strategy", f"unknown strategy {out['strategy']!r}{choices_hint(out['strategy'], STRATEGIES)}")
    if check_model and ok("model") and out["model"].strip():
        complaint = _model_problem(out["model"])
        if complaint:
            problem("model", complaint)

    # --- counts
    def positive(key: str, minimum: int = 1) -> None:
        if ok(key) and out[key] < minimum:
            problem(key, f"{key} must be ≥ {minimum}, got {out[key]}")

    for key in ("samples_seen", "unique_samples", "pool_size", "batch_size", "grad_accum_steps",
                "eval_batch_size", "slip_mlp_dim", "slip_emb_dim", "image_size", "context_length"):  # fmt: skip
        positive(key)
    for key in ("warmup_steps", "seed", "workers", "checkpoint_every_steps"):
        positive(key, 0)
    if ok("samples_seen") and ok("batch_size") and out["samples_seen"] >= 1 and out["batch_size"] >= 1:
        if out["samples_seen"] < out["batch_size"]:
            problem("samples_seen", f"samples_seen {out['samples_seen']} is below one batch "
                    f"(batch_size {out['batch_size']})")  # fmt: skip
        elif ok("warmup_steps"):
            steps = -(-out["samples_seen"] // out["batch_size"])
            if out["warmup_steps"] > steps:
                problem("warmup_steps", f"warmup_steps {out['warmup_steps']} exceeds the run's {steps} "
                        f"optimizer steps (samples_seen / batch_size)")  # fmt: skip
    if ok("batch_size") and ok("grad_accum_steps") and out["grad_accum_steps"] >= 1:
        if out["batch_size"] % out["grad_accum_steps"]:
            problem("grad_accum_steps", f"batch_size {out['batch_size']} is not divisible by "
                    f"grad_accum_steps {out['grad_accum_steps']}")  # fmt: skip

    # --- data
    if ok("quality_fraction") and not 0.0 < out["quality_fraction"] <= 1.0:
        problem("quality_fraction", f"quality_fraction must be in (0, 1], got {out['quality_fraction']}")
    if ok("unique_samples") and ok("pool_size") and out["unique_samples"] >= 1 and out["pool_size"] >= 1:
        if out["unique_samples"] > out["pool_size"]:
            problem("unique_samples", f"unique_samples {out['unique_samples']} exceeds pool_size {out['pool_size']}")
        elif ok("quality_fraction") and 0.0 < out["quality_fraction"] <= 1.0:
            cap = math.ceil(round(out["pool_size"] * out["quality_fraction"], 6))
            if out["unique_samples"] > cap:
                problem("unique_samples", f"unique_samples {out['unique_samples']} exceeds pool_size × "
                        f"quality_fraction = {cap}")  # fmt: skip

    # --- strategy-dependent defaults
    strategy = out.get("strategy") if ok("strategy") and out["strategy"] in STRATEGIES else None
    if "flip_mask_ratio" in out and "flip_mask_ratio" not in bad:
        ratio = out["flip_mask_ratio"]
        if ratio is None and strategy is not None:
            out["flip_mask_ratio"] = default_flip_mask_ratio(strategy)
        elif ratio is not None:
            if not 0.0 <= ratio < 1.0:
                problem("flip_mask_ratio", f"flip_mask_ratio must be in [0, 1), got {ratio}")
            elif strategy is not None and strategy != "flip" and ratio != 0.0:
                problem("flip_mask_ratio", f"flip_mask_ratio {ratio} applies only to strategy 'flip' "
                        f"(strategy is {strategy!r}); remove it or use strategy flip")  # fmt: skip
    if "aug" in out and "aug" not in bad:
        aug = out["aug"]
        if aug is None and strategy is not None:
            out["aug"] = default_aug(strategy)
        elif aug is not None:
            if aug not in AUG_PRESETS:
                problem("aug", f"unknown aug preset {aug!r}{choices_hint(aug, AUG_PRESETS)}")
            elif strategy == "clip_aug" and aug == "none":
                problem("aug", "strategy clip_aug needs an augmentation preset (valid: "
                        + ", ".join(AUG_PRESETS[1:]) + ")")  # fmt: skip
            elif strategy is not None and strategy != "clip_aug" and aug != "none":
                problem("aug", f"aug {aug!r} needs strategy 'clip_aug' (strategy is {strategy!r})")

    # --- optimisation
    if ok("lr") and out["lr"] <= 0:
        problem("lr", f"lr must be > 0, got {out['lr']}")
    if ok("weight_decay") and out["weight_decay"] < 0:
        problem("weight_decay", f"weight_decay must be ≥ 0, got {out['weight_decay']}")
    for key in ("beta1", "beta2"):
        if ok(key) and not 0.0 <= out[key] < 1.0:
            problem(key, f"{key} must be in [0, 1), got {out[key]}")
    if ok("eps") and out["eps"] <= 0:
        problem("eps", f"eps must be > 0, got {out['eps']}")
    if ok("grad_clip_norm") and out["grad_clip_norm"] < 0:
        problem("grad_clip_norm", f"grad_clip_norm must be ≥ 0 (0 = off), got {out['grad_clip_norm']}")
    if ok("precision") and out["precision"] not in PRECISIONS:
        problem("precision", f"unknown precision {out['precision']!r}{choices_hint(out['precision'], PRECISIONS)}")
    if ok("slip_ssl_weight") and out["slip_ssl_weight"] < 0:
        problem("slip_ssl_weight", f"slip_ssl_weight must be ≥ 0, got {out['slip_ssl_weight']}")
    if ok("slip_ssl_temperature") and out["slip_ssl_temperature"] <= 0:
        problem("slip_ssl_temperature", f"slip_ssl_temperature must be > 0, got {out['slip_ssl_temperature']}")
    return out, problems


def field_names() -> tuple[str, ...]:
    """Names of every RunConfig field, in declaration order."""
    return FIELDS


__all__ = [
    "AUG_PRESETS",
    "FIELDS",
    "NON_RESULT_FIELDS",
    "PRECISIONS",
    "REQUIRED_FIELDS",
    "STRATEGIES",
    "RunConfig",
    "check_config_dict",
    "choices_hint",
    "suggest",
]
