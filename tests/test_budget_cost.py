"""One cost: :mod:`budget.cost` reads every field that changes the cost (SLIP heads included), plan and run
configs give the same answer, and a sweep's planned FLOPs equal the FLOPs its run spent for a SLIP config
with non-default SSL heads (the ledger once planned with SLIP's default heads and disagreed)."""

from __future__ import annotations

import math

import pytest

from budget.coerce import to_float, to_int
from budget.cost import COST_FIELDS, RunCost, cost_for_samples, run_cost, sample_cost_of
from budget.errors import ConfigError
from budget.flops import TRAIN_FLOPS_PER_FORWARD, sample_cost
from budget.hardware import DEFAULT_GPU, DEFAULT_MFU, gpu_hours
from budget.vocabulary import DEFAULT_FLIP_MASK_RATIO, SLIP_EMB_DIM, SLIP_MLP_DIM
from tests._data_fixtures import build_demo_data
from tests._sweep_fixtures import TINY_RUN, write_grid


def test_run_cost_is_per_sample_cost_times_samples_in_every_convention():
    c = run_cost({"model": "ViT-B-16", "strategy": "flip", "samples_seen": 10**9, "gpu": "H100", "mfu": 0.5})
    assert isinstance(c, RunCost)
    assert c.sample == sample_cost("ViT-B-16", "flip", flip_mask_ratio=DEFAULT_FLIP_MASK_RATIO)
    assert c.total_gflops == c.gflops_per_sample * 10**9
    assert c.train_flops == pytest.approx(TRAIN_FLOPS_PER_FORWARD * c.total_gflops * 1e9, rel=1e-12)
    assert c.gpu == "H100-SXM" and c.mfu == 0.5
    assert c.gpu_hours == gpu_hours(c.train_flops, "H100", 0.5)
    assert set(c.to_dict()) == {"gflops_per_sample", "total_gflops", "train_flops", "gpu_hours"}


def test_defaults_are_the_vocabulary_and_hardware_defaults():
    c = run_cost({"model": "ViT-B-32", "strategy": "slip", "samples_seen": 1})
    assert c.gpu == DEFAULT_GPU and c.mfu == DEFAULT_MFU
    assert c.sample == sample_cost("ViT-B-32", "slip", slip_mlp_dim=SLIP_MLP_DIM, slip_emb_dim=SLIP_EMB_DIM)
    nan_cells = {"model": "ViT-B-32", "strategy": "flip", "samples_seen": 1.0, "image_size": math.nan,
                 "flip_mask_ratio": math.nan, "slip_mlp_dim": None}  # a table's empty cells
    assert sample_cost_of(nan_cells) == sample_cost("ViT-B-32", "flip")


def test_every_cost_field_changes_the_cost():
    base = {"model": "ViT-B-16", "strategy": "slip", "image_size": 224, "context_length": 77,
            "flip_mask_ratio": None, "slip_mlp_dim": 4096, "slip_emb_dim": 256, "samples_seen": 1000}
    changed = {"model": "ViT-B-32", "strategy": "clip", "image_size": 192, "context_length": 32,
               "slip_mlp_dim": 1024, "slip_emb_dim": 128, "samples_seen": 2000}
    reference = run_cost(base).total_gflops
    for key, value in changed.items():
        assert run_cost({**base, key: value}).total_gflops != reference, key
    flip = {**base, "strategy": "flip"}
    assert run_cost({**flip, "flip_mask_ratio": 0.75}).total_gflops < run_cost(flip).total_gflops
    assert set(COST_FIELDS) == set(base)  # the test covers every field the cost reads


def test_a_run_config_and_a_dict_cost_the_same(tmp_path):
    from runners.config import RunConfig

    d = {"model": "ViT-S-16", "strategy": "slip", "samples_seen": "1.36e9", "train_data": str(tmp_path),
         "eval_data": str(tmp_path), "slip_mlp_dim": 2048, "slip_emb_dim": 128, "context_length": 32}
    cfg = RunConfig.from_dict(d)
    assert run_cost(cfg) == run_cost(d)
    assert run_cost(cfg).samples_seen == 1_360_000_000


