"""The scaling law's terms: one record per term, declared once (name, parameters with defaults, bounds and
assumed ranges, citation, whether data can fit it, and its effect).

The saturating law (:mod:`planner.scaling.forms`) is ``error = E + A * N^-alpha + B * N^gamma * D^-beta``
with ``N`` the model capacity and ``D`` the effective data. Its *core* is ``log N = log(GFLOPs / 10)`` and
``log D = log(U / 1e9)`` (``U`` unique samples, capped at samples seen); every term below adds a
log-multiplier to one of the two (``acts_on``), so the law is the core form plus the sum of its terms.

Each parameter of a term is either **fitted** (the data vary along its axis: :func:`Term.identifiable`) or
a **stated assumption**: a default and a range (``assumed``) with a citation, drawn afresh (uniformly) in
every bootstrap draw, so intervals and ``p_best`` include it. A fit never holds an assumption at a single
value. :func:`assumption_table` lists them; predictions name the ones each answer rests on.

Terms (name — what it says — parameters):

* ``repetition`` — repeated epochs are worth less than fresh data (Muennighoff et al. 2023; seed finding 2:
  no gain from 16 → 32 epochs at 25M unique pairs, gains at 400M). The ``r``-th repeat of the unique set
  is worth ``(1 + c r / R*)^(-1/c)`` of a fresh epoch, so ``D_rep = U (1 + integral_0^R of that dr)`` with
  ``R`` = epochs - 1 and a scale that grows with the unique data, ``R* = exp(log_Rstar) * (U / 1e8)^rep_rho``
  (a small set is memorised sooner); both fitted (Cherti et al.'s 80M/400M grid and its LAION-2B runs,
  DataComp's filtered subsets repeated up to 9×). The tail ``c`` (``rep_tail``) is a stated assumption,
  because the published pools disagree on it: ``c`` = 0 is Muennighoff et al.'s exponential (the value of
  a repeat halves every ``0.69 R*`` epochs, so a small set saturates: the seed paper's finding 2), which
  DataComp's repeated subsets fit alone; ``c`` = 1 is a power-law tail (``D_rep = U (1 + R* log(1 + R /
  R*))``: repeats keep paying, slowly), which Cherti et al.'s LAION grid fits alone (``c`` ≈ 0.9: its
  80M-pair runs gain 2.6–4.6 points from 31 to 160 epochs). Fitted together, Cherti et al.'s grid wins and
  the seed paper's finding 2 fails (+1.4 points from 16 to 32 epochs at 25M). Range [0, 1], point 0.5.
* ``quality`` — filtering by a quality score (Goyal et al. 2024, CVPR, "Scaling laws for data filtering";
  seed finding 1). Goyal's buckets in two: a pair at rank fraction ``r`` of a pool ranked by the score is
  *clean* with probability ``sigmoid((c - r) / s)`` and worth 1 sample, else worth ``v`` samples; the top-``q``
  subset's value per sample relative to the whole pool multiplies ``D``; its repeats decay through
  ``repetition``, so the best fraction rises with compute and the whole pool wins once a subset is repeated
  too often. ``quality_softness`` (``s``) and, for every pool with a quality ladder in the data, its clean
  fraction and noise value (``quality_clean:<pool>``, ``quality_noise:<pool>``) are fitted (DataComp's
  CLIP-score ladders: CommonPool's clean top ≈ 1.5 %, a noisy pair worth ≈ -0.01 of a clean one). For
  the pool predictions are for without a ladder of its own (``quality_clean``, ``quality_noise``) both are
  stated assumptions from the seed paper's finding on WebLI: its best fraction is 40 % on a 20/40/60/80 %
  grid, so ``c`` ∈ [0.3, 0.6]; top-40 % beats the whole pool at one epoch, i.e. with the same clean pairs
  the noisy 60 % hurt, so ``v`` ∈ [-0.3, 0] (point -0.1).
* ``filter`` — a quality subset that is not a top-``q`` cut of the score the quality term is fitted to
  (DataComp's basic, text-based, image-based and LAION-2B filters; rows with ``quality_filter`` other than
  ``score``) selects clean pairs less sharply: keeping a fraction ``q`` it is worth a score cut keeping
  ``q^filter_k`` (``filter_k`` = 1: as selective as the score; 0: a random subsample, worth the whole pool
  per sample). Fitted where three or more such rows are in the data, as DataComp's 13 filter rows at its four
  scales are in the built-in prior (with its CLIP-score rows they anchor the smallest budgets). Otherwise a
  stated assumption, ``filter_k`` ∈ [0.5, 1] (point 0.75): such filters are built to keep good pairs
  (DataComp Table 3: each beats no filtering at every scale, so k > 0) but rank by no image-text score (so
  k ≤ 1). Plans use score cuts only, so no plan row rests on it.
* ``gamma`` — larger models need more samples (seed finding 3: ViT-L/16 worst below 1e8 samples seen, best
  by 3.4e9): the data term scales as ``N^g(S)``, i.e. ``log D`` gains ``-(gamma log N + gamma_small
  exp(-S / gamma_fade) max(log N, 0)) / beta``. ``gamma`` is fitted wherever the rows hold three or
  more model sizes at three or more sample counts, as the built-in prior's do: they give ≈ -0.05 (Cherti et
  al.'s grid: the gap between model sizes *shrinks* as samples grow, in -log top-1; the published runs all
  see ≥ 1.3e7 samples, the larger models ≥ 3.75e8). The seed paper's finding lies below that, where no
  published run is: ``gamma_small`` and ``gamma_fade`` are stated assumptions that make models above the
  reference capacity (``log N > 0``: image tower above 10 GFLOPs, ViT-B/16 and larger) need more samples at
  small sample counts only. They penalise large models and give no bonus to the small ones: the finding is
  about ViT-L/16, and a bonus would lift ViT-Ti/16 (below every published model) at 1e7 samples far above
  DataComp small's ≈ 5 %. Ranges from the finding, read at the prior's fitted core: ``gamma_small`` ∈
  [0.2, 0.4] (point 0.3) and ``gamma_fade`` ∈ [1e8, 4e8] samples (point 2e8) put ViT-L/16 last of the five
  ViTs at 5e7 one-epoch samples, level with ViT-Ti/16 near 1e8 and first by 4e8 (the seed paper: worst below
  1e8, best by 3.4e9); the old range (≤ 0.25, fade ≤ 3e8) left ViT-L/16 above ViT-Ti/16 at 5e7. A fit that
  cannot identify ``gamma`` draws it from [-0.05, 0.15].
* ``slip`` — SLIP (Mu et al. 2022; seed finding 5): the self-supervised views multiply ``D`` by
  ``exp(slip_kappa / (1 + S / slip_fade))`` (``S`` samples seen): a gain that fades. ``slip_kappa`` is fitted
  (SLIP's YFCC15M/CC3M/CC12M pairs); ``slip_fade`` is assumed (seed paper: SLIP stops winning near 1e9
  samples; range 3e8–3e9).
* ``flip`` — FLIP (Li et al. 2023): masking a fraction ``m`` multiplies ``D`` by ``exp(f(S) (flip_phi m +
  flip_psi m^2))``, concave (``flip_psi`` ≤ 0); fitted with batch size as a variable (``batch`` term), from
  FLIP's mask 0/0.5/0.75 rows and its 16k/32k/64k batch ladder. Published masks stop at 0.75. FLIP's
  published runs all see ≥ 2.6e9 samples, and the seed paper (finding 6) finds FLIP ≈ CLIP only at large
  sample counts, so the gain is switched on with samples seen, ``f(S) = S / (S + flip_onset)``;
  ``flip_onset`` is a stated assumption (1e8–1e9 samples). Below it a masked sample is worth less than a
  whole one: ``D`` × ``(1 - m)^(flip_small (1 - f(S)))``, i.e. a sample with a fraction ``m`` of its patches
  masked is worth between a whole sample (``flip_small`` = 0: FLIP buys samples at half the image cost and
  loses nothing per sample) and only its visible patches (1: the saving is spent on samples that each carry
  half the image). A stated assumption, ``flip_small`` ∈ [0, 1] (point 0.5): the seed paper says FLIP
  matches CLIP *at large sample counts* (finding 6), FLIP's own equal-batch comparison (mask 0.5 at 16k vs
  CLIP, Table 1) is at 2.6e9 samples, and no published FLIP run sees fewer; the whole range is drawn, so at
  small budgets FLIP versus CLIP is as uncertain as the evidence leaves it.
* ``batch`` — contrastive batch size: ``D`` × ``exp(batch_k * log2(batch / 32768))`` for rows that give a
  batch size (others are taken at the published runs' ≥ 32k). Fitted on FLIP's batch ladder.
* ``aug`` — CLIP + data augmentation (seed finding 7: at 30 epochs 25M augmented pairs ≈ 50M plain; at one
  epoch augmentation hurts): ``D`` × ``aug_one_epoch * (1 + (aug_lambda - 1)(1 - exp(-R / aug_repeats)))``.
  All three assumed (the paper has plots only): ``aug_lambda`` 3 puts 25M augmented pairs within a point of
  50M plain ones at 30 epochs under the fitted repetition term; its range 2–4 spans "comparable".
* ``conv`` — ResNets (seed finding 4: ResNet-50 beats ViT-B/32 at small sample counts, loses with more): a
  ``modified_resnet`` image tower learns as if from ``exp(conv_data)`` × the data with ``exp(conv_capacity)``
  × the capacity of a ViT of equal image-tower GFLOPs. Assumed (no published numbers): ``conv_data`` 2×
  (1.3–3×), ``conv_capacity`` 0.35× (0.2–0.6×; ResNet-50's image tower costs 1.4× ViT-B/32's, so this
  leaves it about half of ViT-B/32's capacity). ConvNeXt gets no term.
* ``pool`` — data pools differ in value per sample and in slope: a log-multiplier ``pool:<name>`` of ``D``
  and an exponent change ``pool_slope:<name>`` per pool other than the reference pool, fitted where the
  pool's rows allow, else drawn (:data:`POOL_OFFSET`, :data:`POOL_SLOPE`); ``pool:*``/``pool_slope:*`` stand
  for any pool the fit has no rows of (made by :mod:`planner.scaling.forms`, not in :data:`TERMS`).

Besides the law's terms, one stated assumption shapes rankings only: ``discrepancy_shared``
(:data:`DISCREPANCY_SHARED`), the share of the model discrepancy common to all rows ranked together; the rest
is per configuration, so ``p_best`` and ties include the discrepancy that widens the intervals.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

#: Reference contrastive batch size of the ``batch`` term (published LAION runs used 32k–88k).
REFERENCE_BATCH = 32768.0
#: Largest FLIP mask ratio with published results (FLIP Table 1); beyond it predictions are extrapolation.
FLIP_MAX_PUBLISHED_MASK = 0.75


@dataclass(frozen=True)
class Param:
    """One parameter of a term (natural units).

    ``lower``/``upper`` bound a fit; ``assumed`` is the range drawn (uniformly) in every bootstrap draw when
    the data cannot fit it; ``fittable`` False means it is always an assumption.
    """

    name: str
    default: float
    lower: float
    upper: float
    assumed: tuple[float, float]
    fittable: bool = True


@dataclass(frozen=True)
class Term:
    """A term of the law: adds ``effect(x, col, d)`` (log-multiplier, ``[B or 1, n]``) to ``log D`` or
    ``log N`` (``acts_on``) on the rows where ``applies(x)`` holds; ``effect`` is called with those rows only
    (:func:`planner.scaling.forms.log_error`), zero elsewhere.

    ``identifiable(x, name)`` says whether rows ``x`` can fit parameter ``name``; ``d`` holds derived
    arrays (``u`` unique samples capped at samples seen, ``repeats`` = epochs - 1).
    """

    name: str
    acts_on: str  # "data" | "capacity"
    params: tuple[Param, ...]
    citation: str
    statement: str
    applies: Callable
    effect: Callable
    identifiable: Callable


def _softplus(x):
    return np.logaddexp(0.0, x)


# ---------------------------------------------------------------- effects


def repeat_area(rep, rstar, tail):
    """Fresh-epoch equivalents of ``rep`` repeats: ``integral_0^rep (1 + tail r / rstar)^(-1/tail) dr``
    (``tail`` 0: ``rstar (1 - exp(-rep / rstar))``; 1: ``rstar log(1 + rep / rstar)``)."""
    c = np.clip(tail, 1e-6, 1.0 - 1e-6)
    # 1 - (1 + c rep / rstar)^(-(1 - c) / c), without cancellation near either end
    return rstar / (1.0 - c) * -np.expm1(-(1.0 - c) / c * np.log1p(c * rep / rstar))


def _repetition(x, col, d):
    rstar = np.exp(col["log_Rstar"] + col["rep_rho"] * np.log(d["u"] / 1e8))
    return np.log1p(repeat_area(d["repeats"], rstar, col["rep_tail"]))


def quality_log_multiplier(q, clean, noise, softness):
    """log of the top-``q`` subset's value per sample relative to the whole pool's (see ``quality``)."""
    s, v = softness, noise
    top = _softplus(clean / s)

    def value(xq):  # cumulative value of the top-xq fraction
        return v * xq + (1.0 - v) * s * (top - _softplus((clean - xq) / s))

    vq = np.maximum(value(q), 1e-6 * q)
    v1 = np.maximum(value(1.0), 1e-6)
    return np.log(vq / q) - np.log(v1)


@lru_cache(maxsize=16)
def _pool_quality_params(names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(n for n in names if n.startswith(("quality_clean:", "quality_noise:")))


def _quality_of(x, col, q):
    clean, noise = col["quality_clean"], col["quality_noise"]
    for name in _pool_quality_params(tuple(col)):
        in_pool = (x.pool_key == "pool:" + name.split(":", 1)[1])[None, :]
        if in_pool.any():
            if name.startswith("quality_clean:"):
                clean = np.where(in_pool, col[name], clean)
            else:
                noise = np.where(in_pool, col[name], noise)
    return quality_log_multiplier(q, clean, noise, col["quality_softness"])


def _quality(x, col, d):
    return _quality_of(x, col, x.quality[None, :])


def _other_filter(x):
    return np.zeros(len(x)) if x.other_filter is None else x.other_filter


def _filter(x, col, d):  # a filter of another kind keeping q is worth a score cut keeping q^k (>= q)
    q = x.quality[None, :]
    return _quality_of(x, col, q ** col["filter_k"]) - _quality_of(x, col, q)


def _gamma(x, col, d):  # B * N^gamma * D^-beta == B * (D * N^(-gamma/beta))^-beta
    small = col["gamma_small"] * np.exp(-x.seen[None, :] / col["gamma_fade"])  # gone by a few gamma_fade
    # the small-sample part penalises models above the reference capacity only (log N > 0, image tower
    # above 10 GFLOPs: ViT-B/16, ViT-L …): it is stated for large models, and gives no bonus to the models
    # below the published ones (ViT-Ti) that no run measures
    return -(col["gamma"] * d["log_n"] + small * np.maximum(d["log_n"], 0.0)) / col["beta"]


def _slip(x, col, d):
    return col["slip_kappa"] / (1.0 + x.seen[None, :] / col["slip_fade"])


def _flip(x, col, d):
    m, seen = x.mask[None, :], x.seen[None, :]
    onset = seen / (seen + col["flip_onset"])  # the gain appears with samples seen
    small = (1.0 - onset) * col["flip_small"] * np.log1p(-np.minimum(m, 0.99))  # a masked sample, few seen
    return onset * (col["flip_phi"] * m + col["flip_psi"] * m * m) + small


def _batch(x, col, d):
    return col["batch_k"] * np.log2(np.where(x.batch > 0, x.batch, REFERENCE_BATCH) / REFERENCE_BATCH)[None, :]


def _aug(x, col, d):
    grow = -np.expm1(-d["repeats"] / col["aug_repeats"])
    return np.log(col["aug_one_epoch"] * (1.0 + (col["aug_lambda"] - 1.0) * grow))


def _conv_data(x, col, d):
    return col["conv_data"] * np.ones((1, len(x)))


def _conv_capacity(x, col, d):
    return col["conv_capacity"] * np.ones((1, len(x)))


# ---------------------------------------------------------------- identifiability


def _epochs(x):
    return np.log2(np.maximum(x.seen / np.minimum(x.unique, x.seen), 1.0))


def _ident_repetition(x, name):
    e = _epochs(x)
    if name == "log_Rstar":
        return len(np.unique(np.round(e, 1))) >= 3 and e.max() >= 2
    rep = e >= 1
    return len(np.unique(np.round(np.log10(x.unique[rep]), 1))) >= 3 if rep.any() else False


def _ident_quality(x, name):
    if name.startswith(("quality_clean:", "quality_noise:")):
        sel = x.pool_key == "pool:" + name.split(":", 1)[1]
        return len(np.unique(np.round(x.quality[sel], 3))) >= 3
    levels = {}
    for k in np.unique(x.pool_key):
        levels[k] = len(np.unique(np.round(x.quality[x.pool_key == k], 3)))
    if name in ("quality_clean", "quality_noise"):
        return levels.get("pool:", 0) >= 3
    return max(levels.values()) >= 3 and len(x) >= 8  # softness: shape shared by every pool


def _ident_gamma(x, name):
    if name != "gamma":
        return False
    return len(np.unique(np.round(x.capacity, 3))) >= 3 and len(np.unique(np.round(np.log10(x.seen), 1))) >= 3


def _ident_slip(x, name):
    if name == "slip_fade":
        return False
    return x.is_slip.sum() >= 2 and (x.strategy == "clip").sum() >= 2


def _ident_flip(x, name):
    masks = np.unique(np.round(np.concatenate([x.mask[x.is_flip > 0], [0.0]]), 3))
    if name in ("flip_onset", "flip_small"):
        return False
    if name == "flip_phi":
        return x.is_flip.sum() >= 2 and (x.strategy == "clip").sum() >= 2
    return len(masks) >= 3 and x.is_flip.sum() >= 3


def _ident_batch(x, name):
    return len(np.unique(x.batch[x.batch > 0])) >= 3


def _ident_filter(x, name):
    return int((_other_filter(x) > 0).sum()) >= 3


def _ident_conv(x, name):
    return x.conv.sum() >= 3 and (x.conv == 0).sum() >= 3


def _always(x):
    return np.ones(len(x), dtype=bool)


TERMS: tuple[Term, ...] = (
    Term("repetition", "data",
         (Param("log_Rstar", math.log(15.0), math.log(0.5), math.log(500.0), (math.log(5.0), math.log(40.0))),
          Param("rep_rho", 0.0, 0.0, 1.0, (0.0, 0.5)),
          Param("rep_tail", 0.5, 0.0, 1.0, (0.0, 1.0), fittable=False)),
         "Muennighoff et al. 2023 (arXiv 2305.16264; exponential, tail 0); Li, Xie, Cubuk 2024 finding 2; Cherti "
         "et al. 2023 (LAION-80M runs gain up to 425 epochs: tail ~0.9); Goyal et al. 2024",
         "the r-th repeat is worth (1 + c r / R*)^(-1/c) of a fresh epoch, R* growing with the unique data; the "
         "tail c spans the published pools: 0 exponential (DataComp's repeated subsets), 1 a power law (Cherti "
         "et al.'s LAION grid)",
         lambda x: np.minimum(x.unique, x.seen) < x.seen, _repetition, _ident_repetition),
    Term("quality", "data",
         (Param("quality_clean", 0.4, 0.01, 1.0, (0.3, 0.6)),
          Param("quality_noise", -0.1, -1.0, 0.9, (-0.3, 0.0)),
          Param("quality_softness", 0.05, 0.005, 0.5, (0.01, 0.2))),
         "Goyal et al. 2024 (CVPR, Scaling laws for data filtering); Li, Xie, Cubuk 2024 finding 1 "
         "(top-40% of WebLI beats the full pool; top-20% is worse)",
         "the top-q subset by a quality score: clean pairs worth 1 sample, noisy ones v; clean fraction c",
         lambda x: x.quality < 1.0, _quality, _ident_quality),
    Term("filter", "data",
         (Param("filter_k", 0.75, 0.0, 1.0, (0.5, 1.0)),),
         "Gadre et al. 2023 (DataComp) Table 3: basic, text-, image-based and LAION-2B filters rank no pool by "
         "the image-text score the quality term is fitted to",
         "a filter that is not a top-q cut of the quality score (basic, text, image, LAION) keeping a fraction q "
         "is worth a score cut keeping q^k: k = 1 as selective as the score, k = 0 a random subsample",
         lambda x: _other_filter(x) > 0, _filter, _ident_filter),
    Term("gamma", "data",
         (Param("gamma", 0.05, -0.5, 2.0, (-0.05, 0.15)),
          Param("gamma_small", 0.3, 0.0, 1.0, (0.2, 0.4), fittable=False),
          Param("gamma_fade", 2e8, 1e7, 1e10, (1e8, 4e8), fittable=False)),
         "Li, Xie, Cubuk 2024 finding 3: ViT-L/16 worst below 1e8 samples seen, best by 3.4e9; "
         "Cherti et al. 2023 (the published grid fits gamma < 0)",
         "larger models need more samples: the data term scales as N^g(S), g = gamma + gamma_small exp(-S / "
         "gamma_fade) for models above the reference capacity (the small-sample part from the seed paper, below "
         "the published runs; it penalises large models, never lifts small ones)",
         _always, _gamma, _ident_gamma),
    Term("slip", "data",
         (Param("slip_kappa", 1.0, -3.0, 5.0, (0.0, 2.0)),
          Param("slip_fade", 1e9, 1e8, 1e10, (3e8, 3e9), fittable=False)),
         "Mu et al. 2022 (SLIP, ECCV); Li, Xie, Cubuk 2024 finding 5: SLIP best below ~1e9 samples",
         "SLIP's self-supervised views multiply the data by exp(kappa / (1 + S / fade))",
         lambda x: x.is_slip > 0, _slip, _ident_slip),
    Term("flip", "data",
         (Param("flip_phi", 0.0, -3.0, 3.0, (-0.5, 0.5)),
          Param("flip_psi", -1.0, -8.0, 0.0, (-3.0, 0.0)),
          Param("flip_onset", 3e8, 1e7, 1e10, (1e8, 1e9), fittable=False),
          Param("flip_small", 0.5, 0.0, 1.0, (0.0, 1.0), fittable=False)),
         "Li, Fan, Hu, Feichtenhofer, He 2023 (FLIP, CVPR, arXiv 2212.00794) Table 1; Li, Xie, Cubuk 2024 "
         "finding 6",
         "masking a fraction m of patches multiplies the data by exp(f (phi m + psi m^2)) (1 - m)^(small (1 - f)), "
         "f = S/(S+onset), psi <= 0 (concave): the gain appears with samples seen S; below the onset a masked "
         "sample is worth between a whole one (small 0) and its visible patches (small 1)",
         lambda x: x.is_flip > 0, _flip, _ident_flip),
    Term("batch", "data",
         (Param("batch_k", 0.1, -1.0, 1.0, (0.0, 0.3)),),
         "Li et al. 2023 (FLIP) Table 1: batch 16k/32k/64k at mask 0.5 gives 68.5/69.6/70.4",
         "a contrastive batch of b pairs multiplies the data by exp(k log2(b / 32768)); rows without a batch "
         "size are taken at >= 32k, as published",
         lambda x: x.batch > 0, _batch, _ident_batch),
    Term("aug", "data",
         (Param("aug_lambda", 3.0, 1.0, 6.0, (2.0, 4.0), fittable=True),
          Param("aug_one_epoch", 0.9, 0.5, 1.0, (0.75, 1.0), fittable=False),
          Param("aug_repeats", 8.0, 1.0, 50.0, (4.0, 16.0), fittable=False)),
         "Li, Xie, Cubuk 2024 finding 7: 25M augmented pairs ~ 50M plain at 30 epochs; one epoch: it hurts",
         "augmentation multiplies the data by rho (1 + (lambda - 1)(1 - exp(-R / R_aug)))",
         lambda x: x.is_aug > 0, _aug,
         lambda x, n: n == "aug_lambda" and x.is_aug.sum() >= 2 and (x.strategy == "clip").sum() >= 2
         and _epochs(x)[x.is_aug > 0].max() >= 2),
    Term("conv", "data",
         (Param("conv_data", math.log(2.0), -3.0, 3.0, (math.log(1.3), math.log(3.0))),),
         "Li, Xie, Cubuk 2024 finding 4: ResNet-50 beats ViT-B/32 at small sample counts",
         "a convolutional image tower learns as if from exp(conv_data) x the data (inductive bias)",
         lambda x: x.conv > 0, _conv_data, _ident_conv),
    Term("conv_capacity", "capacity",
         (Param("conv_capacity", math.log(0.35), -3.0, 0.0, (math.log(0.2), math.log(0.6))),),
         "Li, Xie, Cubuk 2024 finding 4: ViT-B/32 wins with more samples",
         "a convolutional image tower has exp(conv_capacity) x the capacity of a ViT of equal GFLOPs",
         lambda x: x.conv > 0, _conv_capacity, _ident_conv),
)

#: A data pool's log value per sample relative to the reference pool, for a pool the fit has no rows of
#: (``pool:*``, and ``pool:<name>`` while left out): published pools span e^-2.5 (unfiltered CommonPool)
#: to e^+0.7 (WIT) times LAION's value per sample in the prior.
POOL_OFFSET = Param("pool:*", 0.0, -6.0, 6.0, (-3.0, 1.0), fittable=False)
#: A data pool's change of the data exponent relative to the reference pool (``pool_slope:<name>``:
#: ``log D`` gains ``slope * log(U / 1e9)``), fitted for a pool whose rows span three or more data sizes,
#: else drawn from this range (Nezhurina et al. 2025: data sets differ in slope, not only in offset): from
#: a little flatter than the reference pool to the one slope measured, CommonPool's ≈ 0.7 (raw web data
#: gains more from scale).
POOL_SLOPE = Param("pool_slope:*", 0.0, -0.8, 2.0, (-0.2, 0.8), fittable=False)
POOL_CITATION = "pool offsets fitted in the built-in prior (Cherti et al. 2023; Radford et al. 2021; DataComp; SLIP)"

#: Share of the model discrepancy's variance common to every configuration ranked together
#: (``discrepancy_shared``, ``rho``): a stated assumption, drawn uniformly from its range in every draw of a
#: ranking (:meth:`planner.scaling.predict.ScalingModel.discrepancy_draws`). The discrepancy of a row is
#: ``sigma (sqrt(rho) z + sqrt(1 - rho) w_c)``: ``z`` one normal per draw shared by every row (it moves all
#: rows alike and cannot change the ranking), ``w_c`` one per configuration (model × strategy × mask ×
#: quality × pool; rows of one configuration share it, so its own scaling curve stays smooth), so the
#: marginal is the fitted ``N(0, sigma^2)`` whatever ``rho`` and the intervals are unchanged. The split is not
#: estimated: the leave-one-source-out residuals that fit ``sigma`` come almost all from one source (29 of 32
#: calibrating points are Cherti et al.'s grid, :func:`planner.scaling.discrepancy.discrepancy_sigma`), too few
#: sources to separate a source-wide offset from a per-configuration error. Range: a held-out source's error
#: carries what all its runs share (pool, recipe, evaluation; Cherti et al.'s grid held out is off by 5.8
#: points on average), so at least a quarter is taken as shared; but the terms that separate a plan's rows
#: (FLIP, SLIP, the quality ladder, ConvNeXt/ResNet) are each fitted on one paper's rows or stated, so their
#: errors are the configuration's own and at least a quarter is per-configuration. Point 0.5, the middle.
DISCREPANCY_SHARED = Param("discrepancy_shared", 0.5, 0.0, 1.0, (0.25, 0.75), fittable=False)
DISCREPANCY_STATEMENT = ("share of the model discrepancy common to every ranked row (moves all rows alike); the "
                         "rest is drawn independently per configuration (model x strategy x quality x pool), so "
                         "rows closer than the discrepancy are not ranked with confidence")
DISCREPANCY_CITATION = ("stated: the prior's leave-one-source-out residuals (planner.scaling.discrepancy.discrepancy_sigma) "
                        "come from too few sources to split source-wide and per-configuration error; Kennedy & "
                        "O'Hagan 2001 (model discrepancy as a correlated error term)")


def discrepancy_assumption(shared_range: tuple[float, float] | None = None) -> dict:
    """The ``discrepancy_shared`` assumption as an :func:`assumption_table` row (term ``discrepancy``)."""
    p = DISCREPANCY_SHARED
    rng = list(shared_range or p.assumed)
    return {"name": p.name, "term": "discrepancy", "value": float(sum(rng) / 2), "default": p.default,
            "range": rng, "fitted": False, "statement": DISCREPANCY_STATEMENT, "citation": DISCREPANCY_CITATION}

#: Every term parameter by name (the ``quality_clean:<pool>``/``quality_noise:<pool>`` parameters copy
#: ``quality_clean``'s/``quality_noise``'s).
PARAMS: dict[str, Param] = {p.name: p for t in TERMS for p in t.params}
#: Which term owns each parameter.
OWNER: dict[str, Term] = {p.name: t for t in TERMS for p in t.params}
#: Term parameter names in form order.
TERM_PARAMS: tuple[str, ...] = tuple(PARAMS)
#: Default values (natural units), kept for callers of the earlier API.
DEFAULTS: dict[str, float] = {n: p.default for n, p in PARAMS.items()}
#: Citation of each parameter's term.
CITATIONS: dict[str, str] = {n: OWNER[n].citation for n in PARAMS}


def param(name: str) -> Param:
    """The record of ``name`` (``quality_clean:<pool>`` resolves to ``quality_clean``'s, likewise noise; ``pool:<name>`` to
    :data:`POOL_OFFSET`)."""
    if name.startswith("pool:"):
        return POOL_OFFSET
    if name.startswith("pool_slope:"):
        return POOL_SLOPE
    base = name.split(":", 1)[0] if name.startswith(("quality_clean:", "quality_noise:")) else name
    return PARAMS[base]


def term_of(name: str) -> Term | None:
    base = name.split(":", 1)[0] if name.startswith(("quality_clean:", "quality_noise:")) else name
    return OWNER.get(base)


def assumption_table(params: Mapping[str, float] | None = None, free=(), ranges: Mapping | None = None) -> list[dict]:
    """Every term parameter as a dict: ``name``, ``term``, ``value``, ``default``, ``range`` (the drawn
    range of an assumption; None when fitted), ``fitted``, ``statement``, ``citation``."""
    params = params or DEFAULTS
    ranges = ranges or {}
    out = []
    for name, value in params.items():
        t = term_of(name)
        if t is None and not name.startswith(("pool:", "pool_slope:")):
            continue
        fitted = name in set(free)
        rng = None if fitted else list(ranges.get(name, param(name).assumed))
        if t is None:
            pool = name.split(":", 1)[1]
            what = "log value per sample" if name.startswith("pool:") else "change of the data exponent"
            statement = (f"data pool {pool!r} vs the reference pool: {what}" if pool != "*"
                         else f"a data pool without rows in the fit: {what} vs the reference pool")
            citation, term_name = POOL_CITATION, "pool"
        else:
            statement, citation, term_name = t.statement, t.citation, t.name
        out.append({"name": name, "term": term_name, "value": float(value), "default": param(name).default,
                    "range": rng, "fitted": fitted, "statement": statement, "citation": citation})
    return out
