"""The results schema, version 1: one row per training run (or per failed attempt).

Columns follow ``design.md`` (identity, config, data, compute, metrics, state and provenance) plus a few
optional columns the training engine fills (``retrieval_*_r5``, ``steps``, ``skipped_samples``,
``resumed_from_step``, ``config_json``, ``schema_version``). Units are in the names: ``*_gflops`` and
``train_flops`` follow the paper convention (FLOPs = 2 × multiply-adds; ``total_gflops`` = per-sample
forward GFLOPs × samples seen; ``train_flops`` ≈ 3 × forward), ``wall_seconds`` are seconds, ``gpu_hours``
hours; accuracies and recalls are fractions in [0, 1]; sizes are counts of image-text pairs.

Types: strings, ``int64`` counts, ``float64`` metrics and FLOPs. **Timestamps** (``started_at``,
``finished_at``) are ISO 8601 strings in UTC with microseconds (``2026-11-28T13:45:00.000000+00:00``):
they survive CSV round trips unchanged, sort as text, and pandas parses them with
``pd.to_datetime(col, utc=True)``. :func:`validate_row` normalises datetimes and other ISO forms to this.

This module does not import pyarrow until :data:`SCHEMA` (or :func:`arrow_schema`) is used, so light
callers (the planner) can use :data:`COLUMNS`, :data:`STATUSES` and :func:`validate_row` cheaply.

Example:
    >>> row = validate_row({"run_id": "abc123", "model": "ViT-B-32", "strategy": "clip",
    ...                     "samples_seen": 1.36e9, "status": "completed", "zeroshot_top1": 0.52})
    >>> row["samples_seen"], row["source"], row["schema_version"], row["error"]
    (1360000000, 'own', 1, None)
"""

from __future__ import annotations

import datetime as _dt
import difflib
import math
import numbers
import re
import sys
from collections.abc import Mapping
from typing import Any

from results.errors import SchemaError

SCHEMA_VERSION = 1

#: Row states: a finished attempt either completed (metrics filled) or failed (``error`` filled).
STATUSES: tuple[str, ...] = ("completed", "failed")
#: Training strategies (same as ``budget.flops.STRATEGIES``; results imports nothing of ours).
STRATEGIES: tuple[str, ...] = ("clip", "slip", "flip", "clip_aug")
#: Columns every row must have (non-null).
REQUIRED: tuple[str, ...] = ("run_id", "model", "strategy", "samples_seen", "status")

