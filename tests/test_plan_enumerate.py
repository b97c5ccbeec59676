"""planner.plan.enumerate_plan and planner.budget_checks: the accounting behind ``clipbudget plan``.

Real catalog, real analytic FLOPs (budget.flops), real GPU table: nothing is mocked.
"""

from __future__ import annotations

import json
import math

import pytest

from budget.catalog import get_model, list_models
from budget.errors import ConfigError
from budget.flops import STRATEGIES, TRAIN_FLOPS_PER_FORWARD, sample_cost
from budget.hardware import gpu_hours
from budget.units import parse_budget
from planner.budget_checks import HIGHEST_FLOPS, LOWEST_FLOPS, check_budget, position
from planner.plan import (
    DEFAULT_MODELS,
    DEFAULT_POOL_SIZE,
    DEFAULT_QUALITY_FRACTIONS,
    REASON_BELOW_ONE_SAMPLE,
    REASON_FLIP_NON_VIT,
    REASON_MIN_EPOCHS,
    PlanRow,
    enumerate_plan,
)

B32 = sample_cost("ViT-B-32", "clip").forward_gflops  # 14.78 GFLOPs per sample


def _one(budget_gflops: float, q: float = 1.0, **kw) -> PlanRow:
    plan = enumerate_plan(budget_gflops, models=("ViT-B-32",), strategies=("clip",), quality_fractions=(q,), **kw)
    assert len(plan.rows) == 1
    return plan.rows[0]


def test_default_models_are_the_seed_papers_and_in_the_catalog():
    names = set(list_models())
    assert set(DEFAULT_MODELS) <= names
    assert {get_model(m).family for m in DEFAULT_MODELS} == {"vit", "modified_resnet", "convnext"}


def test_one_epoch_on_top_40_percent_of_the_pool():
    # The seed paper's finding-1 configuration: ViT-B-32 on the top 40 % (1.36e9) for one epoch.
    row = _one(B32 * 1.36e9, q=0.4)
    assert row.unique_samples == 1_360_000_000
    assert row.samples_seen in (1_359_999_999, 1_360_000_000)  # floor of a float division
    assert row.epochs == pytest.approx(1.0, rel=1e-9)
    assert row.limited_by == "compute"
    assert row.gflops_per_sample == pytest.approx(14.78, abs=0.01)
    assert row.image_size == 224 and row.context_length == 77 and row.pool_size == DEFAULT_POOL_SIZE


def test_budget_short_of_one_pass_sees_part_of_the_subset_once():
    row = _one(B32 * 1e8, q=1.0)  # 1e8 samples of a 3.4e9 subset
    assert row.unique_samples == row.samples_seen == pytest.approx(1e8, abs=1)
    assert row.epochs == 1.0


def test_repetition_on_a_small_subset():
    row = _one(B32 * 3.4e9, q=0.2)  # 3.4e9 seen on 6.8e8 unique: 5 epochs
    assert row.unique_samples == 680_000_000
    assert row.epochs == pytest.approx(5.0, rel=1e-6)
    assert row.total_gflops == pytest.approx(B32 * row.samples_seen)
    assert row.train_flops == pytest.approx(row.total_gflops * 1e9 * TRAIN_FLOPS_PER_FORWARD)
    assert row.gpu_hours == pytest.approx(gpu_hours(row.train_flops, "A100", 0.4))


def test_max_epochs_caps_rows_and_marks_them_data_limited():
    budget = B32 * 3.4e9 * 100  # 100 passes over the whole pool
    plan = enumerate_plan(budget, models=("ViT-B-32",), strategies=("clip",), quality_fractions=(1.0, 0.5))
    for row in plan.rows:
        assert row.limited_by == "data"
        assert row.epochs == pytest.approx(32.0)
        assert row.samples_seen == 32 * row.unique_samples
        assert row.total_gflops < budget
    assert len(plan.warnings) == 1 and "data pool" in plan.warnings[0] and "unspent" in plan.warnings[0]
    # a larger --max-epochs lifts the cap
    row = _one(budget, q=1.0, max_epochs=200)
    assert row.limited_by == "compute" and row.epochs == pytest.approx(100.0, rel=1e-6)


def test_compute_limited_rows_spend_the_budget_to_within_one_sample():
    budget = 1e10
    plan = enumerate_plan(budget)
    assert plan.rows and all(r.limited_by == "compute" for r in plan.rows)
    for r in plan.rows:
        assert budget - r.gflops_per_sample < r.total_gflops <= budget * (1 + 1e-12)
        assert r.unique_samples <= round(r.pool_size * r.quality_fraction)
        assert r.epochs >= 1.0


