"""RunConfig: fields and defaults of the contract, all problems at once, coercion, stable run_id."""

from __future__ import annotations

import dataclasses
import doctest
import json
import subprocess
import sys

import pytest

import runners.config
from budget.errors import ConfigError
from runners.config import AUG_PRESETS, NON_RESULT_FIELDS, STRATEGIES, RunConfig

BASE = {"model": "ViT-B-32", "strategy": "clip", "samples_seen": 1_000_000, "train_data": "/d/shards",
        "eval_data": "/d/eval"}  # fmt: skip

# docs/architecture.md, verbatim (plus the SLIP head widths of the results issue).
CONTRACT_DEFAULTS = dict(
    quality_fraction=1.0, unique_samples=None, pool_size=None, data_pool="", flip_mask_ratio=None, aug=None,
    image_size=None, context_length=None, batch_size=256, lr=5e-4, weight_decay=0.2, beta1=0.9, beta2=0.98,
    eps=1e-6, warmup_steps=0, grad_clip_norm=1.0, grad_accum_steps=1, grad_checkpointing=False, precision="auto",
    slip_ssl_weight=1.0, slip_ssl_temperature=0.1, seed=0, workers=2, checkpoint_every_steps=0,
    eval_batch_size=256, linear_probe=True, retrieval=True, slip_mlp_dim=4096, slip_emb_dim=256,
)  # fmt: skip


def cfg(**kw):
    return RunConfig.from_dict({**BASE, **kw})


def test_fields_and_defaults_match_the_contract():
    fields = dataclasses.fields(RunConfig)
    assert [f.name for f in fields[:5]] == ["model", "strategy", "samples_seen", "train_data", "eval_data"]
    assert all(f.default is dataclasses.MISSING for f in fields[:5])
    assert {f.name: f.default for f in fields[5:]} == CONTRACT_DEFAULTS
    assert RunConfig.__dataclass_params__.frozen
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg().lr = 1.0  # type: ignore[misc]


def test_coercion_of_counts_and_floats():
    c = cfg(samples_seen="1.36e9", pool_size=3.4e9, unique_samples="1_360_000_000", lr="1e-3",
            quality_fraction=1, batch_size=4096.0)  # fmt: skip
    assert (c.samples_seen, c.pool_size, c.unique_samples) == (1_360_000_000, 3_400_000_000, 1_360_000_000)
    assert type(c.samples_seen) is int and type(c.batch_size) is int
    assert c.lr == 1e-3 and type(c.quality_fraction) is float
    assert c.epochs == pytest.approx(1.0) and c.steps == 332032


@pytest.mark.parametrize(
    "strategy, ratio, aug",
    [("clip", 0.0, "none"), ("slip", 0.0, "none"), ("flip", 0.5, "none"), ("clip_aug", 0.0, "stacked_randaug")],
)
def test_strategy_defaults_resolve_deterministically(strategy, ratio, aug):
    c = cfg(strategy=strategy)
    assert (c.flip_mask_ratio, c.aug) == (ratio, aug)
    # giving the resolved value explicitly is the same run
    assert cfg(strategy=strategy, flip_mask_ratio=ratio, aug=aug).run_id == c.run_id