# (name, type, description with units); type is one of "string", "int64", "float64".
_COLUMN_SPECS: tuple[tuple[str, str, str], ...] = (
    # identity
    ("run_id", "string", "stable hash of the run config (RunConfig.run_id) or a key for published rows"),
    ("sweep_id", "string", "hash of the sorted run_ids of the grid the run belongs to"),
    ("source", "string", "'own', or 'published:<key>' for rows of the built-in prior"),
    # config
    ("model", "string", "catalog model name or open_clip JSON path"),
    ("strategy", "string", "clip | slip | flip | clip_aug"),
    ("flip_mask_ratio", "float64", "FLIP share of patches dropped, fraction in [0, 1)"),
    ("aug", "string", "augmentation preset (none, crop_flip, randaug, stacked_randaug)"),
    ("image_size", "int64", "image side, pixels"),
    ("context_length", "int64", "text length, tokens"),
    ("batch_size", "int64", "global batch, image-text pairs per optimizer step"),
    ("lr", "float64", "peak learning rate"),
    ("weight_decay", "float64", "weight decay"),
    ("warmup_steps", "int64", "warm-up, optimizer steps"),
    ("seed", "int64", "random seed"),
    # data
    ("data_pool", "string", "name of the data pool"),
    ("pool_size", "int64", "image-text pairs in the pool"),
    ("quality_fraction", "float64", "top fraction of the pool by quality score, in (0, 1]"),
    ("unique_samples", "int64", "distinct image-text pairs trained on"),
    ("samples_seen", "int64", "image-text pairs seen in training (with repeats)"),
    ("epochs", "float64", "samples_seen / unique_samples"),
    # compute
    ("gflops_per_sample", "float64", "strategy-adjusted forward GFLOPs per sample (FLOPs = 2 x MACs)"),
    ("total_gflops", "float64", "gflops_per_sample x samples_seen (paper convention)"),
    ("train_flops", "float64", "training FLOPs, about 3 x forward FLOPs x samples_seen"),
    ("gpu_hours", "float64", "GPU-hours spent (wall hours x GPUs)"),
    ("wall_seconds", "float64", "wall-clock seconds of the attempt"),
    ("device", "string", "device name, e.g. 'NVIDIA H100 80GB HBM3' or 'cpu'"),
    ("n_gpus", "int64", "GPUs used (0 on CPU)"),
    # metrics
    ("zeroshot_top1", "float64", "zero-shot classification top-1 accuracy, fraction"),
    ("zeroshot_top5", "float64", "zero-shot classification top-5 accuracy, fraction"),
    ("retrieval_i2t_r1", "float64", "image-to-text recall@1, fraction"),
    ("retrieval_t2i_r1", "float64", "text-to-image recall@1, fraction"),
    ("retrieval_i2t_r5", "float64", "image-to-text recall@5, fraction"),
    ("retrieval_t2i_r5", "float64", "text-to-image recall@5, fraction"),
    ("linear_probe_top1", "float64", "linear-probe top-1 accuracy, fraction"),
    ("final_train_loss", "float64", "training loss at the last step"),
    ("eval_dataset", "string", "name or path of the evaluation set"),
    ("steps", "int64", "optimizer steps taken"),
    ("skipped_samples", "int64", "corrupt samples skipped by the loader"),
    ("resumed_from_step", "int64", "optimizer step resumed from (0: fresh start)"),
    # state and provenance
    ("status", "string", "completed | failed"),
    ("error", "string", "error message of a failed attempt"),
    ("started_at", "string", "ISO 8601 UTC start time"),
    ("finished_at", "string", "ISO 8601 UTC finish time"),
    ("hostname", "string", "host that ran the attempt"),
    ("slurm_job_id", "string", "SLURM job id (array jobs: JOBID_TASK)"),
    ("clipbudget_version", "string", "clipbudget version"),
    ("open_clip_version", "string", "open_clip version"),
    ("torch_version", "string", "torch version"),
    ("config_json", "string", "the whole RunConfig as canonical JSON"),
    ("schema_version", "int64", "results schema version of the row"),
)

COLUMNS: tuple[str, ...] = tuple(name for name, _, _ in _COLUMN_SPECS)
#: Column name -> "string" | "int64" | "float64".
COLUMN_TYPES: dict[str, str] = {name: kind for name, kind, _ in _COLUMN_SPECS}
#: Column name -> description with units.
COLUMN_DOCS: dict[str, str] = {name: doc for name, _, doc in _COLUMN_SPECS}
#: Fractions that must lie in [0, 1] (or be null).
FRACTION_COLUMNS: tuple[str, ...] = (
    "zeroshot_top1", "zeroshot_top5", "retrieval_i2t_r1", "retrieval_t2i_r1", "retrieval_i2t_r5",
    "retrieval_t2i_r5", "linear_probe_top1",
)  # fmt: skip
TIMESTAMP_COLUMNS: tuple[str, ...] = ("started_at", "finished_at")
_NON_NEGATIVE_FLOATS = (
    "lr", "weight_decay", "epochs", "gflops_per_sample", "total_gflops", "train_flops", "gpu_hours",
    "wall_seconds",
)  # fmt: skip
_RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_STRINGY_IDS = ("slurm_job_id", "sweep_id")  # ints given here become strings

_ARROW_SCHEMA = None