def test_full_default_grid_and_flip_is_vit_only():
    plan = enumerate_plan(1e10)
    n_q = len(DEFAULT_QUALITY_FRACTIONS)
    non_vit = [m for m in DEFAULT_MODELS if get_model(m).family != "vit"]
    assert plan.dropped == {REASON_FLIP_NON_VIT: len(non_vit) * n_q}
    assert len(plan.rows) == len(DEFAULT_MODELS) * len(STRATEGIES) * n_q - len(non_vit) * n_q
    assert plan.considered == len(DEFAULT_MODELS) * len(STRATEGIES) * n_q
    assert not any(r.strategy == "flip" and get_model(r.model).family != "vit" for r in plan.rows)
    flip = [r for r in plan.rows if r.strategy == "flip"]
    assert flip and all(r.flip_mask_ratio == 0.5 for r in flip)
    assert all(r.flip_mask_ratio == 0.0 for r in plan.rows if r.strategy != "flip")
    # rows are unique configurations, sorted by samples seen (most first) while unranked
    keys = {(r.model, r.strategy, r.quality_fraction) for r in plan.rows}
    assert len(keys) == len(plan.rows)
    assert [r.samples_seen for r in plan.rows] == sorted((r.samples_seen for r in plan.rows), reverse=True)


def test_strategy_adjusted_cost_orders_slip_above_clip_above_flip():
    plan = enumerate_plan(1e10, models=("ViT-B-16",), quality_fractions=(1.0,))
    cost = {r.strategy: r.gflops_per_sample for r in plan.rows}
    assert cost["slip"] > cost["clip"] == cost["clip_aug"] > cost["flip"]
    seen = {r.strategy: r.samples_seen for r in plan.rows}
    assert seen["flip"] > seen["clip"] > seen["slip"]


def test_min_epochs_filter_counts_and_empty_grid_names_the_filter():
    plan = enumerate_plan(B32 * 3.4e9, models=("ViT-B-32",), strategies=("clip",), min_epochs=2.0)
    assert {r.quality_fraction for r in plan.rows} == {0.2, 0.4}  # 5 and 2.5 epochs; 0.6+ fall below 2
    assert plan.dropped == {REASON_MIN_EPOCHS: 3}
    with pytest.raises(ConfigError, match="fewer epochs than --min-epochs: 5"):
        enumerate_plan(B32 * 3.4e9, models=("ViT-B-32",), strategies=("clip",), min_epochs=10.0)
    with pytest.raises(ConfigError, match=REASON_FLIP_NON_VIT):
        enumerate_plan(1e10, models=("RN50",), strategies=("flip",))
    with pytest.raises(ConfigError, match=REASON_BELOW_ONE_SAMPLE):
        enumerate_plan(1.0, models=("ViT-B-32",))


def test_image_size_the_model_cannot_take_is_dropped_with_its_reason():
    plan = enumerate_plan(1e10, models=("ViT-B-32", "ViT-B-16"), strategies=("clip",), quality_fractions=(1.0,),
                          image_size=240)
    assert [r.model for r in plan.rows] == ["ViT-B-16"] and plan.rows[0].image_size == 240
    (reason, n), = plan.dropped.items()
    assert "ViT-B-32" in reason and "240" in reason and n == 1


@pytest.mark.parametrize("kwargs, match", [
    ({"quality_fractions": (0.0,)}, r"outside \(0, 1\]"),
    ({"quality_fractions": (1.5,)}, r"outside \(0, 1\]"),
    ({"quality_fractions": (math.nan,)}, r"outside \(0, 1\]"),
    ({"strategies": ("slp",)}, "did you mean 'slip'"),
    ({"models": ("ViT-B-33",)}, "did you mean ViT-B-32"),
    ({"models": ()}, "no models"),
    ({"min_epochs": 4.0, "max_epochs": 2.0}, "above --max-epochs"),
    ({"pool_size": 0}, "pool size"),
    ({"mfu": 1.5}, "MFU"),
    ({"gpu": "A1000"}, "A1000"),
])
def test_invalid_arguments_raise_one_line_config_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match) as info:
        enumerate_plan(1e10, **kwargs)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("budget", [0.0, -1.0, math.nan, math.inf])
def test_invalid_budgets(budget):
    with pytest.raises(ConfigError):
        enumerate_plan(budget)


def test_custom_json_config_by_path(tmp_path):
    cfg = get_model("ViT-B-32").open_clip_config
    cfg["vision_cfg"]["layers"] = 6
    path = tmp_path / "half-b32.json"
    path.write_text(json.dumps(cfg))
    plan = enumerate_plan(1e10, models=(str(path),), strategies=("clip",), quality_fractions=(1.0,))
    row = plan.rows[0]
    assert row.model == str(path)
    assert B32 * 0.6 < row.gflops_per_sample < B32  # half the image tower's layers
    assert row.gflops_per_sample == pytest.approx(sample_cost(str(path)).forward_gflops)


