"""The recipe's default hyper-parameters (``runners.recipe``): valid configs at every budget, scaling, errors."""

from __future__ import annotations

import pytest

from budget.errors import ConfigError
from runners.config import RunConfig
from runners.recipe import MIN_STEPS, default_hyperparameters


@pytest.mark.parametrize("samples", [1, 31, 40, 1_000, 10_000, 123_457, 10**6, 1.36e9, 3.4e10])
@pytest.mark.parametrize("n_gpus", [1, 3, 8])
def test_default_hyperparameters_make_valid_configs(samples, n_gpus):
    hp = default_hyperparameters("ViT-B-32", samples, n_gpus=n_gpus)
    batch = hp["batch_size"]
    assert 1 <= batch <= max(32, min(32768, int(samples)))
    assert batch <= int(samples) or int(samples) < n_gpus
    if int(samples) >= 32 * MIN_STEPS and n_gpus == 1:
        assert batch & (batch - 1) == 0 and batch <= int(samples) // MIN_STEPS
    if batch >= n_gpus:
        assert batch % n_gpus == 0
    assert 1e-4 <= hp["lr"] <= 1e-3 and hp["weight_decay"] == 0.2
    steps = -(-int(samples) // batch)
    assert 0 <= hp["warmup_steps"] <= min(10_000, steps)
    if int(samples) >= batch:
        RunConfig.from_dict({"model": "ViT-B-32", "strategy": "clip", "samples_seen": samples,
                             "train_data": "/s", "eval_data": "/e", **hp})  # fmt: skip


def test_default_hyperparameters_scale_with_budget_and_reject_bad_input():
    small, large = default_hyperparameters("RN50", 10**5), default_hyperparameters("RN50", 10**9)
    assert small["batch_size"] < large["batch_size"] == 32768
    assert small["lr"] <= large["lr"] == 1e-3
    assert large["warmup_steps"] == round(0.05 * -(-10**9 // 32768))
    assert default_hyperparameters("RN50", 10**11)["warmup_steps"] == 10_000
    tiny = default_hyperparameters("tiny-vit-28", 400_000)  # a CPU run: ≥ 200 steps, the tiny configs' lr
    assert 400_000 // tiny["batch_size"] >= MIN_STEPS and tiny["lr"] == 1e-3
    with pytest.raises(ConfigError, match="unknown model"):
        default_hyperparameters("ViT-B-99", 10**6)
    with pytest.raises(ConfigError, match="samples_seen must be ≥ 1"):
        default_hyperparameters("RN50", 0)
    with pytest.raises(ConfigError, match="n_gpus"):
        default_hyperparameters("RN50", 10**6, n_gpus=0)