def arrow_schema():
    """The v1 schema as a ``pyarrow.Schema`` (each field's metadata holds its description)."""
    global _ARROW_SCHEMA
    if _ARROW_SCHEMA is None:
        import pyarrow as pa

        types = {"string": pa.string(), "int64": pa.int64(), "float64": pa.float64()}
        _ARROW_SCHEMA = pa.schema(
            [
                pa.field(name, types[kind], nullable=name not in REQUIRED, metadata={"description": doc})
                for name, kind, doc in _COLUMN_SPECS
            ],
            metadata={"clipbudget.schema_version": str(SCHEMA_VERSION)},
        )
    return _ARROW_SCHEMA


def __getattr__(name: str):  # PEP 562: build the pyarrow schema only when SCHEMA is used
    if name == "SCHEMA":
        return arrow_schema()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _is_missing(value: Any) -> bool:
    """None, NaN (float or numpy), pandas NA/NaT."""
    if value is None:
        return True
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):
        return math.isnan(float(value))
    pandas = sys.modules.get("pandas")
    return pandas is not None and (value is pandas.NA or value is pandas.NaT)


def _as_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("a boolean")
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        f = float(value)
        if math.isfinite(f) and f.is_integer():
            return int(f)
        raise ValueError("not a whole number")
    if isinstance(value, str):
        import decimal

        try:
            dec = decimal.Decimal(value.strip())
        except decimal.InvalidOperation:
            raise ValueError("not a number") from None
        if dec.is_finite() and dec == dec.to_integral_value():
            return int(dec)
        raise ValueError("not a whole number")
    raise ValueError(f"a {type(value).__name__}")


def _as_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("a boolean")
    if isinstance(value, numbers.Real):
        f = float(value)
    elif isinstance(value, str):
        try:
            f = float(value.strip())
        except ValueError:
            raise ValueError("not a number") from None
    else:
        raise ValueError(f"a {type(value).__name__}")
    if math.isinf(f):
        raise ValueError("infinite")
    return f


