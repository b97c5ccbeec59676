"""The v1 results schema: one declared pyarrow schema, row validation that reports every problem at once."""

from __future__ import annotations

import datetime as dt
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from results.errors import ResultsError, SchemaError
from results.schema import (
    COLUMN_TYPES,
    COLUMNS,
    FRACTION_COLUMNS,
    REQUIRED,
    SCHEMA_VERSION,
    STATUSES,
    arrow_schema,
    normalize_timestamp,
    validate_row,
)

# design.md's v1 columns, verbatim, plus the optional engine columns of the results issue.
DESIGN_COLUMNS = """run_id sweep_id source model strategy flip_mask_ratio aug image_size context_length batch_size lr
weight_decay warmup_steps seed data_pool pool_size quality_fraction unique_samples samples_seen epochs
gflops_per_sample total_gflops train_flops gpu_hours wall_seconds device n_gpus zeroshot_top1 zeroshot_top5
retrieval_i2t_r1 retrieval_t2i_r1 linear_probe_top1 final_train_loss eval_dataset status error started_at
finished_at hostname slurm_job_id clipbudget_version open_clip_version torch_version""".split()
EXTRA_COLUMNS = "retrieval_i2t_r5 retrieval_t2i_r5 steps skipped_samples resumed_from_step config_json schema_version".split()


def base(**kw):
    row = {"run_id": "r1", "model": "ViT-B-32", "strategy": "clip", "samples_seen": 1000, "status": "completed"}
    row.update(kw)
    return row


def test_schema_declares_every_design_column_once_with_types():
    schema = arrow_schema()
    assert set(COLUMNS) == set(DESIGN_COLUMNS) | set(EXTRA_COLUMNS)
    assert len(COLUMNS) == len(set(COLUMNS)) == len(schema)
    assert schema.names == list(COLUMNS)
    for name in ("samples_seen", "unique_samples", "pool_size", "batch_size", "n_gpus", "steps"):
        assert str(schema.field(name).type) == "int64" and COLUMN_TYPES[name] == "int64"
    for name in ("zeroshot_top1", "total_gflops", "train_flops", "gpu_hours", "lr", "epochs"):
        assert str(schema.field(name).type) == "double"
    for name in ("started_at", "finished_at", "run_id", "config_json"):
        assert str(schema.field(name).type) == "string"
    assert all(not schema.field(c).nullable for c in REQUIRED)
    assert all(schema.field(c).metadata[b"description"] for c in COLUMNS)
    assert schema.metadata[b"clipbudget.schema_version"] == str(SCHEMA_VERSION).encode()


def test_importing_schema_does_not_import_pyarrow():
    code = "import sys, results.schema, results.errors; results.schema.validate_row; print('pyarrow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_valid_row_is_normalised_and_complete():
    row = validate_row(base(samples_seen=1.36e9, unique_samples="4e8", zeroshot_top1=np.float32(0.5),
                            n_gpus=np.int64(8), slurm_job_id=4242, lr=float("nan"), error=None,
                            started_at=dt.datetime(2026, 1, 1, 12, 0), finished_at="2026-01-01T13:00:00Z",
                            config_json={"b": 1, "a": 2}))  # fmt: skip
    assert list(row) == list(COLUMNS)
    assert row["samples_seen"] == 1_360_000_000 and type(row["samples_seen"]) is int
    assert row["unique_samples"] == 400_000_000
    assert row["zeroshot_top1"] == 0.5 and type(row["zeroshot_top1"]) is float
    assert row["n_gpus"] == 8 and type(row["n_gpus"]) is int
    assert row["slurm_job_id"] == "4242"
    assert row["lr"] is None  # NaN is null
    assert row["started_at"] == "2026-01-01T12:00:00.000000+00:00"  # naive = UTC
    assert row["finished_at"] == "2026-01-01T13:00:00.000000+00:00"
    assert row["config_json"] == '{"a":2,"b":1}'
    assert row["source"] == "own" and row["schema_version"] == SCHEMA_VERSION
    assert row["zeroshot_top5"] is None


def test_pandas_missing_values_are_null():
    row = validate_row(base(zeroshot_top1=pd.NA, finished_at=pd.NaT, device=np.nan))
    assert row["zeroshot_top1"] is None and row["finished_at"] is None and row["device"] is None


