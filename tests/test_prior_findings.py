"""The built-in prior, queried through ``predict``, against the seven findings of Li, Xie, Cubuk 2024
("Scaling (Down) CLIP", arXiv 2404.08197) and the filtering findings of Goyal et al. 2024.

Two kinds of test, named for what they prove:

* ``test_finding*`` — a reproduced finding: the terms it rests on are *fitted* to published numbers
  (Cherti et al.'s grid, DataComp's CLIP-score ladders, FLIP's and SLIP's tables), never set to pass.
* ``test_assumption_*`` — a check of a stated assumption: the seed paper has plots only, so a term's
  range was chosen from the finding (:mod:`planner.scaling.terms`, cited there); the test checks that the
  prior's point estimate (or the end of the range named) agrees with the finding. It shows consistency,
  not evidence; its predictions carry the assumption's range in their intervals.

The seed paper trained on WebLI; rows pass ``data_pool`` explicitly (``webli`` for its quality findings, a
pool the prior has no rows of, so its offset and slope are drawn; ``laion``, the prior's reference pool,
elsewhere).
"""

from __future__ import annotations

import numpy as np
import pytest

from budget.flops import sample_cost
from planner.scaling.forms import accuracy, log_error
from planner.scaling.predict import load_model, predict_config


def top1(model, seen, unique, pool="laion", **kw) -> float:
    return predict_config(model=model, samples_seen=seen, unique_samples=unique, data_pool=pool,
                          **kw)["predicted_top1"]


def at(param: str, value: float, rows: list[dict]) -> np.ndarray:
    """Point predictions with one parameter moved to ``value`` (e.g. an end of its stated range)."""
    m = load_model(None)
    theta = m.theta.copy()
    theta[m.form.index(param)] = value
    return accuracy(m.form, log_error(m.form, theta[None], m.features(rows))[0])


# ------------------------------------------------------------------ finding 1: quality (assumption + fitted)


def test_assumption_quality_clean_gives_finding1_at_one_epoch_and_equal_samples():
    """WebLI (seed paper): top-40 % beats the whole pool at equal samples seen (3.4e9) and top-20 % is worse
    than top-40 %; at one epoch top-40 % is at least as good as the whole pool with 40 % of the compute (and
    far better at equal compute). Rests on the stated clean fraction (0.3–0.6, point 0.4).

    Not reproduced: the paper's *strict* one-epoch win. The noise value fitted to DataComp's ladders
    (≈ -0.01: a noisy pair is worth nothing, barely harmful) makes top-40 % and the whole pool tie at one
    epoch (both hold the same clean pairs); a strict win needs noisy pairs to hurt."""
    pool = 3.4e9
    equal = {q: top1("ViT-B-32", pool, q * pool, "webli", quality_fraction=q) for q in (0.2, 0.4, 1.0)}
    assert equal[0.4] > equal[1.0] and equal[0.2] < equal[0.4], equal
    one = {q: top1("ViT-B-32", q * pool, q * pool, "webli", quality_fraction=q) for q in (0.2, 0.4, 1.0)}
    assert one[0.4] >= one[1.0] - 0.002 and one[0.2] < one[0.4], one  # a tie within seed-to-seed noise
    same_compute = top1("ViT-B-32", 0.4 * pool, 0.4 * pool, "webli", quality_fraction=1.0)
    assert one[0.4] > same_compute + 0.01, (one, same_compute)


def test_finding_best_filter_depends_on_compute_commonpool():
    """Goyal et al. 2024 / DataComp (fitted on CommonPool's CLIP-score ladders): with a fixed pool, the best
    top fraction rises as samples seen grow and the filtered subset is repeated, until the whole pool wins
    over a subset repeated hundreds of times."""
    pool = 1.28e8
    qs = (0.1, 0.3, 1.0)

    def best(seen):
        acc = {q: top1("ViT-B-32", seen, q * pool, "commonpool", quality_fraction=q) for q in qs}
        return max(acc, key=acc.get), acc

    order = [best(s)[0] for s in (1.28e8, 1.28e10, 1.28e12)]
    assert order == sorted(order) and order[0] < order[-1], [best(s) for s in (1.28e8, 1.28e10, 1.28e12)]


# ------------------------------------------------------------------ finding 2: repetition (assumption)


def _epoch_gains(tail, pool):
    """16 → 32 epochs at 25M and at 400M unique pairs (ViT-B/32), in top-1 fractions, with the stated
    ``rep_tail`` at ``tail``."""
    rows = [{"model": "ViT-B-32", "samples_seen": e * u, "unique_samples": u, "data_pool": pool}
            for u in (2.5e7, 4e8) for e in (16, 32)]
    a = at("rep_tail", tail, rows)
    return a[1] - a[0], a[3] - a[2]


