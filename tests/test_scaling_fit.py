"""The fitter (planner.scaling.fit/bootstrap/data): recovery of known parameters at the nominal rate,
fallbacks on thin data, frontier selection, input errors, outlier sensitivity. Real numpy/scipy; data are
generated from the forms themselves (that is the point of a recovery test)."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from budget.errors import ConfigError
from planner.scaling.data import build_features, select_frontier
from planner.scaling.fit import fit_rows
from planner.scaling.forms import accuracy, log_error, make_form

TRUE = {"log_E": math.log(0.1), "log_A": math.log(0.15), "alpha": 0.4, "log_B": math.log(0.08), "beta": 0.35,
        "log_Rstar": math.log(15.0)}
MODELS = ("ViT-S-16", "ViT-B-32", "ViT-B-16", "ViT-L-16")


def synthetic(rng, sigma=0.02, form_name="saturating"):
    form = make_form(form_name)
    rows = [{"model": m, "samples_seen": s, "unique_samples": s / r}
            for m in MODELS for s in (3e7, 1e8, 3e8, 1e9, 3e9) for r in (1, 4, 32)]
    x = build_features(rows)
    theta = np.asarray([TRUE.get(n, d) for n, d in zip(form.params, form.default)])
    theta[form.index("gamma")] = 0.0
    theta[form.index("rep_rho")] = 0.3  # inside its bounds: the half-life grows with unique data
    log_err = log_error(form, theta[None], x)[0] + rng.normal(0, sigma, len(rows))
    for r, le in zip(rows, log_err):
        r["zeroshot_top1"] = float(accuracy(form, np.asarray(le)))
    return rows, theta


def test_recovers_known_parameters_at_nominal_rate():
    rng = np.random.default_rng(1)
    hits = total = 0
    for rep in range(20):
        rows, theta = synthetic(rng)
        fit = fit_rows(rows, form="saturating", n_boot=200, seed=rep, fixed={"gamma": 0.0}, assumed={"gamma": (0.0, 0.0)}, heldout=False)
        ints = fit.intervals()
        for name in TRUE:
            lo, hi = ints[name]
            hits += lo <= theta[fit.param_names.index(name)] <= hi
            total += 1
    assert total == 20 * len(TRUE)
    assert hits / total >= 0.8, f"95% intervals covered the truth in {hits}/{total} cases"


def test_point_fit_close_to_truth_without_noise():
    rows, _theta = synthetic(np.random.default_rng(0), sigma=1e-4)
    fit = fit_rows(rows, form="saturating", n_boot=20, fixed={"gamma": 0.0}, assumed={"gamma": (0.0, 0.0)}, heldout=False)
    for name, value in TRUE.items():
        assert fit.params[name] == pytest.approx(value, abs=0.05), name


def test_auto_prefers_saturating_on_saturating_data_and_reports_both():
    rows, _ = synthetic(np.random.default_rng(2), sigma=0.01)
    fit = fit_rows(rows, n_boot=50, fixed={"gamma": 0.0}, assumed={"gamma": (0.0, 0.0)})
    assert fit.form == "saturating"
    assert set(fit.candidates) == {"saturating", "cherti"}
    for c in fit.candidates.values():
        assert {"leave_one_model_out", "low_to_high_compute"} <= set(c["heldout"])
        assert c["train"]["rmse_points"] >= 0
    sat, che = (fit.candidates[k]["heldout"]["low_to_high_compute"]["rmse_points"] for k in ("saturating", "cherti"))
    assert sat < che


def test_one_model_only_falls_back_to_cherti_and_says_so():
    rows = [{"model": "ViT-B-32", "samples_seen": s, "unique_samples": s, "zeroshot_top1": a}
            for s, a in ((1e8, 0.3), (3e8, 0.4), (1e9, 0.5), (3e9, 0.56))]
    fit = fit_rows(rows, form="saturating", n_boot=50)
    assert fit.form == "cherti"
    assert any("one model size only" in w for w in fit.warnings)
    assert any("falling back" in w for w in fit.warnings)


def test_too_few_points_is_a_clear_error():
    rows = [{"model": "ViT-B-32", "samples_seen": 1e8, "unique_samples": 1e8, "zeroshot_top1": 0.3}]
    with pytest.raises(ConfigError, match="cannot fit"):
        fit_rows(rows, n_boot=20)


@pytest.mark.parametrize("bad, match", [
    ({"zeroshot_top1": 63.2}, "fraction"),
    ({"zeroshot_top1": "high"}, "not a number"),
    ({"samples_seen": None}, "samples_seen"),
    ({"model": "ViT-B-33"}, "unknown model"),
    ({"quality_fraction": 1.5}, "quality_fraction"),
    ({"strategy": "simclr"}, "unknown strategy"),
])
def test_bad_rows_raise_config_error(bad, match):
    row = {"model": "ViT-B-32", "samples_seen": 1e8, "unique_samples": 1e8, "zeroshot_top1": 0.3, **bad}
    with pytest.raises(ConfigError, match=match):
        build_features([row], metric="zeroshot_top1")


def test_frontier_selection():
    rows = [{"model": "ViT-B-32", "samples_seen": s, "unique_samples": s, "zeroshot_top1": a}
            for s, a in ((1e7, 0.10), (1e8, 0.30), (1.1e8, 0.20), (1e9, 0.35), (1e10, 0.60))]
    x = build_features(rows, metric="zeroshot_top1")
    assert select_frontier(x, "all").tolist() == [0, 1, 2, 3, 4]
    assert select_frontier(x, "pareto").tolist() == [0, 1, 3, 4]  # row 2 is dominated by row 1
    assert select_frontier(x, "hull").tolist() == [0, 1, 4]  # row 3 lies under the hull
    with pytest.raises(ConfigError, match="frontier"):
        select_frontier(x, "top")


def test_outlier_sensitivity_flags_an_injected_outlier():
    rows, _ = synthetic(np.random.default_rng(3), sigma=0.005)
    rows[7]["zeroshot_top1"] = 0.02
    fit = fit_rows(rows, form="saturating", n_boot=20, fixed={"gamma": 0.0}, assumed={"gamma": (0.0, 0.0)}, heldout=False)
    s = fit.sensitivity
    assert 7 in s["dropped_rows"] and len(s["prediction_change_points"]) == len(s["dropped_rows"])
    assert s["max_prediction_change_points"] > 0


def test_fit_result_json_has_everything():
    rows, _ = synthetic(np.random.default_rng(4))
    d = fit_rows(rows, form="cherti", n_boot=30).to_dict()
    for key in ("form", "params", "intervals_95", "draws", "data_hash", "clipbudget_version", "compute_range_gflops",
                "sources", "heldout", "train_error", "covariance_free", "sensitivity"):
        assert key in d, key
    assert len(d["draws"]) == 30 and d["sources"] == ["own"]


def test_prediction_path_imports_no_heavy_modules():
    code = ("import sys; from planner.scaling.predict import predict_config; "
            "predict_config(model='ViT-B-32', samples_seen=1e9, unique_samples=1e9); "
            "from planner.scaling.rank import rank_plan; "
            "rank_plan([{'model': 'ViT-B-32', 'samples_seen': 1e9, 'unique_samples': 1e9}]); "
            "print(sorted(m for m in ('torch', 'scipy', 'pandas', 'pyarrow', 'open_clip') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_discrepancy_is_the_stated_prior_without_calibration_points_and_follows_the_data_with_many():
    """The discrepancy is a MAP estimate: no held-out residuals leave the stated prior; many residuals far
    beyond the fit's spread (held out at 0 decades) raise the in-data sigma above it, and residuals within
    it lower it; points a decade out of the data calibrate the per-decade terms."""
    from planner.scaling.discrepancy import DISCREPANCY_PRIOR, _map_discrepancy

    zero = np.zeros(0)
    s = _map_discrepancy(zero, zero, zero, zero)
    np.testing.assert_allclose(s, DISCREPANCY_PRIOR, rtol=1e-3)
    rng = np.random.default_rng(0)
    n = 400
    big = _map_discrepancy(rng.normal(0, 0.3, n), np.full(n, 0.01), np.zeros(n), np.zeros(n))
    small = _map_discrepancy(rng.normal(0, 0.02, n), np.full(n, 0.01), np.zeros(n), np.zeros(n))
    assert big[0] == pytest.approx(0.3, rel=0.15) and small[0] < 0.05
    out = _map_discrepancy(rng.normal(0, 0.5, n), np.full(n, 0.01), np.zeros(n), np.ones(n))
    assert out[2] > 0.35 and out[1] == pytest.approx(DISCREPANCY_PRIOR[1], rel=0.2)