def test_every_problem_is_reported_at_once():
    bad = base(run_id="x", strategy="clop", status="running", samples_seen=-5, zeroshot_top1=52.3,
               linear_probe_top1=1.01, quality_fraction=0.0, flip_mask_ratio=1.0, batch_size=2.5,
               lr="fast", finished_at="yesterday", zeroshot_top_1=0.1, gpu_hours=-1.0,
               source="paper", model=None)  # fmt: skip
    with pytest.raises(SchemaError) as info:
        validate_row(bad)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith("result row 'x': 14 problems: ")
    for part in (
        "unknown column 'zeroshot_top_1' (did you mean 'zeroshot_top1'?)",
        "batch_size must be a whole number, got 2.5",
        "lr must be a finite number, got 'fast'",
        "finished_at must be an ISO 8601 time, got 'yesterday'",
        "missing required column 'model'",
        "status 'running' is not one of completed, failed",
        "strategy 'clop' is not one of clip, slip, flip, clip_aug",
        "source 'paper' must be 'own' or 'published:<key>'",
        "zeroshot_top1 52.3 is outside [0, 1] (accuracies are fractions, not percent)",
        "linear_probe_top1 1.01 is outside [0, 1]",
        "quality_fraction 0.0 is outside (0, 1]",
        "flip_mask_ratio 1.0 is outside [0, 1)",
        "samples_seen -5 is negative (counts are ≥ 0)",
        "gpu_hours -1.0 is negative",
    ):
        assert part in msg, part
    assert len(info.value.problems) == 14
    assert isinstance(info.value, ResultsError)


@pytest.mark.parametrize("column", FRACTION_COLUMNS)
@pytest.mark.parametrize("value, ok", [(0.0, True), (1.0, True), (None, True), (-0.01, False), (1.5, False)])
def test_fraction_bounds(column, value, ok):
    if ok:
        assert validate_row(base(**{column: value}))[column] == value
    else:
        with pytest.raises(SchemaError, match=f"{column} .* is outside"):
            validate_row(base(**{column: value}))


@pytest.mark.parametrize("status", STATUSES)
def test_statuses(status):
    extra = {"error": "Traceback: boom"} if status == "failed" else {}
    assert validate_row(base(status=status, **extra))["status"] == status


def test_failed_row_needs_an_error_and_published_source_is_ok():
    with pytest.raises(SchemaError, match="a failed row needs its error message"):
        validate_row(base(status="failed", error="  "))
    assert validate_row(base(source="published:cherti2023"))["source"] == "published:cherti2023"


@pytest.mark.parametrize("bad", [".hidden", "a/b", "", "x y", "a" * 129])
def test_run_id_must_be_file_name_safe(bad):
    with pytest.raises(SchemaError, match="run_id|missing required column 'run_id'"):
        validate_row(base(run_id=bad))


def test_non_mapping_and_infinite_values():
    with pytest.raises(SchemaError, match="must be a mapping"):
        validate_row([("run_id", "x")])  # type: ignore[arg-type]
    with pytest.raises(SchemaError, match="total_gflops must be a finite number"):
        validate_row(base(total_gflops=math.inf))
    with pytest.raises(SchemaError, match="samples_seen must be a whole number, got True"):
        validate_row(base(samples_seen=True))


def test_normalize_timestamp_converts_zones():
    assert normalize_timestamp("2026-11-28T14:00:00+01:00") == "2026-11-28T13:00:00.000000+00:00"
    assert normalize_timestamp(pd.Timestamp("2026-11-28 13:00", tz="UTC")) == "2026-11-28T13:00:00.000000+00:00"
    with pytest.raises(ValueError):
        normalize_timestamp(12345)


def test_docstring_examples_run():
    import doctest

    import results.schema
    import results.store
    import results.tables

    attempted = 0
    for module in (results.schema, results.store, results.tables):
        result = doctest.testmod(module)
        assert result.failed == 0, module.__name__
        attempted += result.attempted
    assert attempted >= 10


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(list(COLUMNS) + ["bogus"]),
                       st.one_of(st.none(), st.booleans(), st.integers(-5, 10**10), st.floats(), st.text(max_size=8),
                                 st.lists(st.integers(), max_size=1)), max_size=10))  # fmt: skip
def test_validate_row_only_raises_schema_error(values):
    try:
        row = validate_row(base(**values))
    except SchemaError as exc:
        assert str(exc).startswith("result row") and "\n" not in str(exc)
    else:
        assert validate_row(row) == row  # normalising is idempotent