@pytest.mark.parametrize("pool", ["webli", "commonpool"])
def test_assumption_rep_tail_gives_finding2_at_its_exponential_end(pool):
    """Seed paper finding 2 (WebLI): 16 → 32 epochs give no ImageNet gain at 25M unique pairs (under a point
    here), and gains at 400M (over a point). Holds at the exponential end of the stated repetition tail
    (``rep_tail`` 0, Muennighoff et al.'s form); at the point (0.5) and across the lower half of the range
    the gain at 25M stays below the gain at 400M; at the power-law end (1, what Cherti et al.'s LAION-80M runs
    fit) the two are level: the published sources disagree, and the range carries the disagreement."""
    small, large = _epoch_gains(0.0, pool)
    assert small < 0.01 < large, (small, large)
    for tail in (0.25, 0.5):
        small, large = _epoch_gains(tail, pool)
        assert small < large, (tail, small, large)


def test_assumption_rep_tail_spans_a_saturating_and_a_slow_tail():
    """The tail changes what many repeats are worth: at 25M pairs, 32 → 425 epochs add under a point at the
    exponential end and over two at the power-law end (Cherti et al.'s 80M runs gain 2.6–4.6 points from 31
    to 160 epochs), so predictions at many epochs carry the range."""
    rows = [{"model": "ViT-B-32", "samples_seen": e * 2.5e7, "unique_samples": 2.5e7, "data_pool": "laion"}
            for e in (32, 425)]
    exp_end, power_end = at("rep_tail", 0.0, rows), at("rep_tail", 1.0, rows)
    assert exp_end[1] - exp_end[0] < 0.01 < 0.02 < power_end[1] - power_end[0], (exp_end, power_end)


# ------------------------------------------------------------------ finding 3: model size vs samples


VITS = ("ViT-Ti-16", "ViT-S-16", "ViT-B-32", "ViT-B-16", "ViT-L-16")


@pytest.mark.parametrize("pool", ["laion", "commonpool"])
def test_assumption_gamma_small_makes_vit_l_the_worst_vit_below_1e8_samples(pool):
    """Seed paper finding 3: ViT-L/16 is the worst of its five ViTs (Ti/16, S/16, B/32, B/16, L/16) below 1e8
    samples seen (one epoch) and larger ViTs win as samples grow. Rests on the stated small-sample part of
    the gamma term (``gamma_small``/``gamma_fade``, point estimate): the published grid fits ``gamma`` < 0,
    where ViT-L/16 would beat ViT-Ti/16 at every sample count."""
    small = {m: top1(m, 5e7, 5e7, pool) for m in VITS}
    assert min(small, key=small.get) == "ViT-L-16", small
    large = {m: top1(m, 3.4e9, 3.4e9, pool) for m in VITS}
    assert max(large, key=large.get) == "ViT-L-16", large
    assert top1("ViT-L-16", 4e8, 4e8, pool) > top1("ViT-B-16", 4e8, 4e8, pool)


def test_assumption_gamma_small_penalises_large_models_without_lifting_small_ones():
    """The small-sample part acts on models above the reference capacity only: switching it off moves
    ViT-L/16 at 5e7 samples, never ViT-Ti/16 or ViT-B/32 (the seed paper's finding is about large models;
    a bonus to ViT-Ti/16, below every published model, would lift tiny budgets above DataComp small)."""
    rows = [{"model": m, "samples_seen": 5e7, "unique_samples": 5e7, "data_pool": "laion"}
            for m in ("ViT-Ti-16", "ViT-B-32", "ViT-L-16")]
    on, off = at("gamma_small", 0.4, rows), at("gamma_small", 0.0, rows)
    assert on[0] == pytest.approx(off[0], abs=1e-9) and on[1] == pytest.approx(off[1], abs=1e-9), (on, off)
    assert on[2] < off[2] - 0.02, (on, off)


def test_finding3_unique_data_saturates_at_fixed_samples():
    """At 3.4e9 samples seen, more than 400M unique pairs adds under a point (repetition term, fitted)."""
    gain = top1("ViT-B-32", 3.4e9, 3.4e9) - top1("ViT-B-32", 3.4e9, 4e8)
    assert 0 <= gain < 0.01, gain


# ------------------------------------------------------------------ finding 4: ResNet (assumption)


def test_assumption_conv_terms_give_finding4_resnet_vs_vit():
    assert top1("RN50", 2.5e7, 2.5e7) > top1("ViT-B-32", 2.5e7, 2.5e7)
    assert top1("RN50", 3.4e9, 3.4e9) < top1("ViT-B-32", 3.4e9, 3.4e9)