def test_all_problems_reported_at_once_with_where():
    with pytest.raises(ConfigError) as info:
        RunConfig.from_dict(
            {"model": "ViT-B-32", "strategy": "flp", "samples_seen": 100, "train_data": "x", "lrr": 1e-3,
             "quality_fraction": 1.5, "aug": "randaugg", "lr": -1, "unique_samples": 10, "pool_size": 5,
             "beta2": 1.0, "precision": "bf61", "seed": "zero", "linear_probe": "yes"},
            where="run.yaml",
        )  # fmt: skip
    msg = str(info.value)
    problems = info.value.problems
    assert "\n" not in msg and all(p.startswith("run.yaml: ") for p in problems)
    expected = [
        "unknown key 'lrr' (did you mean 'lr'?)",
        "missing required key 'eval_data'",
        "unknown strategy 'flp' (did you mean 'flip'? valid: clip, slip, flip, clip_aug)",
        "samples_seen 100 is below one batch (batch_size 256)",
        "quality_fraction must be in (0, 1], got 1.5",
        "unique_samples 10 exceeds pool_size 5",
        "unknown aug preset 'randaugg' (did you mean 'randaug' or 'stacked_randaug'? valid: none, crop_flip,",
        "lr must be > 0, got -1.0",
        "beta2 must be in [0, 1), got 1.0",
        "unknown precision 'bf61'",
        "seed must be a whole number, got 'zero'",
        "linear_probe must be true or false, got 'yes'",
    ]
    for part in expected:
        assert part in msg, part
    assert len(problems) == len(expected)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"quality_fraction": 0}, "quality_fraction must be in (0, 1], got 0.0"),
        ({"flip_mask_ratio": 1.0, "strategy": "flip"}, "flip_mask_ratio must be in [0, 1), got 1.0"),
        ({"flip_mask_ratio": 0.5}, "flip_mask_ratio 0.5 applies only to strategy 'flip'"),
        ({"aug": "randaug"}, "aug 'randaug' needs strategy 'clip_aug'"),
        ({"strategy": "clip_aug", "aug": "none"}, "strategy clip_aug needs an augmentation preset"),
        ({"unique_samples": 600, "pool_size": 1000, "quality_fraction": 0.5}, "exceeds pool_size × quality_fraction = 500"),
        ({"warmup_steps": 5000, "samples_seen": 256_000}, "warmup_steps 5000 exceeds the run's 1000 optimizer steps"),
        ({"batch_size": 250, "grad_accum_steps": 4}, "batch_size 250 is not divisible by grad_accum_steps 4"),
        ({"samples_seen": 0}, "samples_seen must be ≥ 1, got 0"),
        ({"samples_seen": 1000.5}, "samples_seen must be a whole number, got 1000.5"),
        ({"lr": float("nan")}, "lr must be a finite number"),
        ({"train_data": " "}, "train_data is empty"),
        ({"model": "ViT-B-33"}, "unknown model 'ViT-B-33'; did you mean ViT-B-32"),
        ({"eps": 0}, "eps must be > 0"),
        ({"weight_decay": -0.1}, "weight_decay must be ≥ 0"),
        ({"workers": -1}, "workers must be ≥ 0"),
        ({"grad_clip_norm": -1}, "grad_clip_norm must be ≥ 0"),
        ({"slip_ssl_temperature": 0}, "slip_ssl_temperature must be > 0"),
    ],
)
def test_single_problems(change, message):
    with pytest.raises(ConfigError) as info:
        cfg(**change)
    assert message in str(info.value)


def test_all_strategies_and_presets_are_accepted():
    for s in STRATEGIES:
        assert cfg(strategy=s).strategy == s
    for a in AUG_PRESETS[1:]:
        assert cfg(strategy="clip_aug", aug=a).aug == a


def test_constructor_validates_too():
    with pytest.raises(ConfigError, match="quality_fraction must be in"):
        RunConfig(**{**BASE, "quality_fraction": 2.0})
    c = RunConfig(**{**BASE, "strategy": "flip"})
    assert c.flip_mask_ratio == 0.5
    with pytest.raises(ConfigError, match="not a mapping|must be a mapping"):
        RunConfig.from_dict(["model"])  # type: ignore[arg-type]