def normalize_timestamp(value: Any) -> str:
    """ISO 8601 UTC with microseconds, from a datetime, pandas Timestamp or ISO string (naive = UTC).

    >>> normalize_timestamp("2026-11-28T14:00:00+01:00")
    '2026-11-28T13:00:00.000000+00:00'
    """
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        try:
            value = _dt.datetime.fromisoformat(text)
        except ValueError:
            raise ValueError("not an ISO 8601 time") from None
    elif hasattr(value, "to_pydatetime"):
        value = value.to_pydatetime()
    if not isinstance(value, _dt.datetime):
        raise ValueError(f"a {type(value).__name__}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=_dt.timezone.utc)
    return value.astimezone(_dt.timezone.utc).isoformat(timespec="microseconds")


def utc_now() -> str:
    """The current time in the schema's timestamp format."""
    return normalize_timestamp(_dt.datetime.now(_dt.timezone.utc))


def validate_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """Check one result row and return it normalised: every column of :data:`COLUMNS`, in order.

    Absent optional columns become None (``source`` becomes ``'own'``, ``schema_version`` the current
    version); whole floats become ints in int64 columns, NaN becomes None, timestamps become ISO UTC,
    a ``config_json`` given as a mapping is dumped as canonical JSON. Raises :class:`SchemaError` listing
    **every** problem in one line (unknown columns, missing required ones, wrong types, accuracies
    outside [0, 1], unknown status or strategy, negative counts, a failed row without an error).
    """
    if not isinstance(row, Mapping):
        raise SchemaError(f"a result row must be a mapping of column: value, got {type(row).__name__}")
    problems: list[str] = []
    out: dict[str, Any] = {}
    for key in row:
        if key not in COLUMN_TYPES:
            near = difflib.get_close_matches(str(key), COLUMNS, n=1, cutoff=0.6)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            problems.append(f"unknown column {str(key)!r}{hint}")
    for name, kind, _ in _COLUMN_SPECS:
        value = row.get(name)
        if _is_missing(value):
            out[name] = None
            continue
        try:
            if name in TIMESTAMP_COLUMNS:
                out[name] = normalize_timestamp(value)
            elif name == "config_json" and isinstance(value, Mapping):
                import json

                out[name] = json.dumps(dict(value), sort_keys=True, separators=(",", ":"))
            elif kind == "string":
                if name in _STRINGY_IDS and isinstance(value, numbers.Integral) and not isinstance(value, bool):
                    value = str(value)
                if not isinstance(value, str):
                    raise ValueError(f"a {type(value).__name__}")
                out[name] = value
            elif kind == "int64":
                out[name] = _as_int(value)
            else:
                out[name] = _as_float(value)
        except ValueError as exc:
            want = {"string": "a string", "int64": "a whole number", "float64": "a finite number"}[kind]
            if name in TIMESTAMP_COLUMNS:
                want = "an ISO 8601 time"
            problems.append(f"{name} must be {want}, got {value!r} ({exc})")
            out[name] = None
    if out["source"] is None:
        out["source"] = "own"
    if out["schema_version"] is None:
        out["schema_version"] = SCHEMA_VERSION

    for name in REQUIRED:
        if out[name] is None and not any(p.startswith(name + " ") for p in problems):
            problems.append(f"missing required column {name!r}")
    run_id = out["run_id"]
    if run_id is not None and not _RUN_ID_RE.match(run_id):
        problems.append(f"run_id {run_id!r} must be 1-128 letters, digits, '.', '_' or '-', not starting with '.'")
    if out["status"] is not None and out["status"] not in STATUSES:
        problems.append(f"status {out['status']!r} is not one of {', '.join(STATUSES)}")
    if out["strategy"] is not None and out["strategy"] not in STRATEGIES:
        problems.append(f"strategy {out['strategy']!r} is not one of {', '.join(STRATEGIES)}")
    if out["status"] == "failed" and not (out["error"] or "").strip():
        problems.append("a failed row needs its error message in 'error'")
    src = out["source"]
    if src != "own" and not (src.startswith("published:") and len(src) > len("published:")):
        problems.append(f"source {src!r} must be 'own' or 'published:<key>'")
    for name in FRACTION_COLUMNS:
        v = out[name]
        if v is not None and not 0.0 <= v <= 1.0:
            problems.append(f"{name} {v} is outside [0, 1] (accuracies are fractions, not percent)")
    qf = out["quality_fraction"]
    if qf is not None and not 0.0 < qf <= 1.0:
        problems.append(f"quality_fraction {qf} is outside (0, 1]")
    fm = out["flip_mask_ratio"]
    if fm is not None and not 0.0 <= fm < 1.0:
        problems.append(f"flip_mask_ratio {fm} is outside [0, 1)")
    for name, kind in COLUMN_TYPES.items():
        v = out[name]
        if kind == "int64" and v is not None and v < 0:
            problems.append(f"{name} {v} is negative (counts are ≥ 0)")
    for name in _NON_NEGATIVE_FLOATS:
        v = out[name]
        if v is not None and v < 0:
            problems.append(f"{name} {v} is negative")
    if problems:
        where = f"result row {run_id!r}" if run_id else "result row"
        err = SchemaError(f"{where}: {len(problems)} problem{'s' if len(problems) > 1 else ''}: " + "; ".join(problems))
        err.problems = problems  # type: ignore[attr-defined]
        raise err
    return out


__all__ = [
    "COLUMNS",
    "COLUMN_DOCS",
    "COLUMN_TYPES",
    "FRACTION_COLUMNS",
    "REQUIRED",
    "SCHEMA_VERSION",
    "STATUSES",
    "STRATEGIES",
    "arrow_schema",
    "normalize_timestamp",
    "utc_now",
    "validate_row",
]