# ------------------------------------------------------------------ finding 5: SLIP


@pytest.mark.parametrize("seen", [2.5e7, 1e8, 3e8, 9e8])
def test_assumption_slip_fade_gives_finding5_better_at_equal_samples_below_1e9(seen):
    """SLIP's gain is fitted (SLIP's YFCC/CC3M/CC12M pairs); where it fades (≈1e9) is the stated assumption."""
    assert top1("ViT-B-32", seen, seen, strategy="slip") > top1("ViT-B-32", seen, seen, strategy="clip")


def test_finding5_slip_worse_at_equal_compute():
    seen = 3.4e9
    ratio = sample_cost("ViT-B-32", "slip").forward_gflops / sample_cost("ViT-B-32", "clip").forward_gflops
    assert ratio > 1.9  # SLIP costs about 2x CLIP (three image-tower passes)
    slip = predict_config(model="ViT-B-32", samples_seen=seen, unique_samples=seen, strategy="slip", data_pool="laion")
    clip = predict_config(model="ViT-B-32", samples_seen=seen * ratio, unique_samples=seen, strategy="clip",
                          data_pool="laion")
    assert clip["total_gflops"] == pytest.approx(slip["total_gflops"], rel=1e-9)
    assert slip["predicted_top1"] < clip["predicted_top1"]


# ------------------------------------------------------------------ finding 6: FLIP (fitted)


@pytest.mark.parametrize("model", ["ViT-B-16", "ViT-L-16"])
@pytest.mark.parametrize("clip_seen", [1e9, 3.4e9, 1.28e10])
def test_finding6_flip_matches_clip_at_equal_compute(model, clip_seen):
    ratio = sample_cost(model, "clip").forward_gflops / sample_cost(model, "flip", flip_mask_ratio=0.5).forward_gflops
    for unique in (clip_seen, 4e8):
        clip = top1(model, clip_seen, unique)
        flip = top1(model, clip_seen * ratio, unique, strategy="flip", flip_mask_ratio=0.5)
        assert flip >= clip - 0.01, (unique, flip, clip)


def test_finding6_flip_mask_075_below_05_at_equal_batch():
    """FLIP Table 1: at equal samples and batch, masking 75 % loses to 50 % (the mask term is concave)."""
    args = ("ViT-L-16", 2.56e9, 4e8)
    assert top1(*args, strategy="flip", flip_mask_ratio=0.75) < top1(*args, strategy="flip", flip_mask_ratio=0.5)


def test_assumption_flip_small_masked_samples_count_less_only_below_published_flip_runs():
    """FLIP's published runs all see >= 2.6e9 samples; below them a masked sample is worth between a whole
    sample and its visible patches (``flip_small`` in [0, 1], drawn). The assumption moves FLIP at 1e7
    samples seen and leaves it alone where FLIP's rows are (1e10)."""
    rows = [{"model": "ViT-B-16", "samples_seen": s, "unique_samples": s, "strategy": "flip",
             "flip_mask_ratio": 0.5, "data_pool": "laion"} for s in (1e7, 1e10)]
    whole, visible = at("flip_small", 0.0, rows), at("flip_small", 1.0, rows)
    assert visible[0] < whole[0] - 0.005, (whole, visible)
    assert abs(visible[1] - whole[1]) < 0.003, (whole, visible)


# ------------------------------------------------------------------ finding 7: augmentation (assumption)


def test_assumption_aug_terms_give_finding7_augmentation_halves_the_data_at_30_epochs():
    aug = top1("ViT-B-32", 30 * 2.5e7, 2.5e7, strategy="clip_aug")
    clip = top1("ViT-B-32", 30 * 5e7, 5e7, strategy="clip")
    assert abs(aug - clip) < 0.01, (aug, clip)
    assert top1("ViT-B-32", 2.5e7, 2.5e7, strategy="clip_aug") < top1("ViT-B-32", 2.5e7, 2.5e7, strategy="clip")


# ------------------------------------------------------------------ small and middle budgets (anchored)


def test_finding_low_compute_published_runs_sit_inside_the_intervals():
    """DataComp small and medium with every filter (those the prior fits and those held out of it) and SLIP's
    YFCC-15M/CC3M/CC12M runs, 1e8–2e10 GFLOPs: the prior's 95 % intervals hold them and its errors are a few
    points (a small budget is answered where published runs are, not from the large-compute fit)."""
    from planner.prior import published_rows

    rows = [r for r in published_rows() if r["source"] in ("published:gadre2023", "published:mu2022slip")
            and float(r["samples_seen"]) <= 4.5e8]
    assert len(rows) >= 20
    p = load_model(None).predict(rows)
    y = np.asarray([float(r["zeroshot_top1"]) for r in rows])
    inside = (p.ci_low <= y) & (y <= p.ci_high)
    assert inside.mean() >= 0.9, [(r["run_id"], yy, lo, hi) for r, yy, lo, hi, ok in
                                  zip(rows, y, p.ci_low, p.ci_high, inside) if not ok]
    assert np.mean(np.abs(p.top1 - y)) < 0.03


