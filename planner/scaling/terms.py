"""Finding-based model terms: effects the literature states but does not quantify, with their assumptions.

The seed study (Li, Xie, Cubuk, "Scaling (Down) CLIP", arXiv 2404.08197, TMLR 2024) reports its results
as plots only. Where it states a finding without a number, the scaling model carries a *term* whose shape
is an assumption written down here, with a default value chosen to reproduce the finding. Every term acts
on the **effective data** ``D_eff`` (samples, see :mod:`planner.scaling.forms`) as a multiplier, or on the
model-capacity variable. A user's own fit replaces a default whenever the user's data vary along that
term's axis (e.g. several quality fractions frees ``quality_clean``); otherwise the default stays and the
prediction says that it rests on a finding-based term.

Terms (name: assumption → default):

* ``quality_clean`` — data quality (seed finding 1: top-40 % of the 3.4B WebLI pool, one epoch, beats the
  whole pool; top-20 % is worse). Assumption: rank the pool by a quality score; a pair at rank fraction
  ``r`` is *clean* with probability ``p(r) = sigmoid((c - r) / s)`` and noisy otherwise; a clean pair is
  worth 1 sample, a noisy pair ``v`` samples (``v < 0``: misaligned pairs teach wrong alignments). The
  top-``q`` subset's value per sample, relative to the whole pool's, multiplies ``D_eff``. ``c = 0.4``
  (the seed paper's best fraction), ``s = 0.05``, ``v = -0.2`` (:data:`QUALITY_SOFTNESS`,
  :data:`QUALITY_NOISE_VALUE`).
* ``slip_kappa`` — SLIP (Mu et al. 2022; seed finding 5: best at equal samples below ≈1e9, worst at equal
  compute). Assumption: the self-supervised views multiply ``D_eff`` by ``exp(kappa / (1 + S / 1e9))``
  (``S`` = samples seen): a gain that fades past ≈1e9 samples. ``kappa`` is *fitted* to SLIP's published
  YFCC15M/CC3M/CC12M pairs in the prior.
* ``flip_phi`` — FLIP (Li et al. 2023; seed finding 6: ≈ CLIP at equal samples for large counts, at about
  half the image compute). Assumption: masking a fraction ``m`` of patches multiplies ``D_eff`` by
  ``exp(phi * m)``; ``phi`` is fitted to FLIP's published LAION-400M rows in the prior.
* ``aug_lambda`` — CLIP + data augmentation (seed finding 7: at 30 epochs 25M augmented pairs ≈ 50M plain
  ones; one epoch, augmentation hurts). Assumption: augmentation multiplies ``D_eff`` by
  ``rho * (1 + (lambda - 1) * (1 - exp(-R / R_aug)))`` with ``R`` = repeats (epochs - 1),
  ``rho = 0.9`` (one-epoch cost of off-caption views), ``R_aug = 8`` epochs, ``lambda = 2.25`` (so the
  multiplier reaches ≈2 at 30 epochs).
* ``conv_data``, ``conv_capacity`` — ResNets (seed finding 4: ResNet-50 beats ViT-B/32 at small sample
  counts, loses with more samples). Assumption: a convolutional image tower (family ``modified_resnet``)
  learns as if it had ``exp(conv_data)`` = 2× the data (inductive bias) but ``exp(conv_capacity)`` = 0.5×
  the capacity of a ViT of equal per-sample GFLOPs. ConvNeXt gets no term (the finding is for ResNet-50).
* ``gamma`` — larger models need more samples (seed finding 3: ViT-L/16 is the worst ViT below 1e8
  samples seen and the best at 3.4e9). Assumption: the data term scales as ``N^gamma`` (capacity ``N``);
  the prior sets ``gamma`` so that ViT-L/16 and ViT-B/16 cross at :data:`L_B_CROSSOVER_SAMPLES` one-epoch
  samples (published numbers start at 1.3e8 samples and cannot place it).
"""

from __future__ import annotations

import math

#: Width of the clean/noisy transition in rank fraction (assumption; see module docstring).
QUALITY_SOFTNESS = 0.05
#: Value of a noisy pair relative to a clean one (assumption; negative = harmful).
QUALITY_NOISE_VALUE = -0.2
#: SLIP's gain fades past this many samples seen (seed paper: crossover ≈1e9).
SLIP_FADE_SAMPLES = 1e9
#: One-epoch multiplier of augmented data (assumption: augmentation hurts at one epoch).
AUG_ONE_EPOCH = 0.9
#: Repeats over which augmentation's benefit builds up (assumption).
AUG_REPEATS = 8.0
#: One-epoch samples at which ViT-L/16 overtakes ViT-B/16 in the prior (assumption inside the seed
#: paper's range: worst below 1e8, best by 3.4e9).
L_B_CROSSOVER_SAMPLES = 2e8

#: Default values of the finding-based parameters (natural units; see module docstring).
DEFAULTS: dict[str, float] = {
    "quality_clean": 0.4,
    "slip_kappa": 1.0,
    "flip_phi": 0.0,
    "aug_lambda": 2.25,
    "conv_data": math.log(2.0),
    "conv_capacity": math.log(0.5),
    "gamma": 0.0,
}

#: Citation of each term (shown in predictions that rest on it).
CITATIONS: dict[str, str] = {
    "quality_clean": "Li, Xie, Cubuk 2024 (arXiv 2404.08197) finding 1: top-40% of WebLI beats the full pool",
    "slip_kappa": "Mu et al. 2022 (SLIP); Li, Xie, Cubuk 2024 finding 5",
    "flip_phi": "Li et al. 2023 (FLIP, arXiv 2212.00794); Li, Xie, Cubuk 2024 finding 6",
    "aug_lambda": "Li, Xie, Cubuk 2024 finding 7: 25M augmented pairs ~ 50M plain at 30 epochs",
    "conv_data": "Li, Xie, Cubuk 2024 finding 4: ResNet-50 beats ViT-B/32 at small sample counts",
    "conv_capacity": "Li, Xie, Cubuk 2024 finding 4: ViT-B/32 wins with more samples",
    "gamma": "Li, Xie, Cubuk 2024 finding 3: ViT-L/16 worst below 1e8 samples, best at 3.4e9",
}
