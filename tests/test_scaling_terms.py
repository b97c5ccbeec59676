"""The scaling law's terms (planner.scaling.terms): one record per term, the law = core + sum of the terms,
and every stated assumption drawn from its range in every bootstrap draw (so intervals, p_best and ties
include it). Real numpy; the shipped prior where a fit is needed."""

from __future__ import annotations

import math

import numpy as np
import pytest

from planner.scaling import terms
from planner.scaling.data import build_features
from planner.scaling.forms import CORE_SATURATING, accuracy, log_error, make_form
from planner.scaling.predict import load_model
from planner.scaling.rank import rank_plan

ROWS = [
    {"model": "ViT-B-32", "samples_seen": 1e9, "unique_samples": 1e8, "quality_fraction": 0.4},
    {"model": "RN50", "samples_seen": 3e8, "unique_samples": 3e8, "strategy": "slip"},
    {"model": "ViT-B-16", "samples_seen": 2e9, "unique_samples": 5e8, "strategy": "flip", "flip_mask_ratio": 0.6,
     "batch_size": 16384},
    {"model": "ViT-S-16", "samples_seen": 4e8, "unique_samples": 2e7, "strategy": "clip_aug", "data_pool": "cc3m"},
    {"model": "ViT-B-32", "samples_seen": 1e8, "unique_samples": 2.5e7, "quality_fraction": 0.25,
     "quality_filter": "basic"},
]


def test_each_term_is_one_record_with_bounds_range_and_citation():
    names = [p.name for t in terms.TERMS for p in t.params]
    assert len(names) == len(set(names)) == len(terms.TERM_PARAMS)
    assert len(terms.TERMS) >= 8
    for t in terms.TERMS:
        assert t.acts_on in ("data", "capacity") and len(t.citation) > 15 and t.statement
        for p in t.params:
            assert p.lower <= p.default <= p.upper, p
            assert p.lower <= p.assumed[0] < p.assumed[1] <= p.upper, p
            assert p.assumed[0] <= p.default <= p.assumed[1], p
    form = make_form("saturating", ("wit",), ("wit",))
    assert form.params[: len(CORE_SATURATING)] == CORE_SATURATING
    assert set(terms.TERM_PARAMS) <= set(form.params)
    # the earlier API still answers
    assert terms.DEFAULTS["quality_clean"] == terms.param("quality_clean").default
    assert terms.CITATIONS["gamma"] == terms.term_of("gamma").citation


def test_law_is_core_plus_sum_of_terms():
    """log D and log N are the core plus each term's effect on the rows it applies to; the error is the
    saturating core on them."""
    form = make_form("saturating", ("cc3m",))
    rng = np.random.default_rng(0)
    theta = np.asarray(form.default, dtype=float)
    theta += rng.uniform(-0.05, 0.05, len(theta)) * (np.asarray(form.upper) - np.asarray(form.lower)) * 0.1
    theta = np.clip(theta, form.lower, form.upper)
    x = build_features(ROWS)
    col = {n: theta[None, i : i + 1] for i, n in enumerate(form.params)}
    u = np.minimum(x.unique, x.seen)[None, :]
    d = {"u": u, "repeats": np.maximum(x.seen[None, :] / u - 1, 0)}
    def effect(t):  # a term acts on the rows it applies to
        return t.applies(x)[None, :] * t.effect(x, col, d)

    log_n = np.log(x.capacity / 10)[None, :] + sum(effect(t) for t in terms.TERMS if t.acts_on == "capacity")
    d["log_n"] = log_n
    log_d = np.log(u / 1e9) + sum(effect(t) for t in terms.TERMS if t.acts_on == "data")
    in_cc3m = (x.pool_key == "pool:cc3m")[None, :]
    log_d = log_d + in_cc3m * (col["pool:cc3m"] + col["pool_slope:cc3m"] * np.log(u / 1e9))
    p = dict(zip(form.params, theta))
    law = math.exp(p["log_E"]) + np.exp(p["log_A"] - p["alpha"] * log_n) + np.exp(p["log_B"] - p["beta"] * log_d)
    np.testing.assert_allclose(log_error(form, theta[None], x), np.log(law), rtol=1e-10)
    # every row here is touched by at least one term, and each term by at least one row
    assert all(t.applies(x).any() for t in terms.TERMS)