@pytest.mark.parametrize("budget, published", [(1e9, 0.36), (1e10, 0.575), (1e11, 0.703)])
def test_finding_one_epoch_filtered_pool_matches_the_datacomp_compute_law(budget, published):
    """Nezhurina et al. 2025 (not in the prior's data): CLIP on DataComp-1.4B (the image ∩ CLIP-score filter,
    ~11 % of CommonPool, about one epoch) follows error = 57.86 (C + 18.4)^-0.2266 + 0.111: ≈ 36 % at 1e9,
    57.5 % at 1e10, 70.3 % at 1e11 GFLOPs. ViT-B/32 on the same kind of data predicts within 3 points, inside
    its 95 % interval."""
    seen = budget / 14.78
    r = predict_config(model="ViT-B-32", samples_seen=seen, unique_samples=seen, quality_fraction=0.109,
                       data_pool="commonpool")
    assert abs(r["predicted_top1"] - published) < 0.03, r["predicted_top1"]
    assert r["ci_low"] <= published <= r["ci_high"]


# ------------------------------------------------------------------ filters of another kind (fitted)


def _filter_rows():
    from planner.prior import published_rows

    return [r for r in published_rows() if r["quality_filter"] not in ("", "score")]


def test_finding_filter_k_fitted_between_a_random_subsample_and_the_score():
    """DataComp's basic, text-, image-based and LAION-2B filters at its four scales (none ranks the pool by the
    CLIP score the quality term is fitted to) are in the prior's data, so ``filter_k`` is fitted: a filter
    keeping q is worth a score cut keeping q^k with 0 < k < 1 (better than a random subsample, less selective
    than the score). Read as score cuts of the same size (k = 1) they are over-predicted."""
    rows = _filter_rows()
    assert len(rows) >= 10
    m = load_model(None)
    k = m.info["params"]["filter_k"]
    assert "filter_k" in m.info["free"] and 0.0 < k < 1.0, k
    y = np.asarray([float(r["zeroshot_top1"]) for r in rows])
    p = m.predict(rows)
    assert np.mean(np.abs(p.top1 - y)) < 0.03, (p.top1 - y)
    as_score = at("filter_k", 1.0, rows)
    assert np.mean(as_score - y) > np.mean(p.top1 - y) + 0.01, (as_score - y, p.top1 - y)


def test_filter_term_leaves_score_cuts_and_plans_alone():
    """A row without ``quality_filter`` (every plan row) is a score cut: ``filter_k`` does not move it."""
    rows = [{"model": "ViT-B-32", "samples_seen": 1.28e8, "unique_samples": 3.2e7, "quality_fraction": 0.25,
             "data_pool": "commonpool", "quality_filter": q} for q in (None, "score", "basic")]
    lo, hi = at("filter_k", 0.5, rows), at("filter_k", 1.0, rows)
    assert lo[0] == hi[0] == lo[1] == hi[1]
    assert lo[2] < hi[2] and hi[2] == pytest.approx(hi[0], abs=1e-12)


# ------------------------------------------------------------------ tiny budgets (anchored)


def test_plan_at_1e8_gflops_sits_near_datacomp_small():
    """At 1e8 GFLOPs (below DataComp small, where ViT-B/32 reached ≈ 5 % at 12.8M samples seen) the
    recommendation is at most ~15 points, and no interval spans most of the range: a strategy's term
    extrapolated far below its published runs (FLIP: ≥ 2.6e9 samples) adds at most one decade of
    discrepancy (:data:`planner.scaling.data.STRATEGY_DECADES_CAP`). (The point estimate, ≈ 11 %, is still
    above DataComp small's 5 %: the recommendation is a one-epoch top-20 % cut of a large pool with FLIP, a
    configuration no published run at this compute has; its interval holds DataComp small's results.)"""
    from planner.plan import enumerate_plan
    from planner.scaling.rank import rank_plan

    rows = rank_plan(enumerate_plan(1e8).rows).rows
    best = next(r for r in rows if r["recommended"])
    assert 0.03 <= best["predicted_top1"] <= 0.15, best
    assert best["ci_low"] <= 0.051, best  # DataComp small's best (5.1 %, at twice this compute) is inside
    assert best["ci_high"] - best["ci_low"] < 0.3, best
    assert all(r["ci_high"] < 0.35 for r in rows), max(r["ci_high"] for r in rows)