def test_budget_object_and_number_agree_and_gpu_settings_flow_through():
    a = enumerate_plan(parse_budget(gpu_hours=100, gpu="H100", mfu=0.5), models=("RN50",), strategies=("clip",),
                       quality_fractions=(1.0,), gpu="H100", mfu=0.5)
    row = a.rows[0]
    assert row.gpu_hours == pytest.approx(100, rel=1e-6)  # the whole budget, back in GPU-hours
    b = enumerate_plan(parse_budget(gpu_hours=100, gpu="H100", mfu=0.5).gflops, models=("RN50",),
                       strategies=("clip",), quality_fractions=(1.0,))
    assert b.rows[0].samples_seen == row.samples_seen
    assert b.rows[0].gpu_hours > row.gpu_hours  # A100 at 40 % is slower than H100 at 50 %


# --- budget sanity -------------------------------------------------------------------------------


def test_gflops_1e19_is_flagged_against_datacomp_and_suggests_flops():
    (w,) = check_budget(parse_budget(gflops=1e19), flag="gflops", value=1e19)
    assert "1e28 FLOPs" in w and "DataComp" in w and "million times" in w and "Cherti" in w
    assert "--flops 1e19" in w and "Planning anyway" in w
    assert "\n" not in w


def test_budgets_inside_the_published_range_are_quiet():
    for gflops in (1e8, 1e10, 1e11, 5e12):
        assert check_budget(gflops, flag="gflops", value=gflops) == []
    assert "between" in position(1e10)


def test_tiny_budgets_warn_and_flops_that_look_like_gflops_suggest_gflops():
    (w,) = check_budget(parse_budget(flops=1e10), flag="flops", value=1e10)
    assert "below every published CLIP" in w and "--gflops 1e10" in w
    (w,) = check_budget(1e3, flag="gflops", value=1e3)  # a CPU smoke test: warned, no unit suggestion
    assert "below" in w and "--flops" not in w and "--gflops" not in w
    # a huge GPU-hour budget is flagged, but no unit swap is suggested
    (w,) = check_budget(parse_budget(gpu_hours=1e12), flag="gpu_hours")
    assert "DataComp" in w and "did you mean" not in w.lower()


def test_anchor_range_matches_the_published_numbers():
    assert LOWEST_FLOPS == 1e17  # seed paper: 1e8 GFLOPs
    assert HIGHEST_FLOPS == pytest.approx(6.6e12 * 1e9 * 2)  # Cherti et al.: 6.6e12 GMACs


def test_docstring_examples_run():
    import doctest

    import planner.budget_checks
    import planner.cli._format
    import planner.plan

    for module in (planner.plan, planner.budget_checks, planner.cli._format):
        result = doctest.testmod(module, raise_on_error=False, verbose=False)
        assert result.attempted > 0 and result.failed == 0, module.__name__


# --- the bridge: plan rows → run configs -----------------------------------------------------------


def test_run_configs_for_keeps_each_rows_choices_and_its_cost(tmp_path):
    from budget.cost import run_cost
    from planner.plan import run_configs_for

    plan = enumerate_plan(1e6, models=("tiny-vit-28", "ViT-B-32"), strategies=("clip", "flip"),
                          quality_fractions=(0.4, 1.0), pool_size=1e6)
    rows = [plan.rows[0].to_dict(), *plan.rows[1:]]  # ranked rows are dicts; plan rows are PlanRows
    configs = run_configs_for(rows, train_data=str(tmp_path), eval_data=str(tmp_path))
    assert len(configs) == len(plan.rows) == 8
    for row, cfg in zip(plan.rows, configs):
        assert (cfg.model, cfg.strategy, cfg.quality_fraction, cfg.samples_seen, cfg.unique_samples,
                cfg.pool_size) == (row.model, row.strategy, row.quality_fraction, row.samples_seen,
                                   row.unique_samples, row.pool_size)
        assert cfg.flip_mask_ratio == (row.flip_mask_ratio if row.strategy == "flip" else 0.0)
        assert cfg.image_size is None and cfg.context_length is None  # the model's own: run ids stay put
        assert cfg.train_data == str(tmp_path) and cfg.batch_size >= 1
        # what the sweep will plan for the config is what the plan row said
        assert run_cost(cfg).total_gflops == pytest.approx(row.total_gflops, rel=1e-12)
        assert run_cost(cfg).train_flops == pytest.approx(row.train_flops, rel=1e-12)
    assert len({c.run_id for c in configs}) == len(configs)


def test_run_configs_for_passes_sizes_and_names_a_bad_row(tmp_path):
    from planner.plan import run_configs_for

    plan = enumerate_plan(1e6, models=("tiny-vit-28",), strategies=("clip",), quality_fractions=(1.0,),
                          pool_size=1e6, image_size=56, context_length=8)
    (cfg,) = run_configs_for(plan.rows, train_data="s", eval_data="e", image_size=56, context_length=8)
    assert (cfg.image_size, cfg.context_length) == (56, 8)
    bad = {**plan.rows[0].to_dict(), "strategy": "slipp"}
    with pytest.raises(ConfigError, match="plan row tiny-vit-28/slipp"):
        run_configs_for([bad], train_data="s", eval_data="e")
