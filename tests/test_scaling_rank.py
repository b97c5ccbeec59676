"""rank_plan: the contract the plan command calls (PlanRow objects or dicts; prior or FIT.json)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from budget.errors import ConfigError
from planner.plan import PlanRow
from planner.scaling.rank import Ranking, rank_plan


def plan_row(model="ViT-B-32", seen=1e9, unique=1e9, strategy="clip", gpu_hours=10.0, q=1.0) -> PlanRow:
    return PlanRow(model=model, strategy=strategy, flip_mask_ratio=0.5 if strategy == "flip" else 0.0, image_size=224,
                   context_length=77, quality_fraction=q, pool_size=int(unique / q), unique_samples=int(unique),
                   samples_seen=int(seen), epochs=seen / unique, gflops_per_sample=14.78, total_gflops=14.78 * seen,
                   train_flops=3 * 14.78e9 * seen, gpu_hours=gpu_hours, params_m=151.3, limited_by="compute")


def test_rank_plan_rows_contract():
    rows = [plan_row(m, s, s, st) for m in ("ViT-B-32", "ViT-B-16", "RN50") for s in (1e8, 1e9, 3e9)
            for st in ("clip", "slip")]
    r = rank_plan(rows)
    assert isinstance(r, Ranking) and len(r.rows) == len(rows)
    assert sum(row["recommended"] for row in r.rows) == 1 and r.rows[0]["recommended"]
    preds = [row["predicted_top1"] for row in r.rows]
    assert preds == sorted(preds, reverse=True)
    assert sum(row["p_best"] for row in r.rows) == pytest.approx(1.0)
    for row in r.rows:
        assert 0 < row["ci_low"] <= row["predicted_top1"] <= row["ci_high"] < 1
        assert {"model", "samples_seen", "gpu_hours", "limited_by"} <= set(row)
    assert r.fit_name.startswith("built-in prior") and any(s.startswith("published:") for s in r.sources)


def test_ties_go_to_fewer_gpu_hours():
    r = rank_plan([plan_row(gpu_hours=5.0), plan_row(gpu_hours=2.0), plan_row(gpu_hours=9.0)])
    assert [row["gpu_hours"] for row in r.rows] == [2.0, 5.0, 9.0] and r.rows[0]["recommended"]


def test_extrapolation_and_finding_term_warnings():
    r = rank_plan([plan_row("ViT-L-14", 1e12, 1e12), plan_row("ViT-B-32", 1e9, 1e9)])
    assert r.extrapolation and r.rows[0]["extrapolation"]
    assert any("outside the fitted compute range" in w for w in r.warnings)
    r = rank_plan([plan_row("ViT-B-32", 1e9, 4e8, q=0.4)], data_pool="laion")
    assert any("stated assumptions" in w and "quality_clean" in w for w in r.warnings)
    a = {x["name"]: x for x in r.assumptions}
    assert a["quality_clean"]["range"] == [0.3, 0.6] and not a["quality_clean"]["fitted"]
    assert a["quality_clean"]["citation"] and a["quality_clean"]["value"] == pytest.approx(0.4)


def test_rank_with_a_fit_file_and_bad_fit_files(tmp_path):
    from planner.scaling.fit import fit_rows

    rows = [{"model": m, "samples_seen": s, "unique_samples": s, "zeroshot_top1": a}
            for m, k in (("ViT-B-32", 0.0), ("ViT-B-16", 0.05)) for s, a in ((1e8, 0.3), (1e9, 0.45), (1e10, 0.6))
            for a in [a + k]]
    path = tmp_path / "FIT.json"
    path.write_text(json.dumps(fit_rows(rows, form="cherti", n_boot=30).to_dict()))
    r = rank_plan([plan_row(seen=1e9), plan_row(seen=3e9)], fit=path)
    assert r.rows[0]["samples_seen"] == 3e9 and "FIT.json" in r.fit_name
    (tmp_path / "bad.json").write_text('{"hello": 1}')
    with pytest.raises(ConfigError, match="not a clipbudget FIT.json"):
        rank_plan([plan_row()], fit=tmp_path / "bad.json")
    with pytest.raises(ConfigError, match="no fit file"):
        rank_plan([plan_row()], fit=tmp_path / "missing.json")


def test_p_best_matches_draws_for_clear_winner():
    r = rank_plan([plan_row("ViT-L-14", 3e10, 2e9), plan_row("ViT-S-16", 1e7, 1e7)])
    assert r.rows[0]["model"] == "ViT-L-14" and r.rows[0]["p_best"] == pytest.approx(1.0)
    assert np.isclose(r.rows[1]["p_best"], 0.0)


def test_empty_plan():
    r = rank_plan([])
    assert r.rows == [] and not r.extrapolation


def test_compute_optimal_size_grows_with_budget_and_names_catalog_models():
    from planner.scaling.rank import compute_optimal

    opts = [compute_optimal(b, pool_size=3.4e9) for b in (1e9, 1e11, 1e14)]
    sizes = [o["gflops_per_sample"] for o in opts]
    assert sizes == sorted(sizes) and sizes[-1] > 10 * sizes[0]
    for o in opts:
        lo, hi = o["gflops_per_sample_95"]
        assert lo <= o["gflops_per_sample"] <= hi and o["samples_seen"] * o["gflops_per_sample"] == pytest.approx(o["budget_gflops"])
    names = {m["model"] for m in opts[-1]["nearest_models"]}
    assert names & {"ViT-H-14", "ViT-g-14", "ViT-L-14", "ViT-bigG-14"}, opts[-1]
    for o in opts:  # the cost adds a text tower to the capacity (the image tower)
        assert o["gflops_per_sample"] > o["image_gflops_per_sample"]


def _close_rows():
    # rows 8 and 12 of the 1e10-GFLOPs plan: different configurations (augmentation or not), 0.5 points apart,
    # which the parameter/assumption draws alone separate in every draw
    return [{"model": "ViT-B-32", "strategy": "clip", "samples_seen": 6.77e8, "unique_samples": 6.77e8,
             "quality_fraction": 0.2, "gpu_hours": 66.8},
            {"model": "ViT-B-32", "strategy": "clip_aug", "samples_seen": 6.77e8, "unique_samples": 6.77e8,
             "quality_fraction": 0.2, "gpu_hours": 66.8}]


def test_p_best_and_ties_include_the_model_discrepancy():
    from planner.scaling import terms
    from planner.scaling.forms import accuracy, log_error
    from planner.scaling.predict import load_model

    model = load_model(None)
    x = model.features([dict(r, data_pool=model.default_pool) for r in _close_rows()])
    p = model.predict(x)
    le = log_error(model.form, model.theta[None, :], x)[0]
    # the per-configuration part of the discrepancy (smallest: at the top of the shared share's range), in points
    per_config = np.sqrt(1 - terms.DISCREPANCY_SHARED.assumed[1]) * model.discrepancy(x)
    per_config_acc = np.abs(accuracy(model.form, le + per_config) - accuracy(model.form, le))
    gap = abs(p.top1[0] - p.top1[1])
    assert gap < 0.5 * np.sqrt(2) * per_config_acc.min(), (gap, per_config_acc)  # half the difference's sd
    # the parameter/assumption draws alone separate them far more sharply than the discrepancy allows
    only_params = float((p.draws[:, 0] > p.draws[:, 1]).mean())
    r = rank_plan(_close_rows())
    top = r.rows[0]
    assert only_params > 0.95 and top["p_best"] < 0.9, (top["p_best"], only_params)
    assert all(row["tied_with_best"] for row in r.rows) and r.tied == 1
    assert "discrepancy_shared" in [a["name"] for a in r.assumptions]
    # deterministic, and a row's discrepancy draws do not depend on which other rows are ranked
    assert [row["p_best"] for row in rank_plan(_close_rows()).rows] == [row["p_best"] for row in r.rows]
    alone = model.predict(x.take([1]))
    np.testing.assert_array_equal(alone.ranked[:, 0], p.ranked[:, 1])
    # marginally the discrepancy is the intervals' N(0, sigma^2): the shared part moves both rows alike
    d = model.discrepancy_draws(x, 4000)
    assert np.allclose(d.std(axis=0) / model.discrepancy(x), 1.0, atol=0.05)
    corr = np.corrcoef(d[:, 0], d[:, 1])[0, 1]
    assert terms.DISCREPANCY_SHARED.assumed[0] - 0.05 < corr < terms.DISCREPANCY_SHARED.assumed[1] + 0.05
