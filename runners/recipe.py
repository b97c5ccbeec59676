"""The recipe: default hyper-parameters (batch size, peak lr, warm-up, weight decay) for a run's budget.

Used by ``clipbudget plan --emit-grid`` to turn a plan row into a run config; a grid's own values win.
"""

from __future__ import annotations

from typing import Any

from budget.errors import ConfigError

#: Small runs keep at least this many optimizer steps (see :func:`default_hyperparameters`).
MIN_STEPS = 200


def _is_tiny(model_name: str) -> bool:
    from budget.catalog import get_model

    try:
        return bool(get_model(model_name).tiny)
    except ConfigError:
        return False


def default_hyperparameters(model_name: str, samples_seen: int, *, n_gpus: int = 1) -> dict[str, Any]:
    """Batch size, peak lr, warm-up and weight decay for an AdamW run of ``samples_seen`` pairs.

    Sources and rules (counts are image-text pairs; steps are optimizer steps):

    * batch: the largest power of two ≤ min(32768, samples_seen // MIN_STEPS), at least 32 (and at most
      samples_seen), rounded down to a multiple of ``n_gpus``. Large runs approach the batches of the
      seed paper (16k; 32k for FLIP) and OpenCLIP/DataComp (32k-90k); small runs keep ≥ 200 optimizer
      steps (fewer barely move a contrastive model off its initialisation).
    * lr = 5e-4 × batch / 4096 (linear scaling), clipped to [1e-4, 1e-3]: OpenCLIP and DataComp use AdamW
      with lr 5e-4 to 1e-3 at batch 4k-90k; the seed paper used lr 1e-3 with Adafactor at batch 16k.
      The catalog's tiny CPU configs take 1e-3 at any batch (measured here: tiny-vit-s-28 on
      Fashion-MNIST reaches 0.78 zero-shot top-1 at lr 1e-3, batch 128, 40k samples).
    * weight_decay = 0.2 (OpenCLIP/DataComp AdamW; the seed paper's 1e-4 belongs to Adafactor).
    * warmup_steps = min(10000, 5 % of the steps) (OpenCLIP/DataComp warm up for 2k-10k steps).

    ``model_name`` is checked against the catalog (a ConfigError names the nearest models); beyond the
    tiny configs, the rules do not depend on the model's size.

    >>> default_hyperparameters("ViT-B-32", 1_360_000_000)
    {'batch_size': 32768, 'lr': 0.001, 'warmup_steps': 2075, 'weight_decay': 0.2}
    >>> default_hyperparameters("ViT-B-32", 10_000)
    {'batch_size': 32, 'lr': 0.0001, 'warmup_steps': 16, 'weight_decay': 0.2}
    >>> default_hyperparameters("tiny-vit-28", 400_000)
    {'batch_size': 1024, 'lr': 0.001, 'warmup_steps': 20, 'weight_decay': 0.2}
    """
    from runners.config import _model_problem, _to_int

    try:
        samples = _to_int(samples_seen)
    except ValueError:
        raise ConfigError(f"samples_seen must be a whole number, got {samples_seen!r}") from None
    if samples < 1:
        raise ConfigError(f"samples_seen must be ≥ 1, got {samples}")
    if isinstance(n_gpus, bool) or not isinstance(n_gpus, int) or n_gpus < 1:
        raise ConfigError(f"n_gpus must be a whole number ≥ 1, got {n_gpus!r}")
    problem = _model_problem(model_name) if model_name else "model name is empty"
    if problem:
        raise ConfigError(problem)
    cap = min(32768, samples // MIN_STEPS)
    batch = 1 << max(0, cap.bit_length() - 1) if cap >= 1 else 1
    batch = max(batch, 32)
    batch = min(batch, 1 << (samples.bit_length() - 1))  # never above the run itself
    if batch >= n_gpus:
        batch -= batch % n_gpus
    else:
        batch = n_gpus if n_gpus <= samples else batch
    lr = min(1e-3, max(1e-4, 5e-4 * batch / 4096))
    if _is_tiny(model_name):
        lr = 1e-3
    steps = -(-samples // batch)
    warmup = min(10000, round(0.05 * steps))
    return {"batch_size": batch, "lr": lr, "warmup_steps": warmup, "weight_decay": 0.2}


__all__ = ["MIN_STEPS", "default_hyperparameters"]
