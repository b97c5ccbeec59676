"""The trainer learns: for each strategy, 40 steps of a micro open_clip model on real Fashion-MNIST lower the
loss by a clear margin and lift zero-shot accuracy on 500 real test images well above chance (1 in 10).

These are the fast tests that fail when the loop does not learn (a missing ``optimizer.step()``, an
optimizer that does nothing, gradients that never reach the weights): the loss then stays at its initial
level (~5.4 for CLIP, ~11 for SLIP) and zero-shot accuracy near 0.10. The last test runs the CLIP case with
AdamW's step made a no-op and checks that both thresholds catch it (by hand: with ``optimizer.step()``
deleted from ``runners/train.py`` every test here fails, as does the final-checkpoint test of
``test_train_strategies.py``). Measured here (seed 0, one thread): the CLIP loss falls 4.9 → 3.6, zero-shot
top-1 0.20–0.36 depending on the strategy; each case trains in 2–5 s on the loaded 2-core machine.

The thresholds leave room for platform noise but not for a loop that does not learn: a random model's
zero-shot top-1 on 500 images of 10 balanced classes is 0.10 ± 0.013 (one standard deviation).
"""

from __future__ import annotations

import pytest
import torch

from tests._data_fixtures import demo_data  # noqa: F401 - fixture
from tests._train_fixtures import micro_cfg, micro_model, one_thread  # noqa: F401 - fixtures

STEPS = 40
BATCH = 64
LR = 2e-3
#: Mean loss of the last 5 steps must be at least this much below the mean of the first 5 (nats).
MIN_LOSS_DROP = 0.5
#: Zero-shot top-1 must reach this (chance is 0.10 with 10 classes; ~4 σ above it on 500 images).
MIN_ZEROSHOT_TOP1 = 0.15

CASES = [("clip", {}), ("slip", {}), ("flip", {"flip_mask_ratio": 0.5}), ("clip_aug", {"aug": "stacked_randaug"})]


def _zeroshot_top1(model_path, final_path, eval_dir) -> float:
    from runners.data.evalset import load_eval_set
    from runners.evaluate import evaluate
    from runners.models import load_trained

    model, preprocess, tokenizer = load_trained(str(model_path), final_path)
    metrics = evaluate(model, tokenizer, preprocess, load_eval_set(eval_dir), device="cpu", do_retrieval=False,
                       do_linear_probe=False)
    return float(metrics["zeroshot_top1"])


@pytest.mark.parametrize("strategy,extra", CASES, ids=[c[0] for c in CASES])
def test_strategy_learns(strategy, extra, demo_data, micro_model, one_thread, tmp_path):  # noqa: F811
    from runners.train import train

    shards, evald = demo_data
    cfg = micro_cfg(micro_model, shards, evald, strategy=strategy, samples_seen=STEPS * BATCH, batch_size=BATCH,
                    lr=LR, warmup_steps=3, seed=0, **extra)
    result = train(cfg, tmp_path, device="cpu")

    losses = result.losses
    assert len(losses) == STEPS and all(torch.isfinite(torch.tensor(losses)))
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last <= first - MIN_LOSS_DROP, f"{strategy}: loss {first:.3f} → {last:.3f} did not fall by {MIN_LOSS_DROP}"
    top1 = _zeroshot_top1(micro_model, result.final_path, evald)
    assert top1 >= MIN_ZEROSHOT_TOP1, f"{strategy}: zero-shot top-1 {top1:.3f} is not above chance (0.10)"


def test_trained_weights_differ_from_the_same_seed_initial_weights(demo_data, micro_model, one_thread, tmp_path):  # noqa: F811
    """Training with lr 1e-30 (below float32 resolution: no step moves a weight) leaves the same-seed initial weights unchanged (so they are the right baseline), and
    training with the real learning rate moves every weight matrix away from them."""
    from runners.train import train

    shards, evald = demo_data
    frozen = train(micro_cfg(micro_model, shards, evald, samples_seen=128, lr=1e-30), tmp_path / "lr0", device="cpu")
    trained = train(micro_cfg(micro_model, shards, evald, samples_seen=128), tmp_path / "lr", device="cpu")

    from runners.models import build_model

    torch.manual_seed(0)  # micro_cfg's seed: the train loop seeds, then builds, exactly like this
    initial = build_model(str(micro_model)).model.state_dict()
    w0 = torch.load(frozen.final_path, weights_only=True)["state_dict"]
    w1 = torch.load(trained.final_path, weights_only=True)["state_dict"]
    assert set(w0) == set(w1) == set(initial)
    for k in initial:
        assert torch.allclose(w0[k], initial[k], rtol=1e-6, atol=1e-20), f"lr 1e-30 changed {k}: the initial weights are not the baseline"
    moved = [k for k in initial if initial[k].ndim >= 2 and not torch.allclose(w1[k], initial[k])]
    matrices = [k for k in initial if initial[k].ndim >= 2 and initial[k].dtype.is_floating_point]
    # the token embedding rows of words never seen do not move; every other matrix does
    assert set(matrices) - set(moved) <= {"token_embedding.weight"}, sorted(set(matrices) - set(moved))


def test_the_checks_catch_an_optimizer_that_does_nothing(demo_data, micro_model, one_thread, tmp_path, monkeypatch):  # noqa: F811
    """The thresholds above separate learning from not learning: with AdamW's step a no-op, the same CLIP run
    misses both (the loss stays put, zero-shot stays near chance)."""
    from runners.train import train

    monkeypatch.setattr(torch.optim.AdamW, "step", lambda self, closure=None: None)
    shards, evald = demo_data
    cfg = micro_cfg(micro_model, shards, evald, strategy="clip", samples_seen=STEPS * BATCH, batch_size=BATCH,
                    lr=LR, warmup_steps=3, seed=0)
    losses = train(cfg, tmp_path, device="cpu").losses
    assert sum(losses[-5:]) / 5 > sum(losses[:5]) / 5 - MIN_LOSS_DROP
    assert _zeroshot_top1(micro_model, tmp_path / "final.pt", evald) < MIN_ZEROSHOT_TOP1