def test_every_stated_assumption_is_drawn_across_its_range():
    """The prior's draws sample each assumption over (nearly) its whole stated range: no zero-spread term."""
    m = load_model(None)
    ranges = m.assumed_ranges
    assert {"quality_clean", "aug_lambda", "conv_data", "conv_capacity", "slip_fade", "flip_onset", "pool:*"} <= set(ranges)
    for name, (lo, hi) in ranges.items():
        col = m.draws[:, m.form.index(name)]
        span = hi - lo
        assert col.min() >= lo - 1e-9 and col.max() <= hi + 1e-9, name
        assert col.min() < lo + 0.1 * span and col.max() > hi - 0.1 * span, (name, col.min(), col.max())
    for name in m.free:  # fitted parameters vary too (bootstrap)
        assert np.ptp(m.draws[:, m.form.index(name)]) > 0, name


def test_assumptions_widen_the_interval_of_the_rows_that_rest_on_them():
    m = load_model(None)
    x = m.features([{"model": "ViT-B-32", "samples_seen": 1e9, "unique_samples": 1e9},
                    {"model": "RN50", "samples_seen": 1e9, "unique_samples": 1e9}])
    p = m.predict(x)
    assert p.finding_terms[1] and {"conv_data", "conv_capacity"} <= set(p.finding_terms[1])
    assert "conv_data" not in p.finding_terms[0]
    # the parameter/assumption spread (the interval before the model discrepancy, which depends on the
    # distance from the fitted data, is added)
    width = np.ptp(np.percentile(p.draws, [2.5, 97.5], axis=0), axis=0)
    assert width[1] > width[0]
    # holding the conv assumptions at one value removes that spread
    draws = m.draws.copy()
    for n in ("conv_data", "conv_capacity"):
        draws[:, m.form.index(n)] = m.theta[m.form.index(n)]
    fixed = accuracy(m.form, log_error(m.form, draws, x))
    assert np.std(fixed[:, 1]) < 0.8 * np.std(p.draws[:, 1])


def test_rows_the_assumptions_cannot_separate_are_tied():
    """Two rows that differ only along stated assumptions (augmentation at 2 epochs: its one-epoch cost and
    its gain with repeats are both assumed) are tied with the best, not ranked with false confidence; a
    clearly worse row is not."""
    rows = [{"model": "ViT-B-32", "strategy": s, "samples_seen": 2e8, "unique_samples": 1e8, "gpu_hours": 1.0}
            for s in ("clip", "clip_aug")]
    rows.append({"model": "ViT-B-32", "strategy": "clip", "samples_seen": 1e7, "unique_samples": 1e7,
                 "gpu_hours": 0.1})
    r = rank_plan(rows)
    by = {(row["strategy"], row["samples_seen"]): row for row in r.rows}
    assert by[("clip", 2e8)]["tied_with_best"] and by[("clip_aug", 2e8)]["tied_with_best"]
    assert not by[("clip", 1e7)]["tied_with_best"]
    assert r.tied == 1 and any("cannot be told apart" in w for w in r.warnings)
    assert 0.05 < by[("clip_aug", 2e8)]["p_best"] < 0.95
    assert {a["name"] for a in r.assumptions} >= {"aug_lambda", "aug_one_epoch", "aug_repeats"}


@pytest.mark.parametrize("mask", [0.5, 0.75, 0.9])
def test_flip_mask_effect_is_concave(mask):
    m = load_model(None)
    psi = m.theta[m.form.index("flip_psi")]
    assert psi <= 0
    rows = [{"model": "ViT-B-16", "strategy": "flip", "flip_mask_ratio": r, "samples_seen": 2e9,
             "unique_samples": 2e9} for r in (mask - 0.1, mask, mask + 0.05)]
    f = m.predict(rows).top1
    # concave in the mask: the slope from the middle point onward is below the slope into it
    assert (f[2] - f[1]) / 0.05 <= (f[1] - f[0]) / 0.1 + 1e-9


