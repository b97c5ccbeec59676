"""The words every layer shares, defined once: training strategies, augmentation presets and their defaults.

Imports nothing (not even the model catalog), so the lightest modules (``runners.config``, the CLI's
argument parsers) can read it. ``results/`` imports nothing of ours and keeps a copy of :data:`STRATEGIES`
for row validation; ``tests/test_layers.py`` checks that the copy agrees.

* ``clip``: CLIP (Radford et al. 2021); ``slip``: SLIP, CLIP + SimCLR on two more image views (Mu et al.
  2022); ``flip``: FLIP, CLIP with patch dropout (Li et al. 2023); ``clip_aug``: CLIP with data
  augmentation of the CLIP view (the seed paper's "CLIP+Aug").
* ``flip_mask_ratio``: share of patches FLIP drops; 0.5 is the FLIP paper's and the seed paper's choice.
* SLIP's SSL head: ``E → 4096 → 4096 → 256`` (facebookresearch/SLIP ``models.py``: ``ssl_mlp_dim=4096,
  ssl_emb_dim=256``).
* Augmentation presets (``aug``): ``none``, ``crop_flip``, ``randaug``, ``stacked_randaug`` (the default of
  ``clip_aug``: SimCLR jitter/greyscale + RandAugment, as the seed paper stacks them).

Example:
    >>> STRATEGIES, DEFAULT_FLIP_MASK_RATIO, default_aug("clip_aug"), default_flip_mask_ratio("clip")
    (('clip', 'slip', 'flip', 'clip_aug'), 0.5, 'stacked_randaug', 0.0)
"""

from __future__ import annotations

#: Training strategies.
STRATEGIES: tuple[str, ...] = ("clip", "slip", "flip", "clip_aug")
#: Augmentation presets of the CLIP view (``none`` for every strategy but ``clip_aug``).
AUG_PRESETS: tuple[str, ...] = ("none", "crop_flip", "randaug", "stacked_randaug")
#: The preset ``clip_aug`` gets when none is given.
DEFAULT_AUG = "stacked_randaug"
#: FLIP's share of dropped patches when none is given (the FLIP paper's best trade-off).
DEFAULT_FLIP_MASK_RATIO = 0.5
#: SLIP's SSL head widths (hidden, output) when none are given.
SLIP_MLP_DIM = 4096
SLIP_EMB_DIM = 256


def default_flip_mask_ratio(strategy: str) -> float:
    """The mask ratio a config of ``strategy`` gets when it names none: 0.5 for ``flip``, else 0."""
    return DEFAULT_FLIP_MASK_RATIO if strategy == "flip" else 0.0


def default_aug(strategy: str) -> str:
    """The augmentation preset a config of ``strategy`` gets when it names none."""
    return DEFAULT_AUG if strategy == "clip_aug" else "none"


__all__ = ["AUG_PRESETS", "DEFAULT_AUG", "DEFAULT_FLIP_MASK_RATIO", "SLIP_EMB_DIM", "SLIP_MLP_DIM", "STRATEGIES",
           "default_aug", "default_flip_mask_ratio"]