def test_run_id_is_stable_and_ignores_only_non_result_fields():
    a = cfg()
    assert a.run_id == cfg().run_id == RunConfig.from_dict(json.loads(a.to_json())).run_id
    assert len(a.run_id) == 16 and int(a.run_id, 16) >= 0
    # pinned: a change here re-runs every user's finished sweep, so it must be deliberate
    assert a.run_id == PINNED_RUN_ID
    for field in NON_RESULT_FIELDS:
        assert cfg(**{field: 7}).run_id == a.run_id, field
    assert NON_RESULT_FIELDS == {"workers", "eval_batch_size", "checkpoint_every_steps"}
    for change in ({"lr": 1e-3}, {"seed": 1}, {"quality_fraction": 0.4}, {"train_data": "/other"},
                   {"samples_seen": "1e6"}, {"slip_mlp_dim": 2048}, {"linear_probe": False}):  # fmt: skip
        changed = cfg(**change)
        assert (changed.run_id == a.run_id) == (changed == a), change
    assert cfg(lr=1e-3).run_id != a.run_id


def test_run_id_same_in_a_fresh_process():
    code = (
        "from runners.config import RunConfig; import json, sys; "
        "print(RunConfig.from_dict(json.loads(sys.argv[1])).run_id)"
    )
    out = subprocess.run([sys.executable, "-c", code, json.dumps(BASE)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == cfg().run_id


def test_json_round_trip_and_replace():
    c = cfg(strategy="flip", unique_samples=500_000, pool_size=1_000_000, quality_fraction=0.5)
    assert RunConfig.from_json(c.to_json()) == c
    assert set(c.to_dict()) == {f.name for f in dataclasses.fields(RunConfig)}
    d = c.replace(strategy="clip")  # the FLIP mask default goes with the strategy
    assert (d.strategy, d.flip_mask_ratio) == ("clip", 0.0)
    assert c.replace(lr=1e-3).lr == 1e-3
    with pytest.raises(ConfigError, match="not valid JSON"):
        RunConfig.from_json("{")


def test_epochs_and_unique_samples():
    assert cfg().epochs is None and cfg().effective_unique_samples is None
    assert cfg(pool_size=1_000_000, quality_fraction=0.25).epochs == pytest.approx(4.0)
    assert cfg(unique_samples=100_000).epochs == pytest.approx(10.0)


def test_config_and_grid_import_neither_torch_nor_pyarrow():
    code = (
        "import sys, runners.config, runners.gridfile, runners.recipe; "
        "runners.recipe.default_hyperparameters('ViT-B-32', 10**6); "
        "print(sorted(m for m in ('torch', 'pyarrow', 'pandas', 'open_clip', 'scipy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_docstring_examples_run():
    result = doctest.testmod(runners.config)
    assert result.attempted >= 3 and result.failed == 0


PINNED_RUN_ID = "47afa34d174ae7b2"


def test_pickle_round_trip_keeps_id():
    """submitit pickles the config into the job; unpickling must not re-validate or change it."""
    import pickle

    c = cfg(strategy="flip", lr="1e-3")
    d = pickle.loads(pickle.dumps(c))
    assert d == c and d.run_id == c.run_id


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_values = st.one_of(
    st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12), st.sampled_from(["1.36e9", "5e-4", "clip", "flip", "ViT-B-32", "stacked_randaug"]),
    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(list(runners.config.FIELDS) + ["lrr", "x"]), _values, max_size=8))
def test_from_dict_never_fails_with_anything_but_config_error(overrides):
    try:
        c = RunConfig.from_dict({**BASE, **overrides}, check_model=False)
    except ConfigError as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert RunConfig.from_dict(c.to_dict(), check_model=False) == c


def test_result_columns_make_a_valid_result_row():
    from results.schema import validate_row

    c = cfg(strategy="flip", pool_size=1_000_000, quality_fraction=0.5, data_pool="demo")
    cols = c.result_columns()
    row = validate_row({**cols, "status": "completed"})
    assert row["run_id"] == c.run_id and row["unique_samples"] == 500_000 and row["epochs"] == pytest.approx(2.0)
    assert row["flip_mask_ratio"] == 0.5 and row["data_pool"] == "demo"
    assert RunConfig.from_json(row["config_json"]) == c