def test_fit_draws_unidentified_terms_and_refits_the_rest():
    """A fit whose rows cannot identify a term (one epoch, full pool, CLIP only) draws it from its stated
    range in every bootstrap draw, and the fitted parameters move with it (each draw is one consistent law)."""
    from planner.scaling.fit import fit_rows

    rows = [{"model": m, "samples_seen": s, "unique_samples": s, "zeroshot_top1": a}
            for m, k in (("ViT-B-32", 0.0), ("ViT-B-16", 0.04), ("ViT-L-14", 0.07))
            for s, a in ((1e8, 0.30), (3e8, 0.38), (1e9, 0.46), (3e9, 0.53)) for a in [a + k]]
    fit = fit_rows(rows, form="saturating", n_boot=200, heldout=False, discrepancy=False)
    assert "log_Rstar" in fit.assumed and "quality_clean" in fit.assumed and "log_A" in fit.free
    for name, (lo, hi) in fit.assumed.items():
        col = fit.draws[:, fit.param_names.index(name)]
        assert np.ptp(col) > 0.5 * (hi - lo), name
    d = fit.to_dict()
    table = {a["name"]: a for a in d["assumptions"]}
    assert table["quality_clean"]["range"] == [0.3, 0.6] and not table["quality_clean"]["fitted"]


def test_text_length_changes_cost_not_capacity():
    """Capacity is the image tower's: 16 tokens instead of 77 make a run cheaper, not a worse learner (the
    seed paper varies the image tower with one text tower). ViT-Ti-16 at equal samples predicts within half a
    point at either length."""
    from budget.cost import sample_cost_of

    m = load_model(None)
    x = m.features([{"model": "ViT-Ti-16", "samples_seen": s, "unique_samples": s, "context_length": c}
                    for s in (5e7, 1e9) for c in (77, 16)])
    image = sample_cost_of({"model": "ViT-Ti-16", "strategy": "clip"}).image_gflops
    np.testing.assert_allclose(x.capacity, image)
    assert x.total_gflops[1] < 0.6 * x.total_gflops[0]
    p = m.predict(x)
    assert abs(p.top1[0] - p.top1[1]) < 0.005 and abs(p.top1[2] - p.top1[3]) < 0.005


def test_capacity_is_the_image_tower():
    """Two models with the same image tower and different text towers have the same capacity."""
    from planner.scaling.data import build_features

    x = build_features([{"model": m, "samples_seen": 1e9, "unique_samples": 1e9} for m in ("ViT-B-32", "ViT-L-16")])
    assert round(float(x.capacity[0]), 2) == 8.82 and round(float(x.capacity[1]), 2) == 123.11


def test_a_strategy_far_from_its_published_runs_gets_a_wider_discrepancy():
    """FLIP's published runs see 2.6e9–1.3e10 samples: a FLIP row at 1.4e7 samples is an extrapolation of the
    FLIP term, so its model discrepancy grows with the decades outside (CLIP at the same samples does not), up
    to :data:`planner.scaling.data.STRATEGY_DECADES_CAP` decades: the term is a bounded multiplier of the data,
    so 2 decades out (1.4e7) and 3 (1.4e6) widen a FLIP row alike."""
    from planner.scaling.data import STRATEGY_DECADES_CAP, extrapolation_parts

    m = load_model(None)
    x = m.features([{"model": "ViT-B-16", "samples_seen": s, "unique_samples": s, "strategy": st,
                     "data_pool": "laion"} for s in (1.4e7, 5e9, 1.4e6) for st in ("clip", "flip")])
    sd = m.discrepancy(x)
    assert sd[1] > 1.3 * sd[0] and sd[3] == pytest.approx(sd[2], rel=0.05), sd
    dc, _ = extrapolation_parts(x, m.info["discrepancy"]["ranges"])
    assert dc[5] - dc[4] == pytest.approx(dc[1] - dc[0]), dc  # FLIP adds the same beyond the cap
    assert 1.0 < dc[1] - dc[0] <= STRATEGY_DECADES_CAP + 0.3, dc  # the cap + FLIP's cheaper samples