def test_plan_rows_use_the_one_cost():
    from planner.plan import enumerate_plan

    plan = enumerate_plan(1e9, models=("ViT-B-32", "RN50"), strategies=("clip", "slip"), quality_fractions=(1.0,),
                          gpu="H100", mfu=0.3)
    for row in plan.rows:
        c = run_cost(row.to_dict(), gpu="H100", mfu=0.3)
        assert (row.gflops_per_sample, row.total_gflops, row.train_flops, row.gpu_hours) == (
            c.gflops_per_sample, c.total_gflops, c.train_flops, c.gpu_hours)


@pytest.mark.parametrize("bad,needle", [
    ({"model": None}, "needs a model"),
    ({"strategy": "slipp"}, "unknown strategy"),
    ({"samples_seen": 2.5}, "whole number of samples"),
    ({"samples_seen": -1}, "≥ 0"),
    ({"slip_mlp_dim": "wide"}, "slip_mlp_dim must be a whole number"),
    ({"strategy": "slip", "slip_emb_dim": 0}, "slip_emb_dim must be a positive integer"),
    ({"mfu": "most"}, "mfu must be a number"),
    ({"flip_mask_ratio": "half", "strategy": "flip"}, "flip_mask_ratio must be a number"),
    ({"model": "RN50", "strategy": "flip"}, "needs a ViT"),
])
def test_bad_configs_raise_one_line_config_errors(bad, needle):
    with pytest.raises(ConfigError, match=needle):
        run_cost({"model": "ViT-B-32", "strategy": "clip", "samples_seen": 10, **bad})
    with pytest.raises(ConfigError, match="samples_seen"):
        run_cost({"model": "ViT-B-32"})
    assert cost_for_samples(sample_cost("ViT-B-32"), 0).total_gflops == 0


@pytest.mark.parametrize("value,expected", [
    (5, 5), (5.0, 5), ("5", 5), ("1.36e9", 1_360_000_000), ("1_000", 1000), (" 7 ", 7),
    (2.5, ValueError), ("2.5", ValueError), (True, ValueError), ("x", ValueError), (math.inf, ValueError),
    (math.nan, ValueError), ([1], ValueError),
])
def test_to_int(value, expected):
    if expected is ValueError:
        with pytest.raises(ValueError):
            to_int(value)
    else:
        assert to_int(value) == expected and type(to_int(value)) is int


def test_to_float_and_numpy_scalars():
    np = pytest.importorskip("numpy")  # numpy is a core dependency; the guard only names it
    assert to_float("5e-4") == 5e-4 and to_float(np.float32(0.5)) == 0.5 and to_int(np.int64(3)) == 3
    with pytest.raises(ValueError):
        to_float(math.nan)
    assert math.isnan(to_float(math.nan, finite=False))
    with pytest.raises(ValueError):
        to_float(math.inf, finite=False)


# ------------------------------------------------------------------------------- planned == spent


def test_planned_and_spent_flops_agree_for_non_default_slip_heads(tmp_path, monkeypatch):
    """A SLIP run with small SSL heads: the ledger's planned training FLOPs equal the row's spent ones."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    shards, evalset = build_demo_data(tmp_path / "data", n_train=200, n_eval=50)
    run = {**TINY_RUN, "strategy": "slip", "samples_seen": 32, "slip_mlp_dim": 64, "slip_emb_dim": 32}
    grid = write_grid(tmp_path / "grid.yaml", [run],
                      defaults={"train_data": str(shards), "eval_data": str(evalset)})
    from planner.cli.main import main
    from runners.sweep import status

    assert main(["submit", str(grid), "--sweep-dir", str(tmp_path / "sweep"), "--executor", "debug"]) == 0
    st = status(tmp_path / "sweep")
    (r,) = st.runs
    assert r.state == "completed", r.error
    assert r.spent_train_flops == pytest.approx(r.planned_train_flops, rel=1e-12)

    from results.store import ResultStore

    (row,) = ResultStore(tmp_path / "sweep" / "results").read().to_dict("records")
    expected = run_cost({**run, "samples_seen": row["samples_seen"]})
    assert row["gflops_per_sample"] == expected.gflops_per_sample
    assert row["total_gflops"] == pytest.approx(expected.total_gflops, rel=1e-12)
    # the check can fail: SLIP's default heads cost more than these small ones
    default_heads = run_cost({**run, "slip_mlp_dim": None, "slip_emb_dim": None})
    assert default_heads.train_flops > r.planned_train_flops * 1.01
