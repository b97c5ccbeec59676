"""``clipbudget fit`` and ``clipbudget predict`` end to end (in-process main(), real files)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

from planner.cli.main import main
from planner.prior import published_rows

COLS = ("model", "samples_seen", "unique_samples", "zeroshot_top1")


def write_csv(path, rows, cols=COLS):
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return path


@pytest.fixture()
def cherti_csv(tmp_path):
    rows = [r for r in published_rows() if r["source"] == "published:cherti2023"]
    assert len(rows) == 29
    return write_csv(tmp_path / "cherti.csv", rows)


def test_fit_no_prior_writes_fit_json_and_predict_reads_it(cherti_csv, tmp_path, capsys):
    out = tmp_path / "FIT.json"
    assert main(["fit", str(cherti_csv), "--out", str(out), "--no-prior", "--bootstrap", "100"]) == 0
    text = capsys.readouterr().out
    assert "form fitted to 29 points" in text and "leave-one-model-out" in text and "95% interval" in text
    d = json.loads(out.read_text())
    assert d["form"] in ("saturating", "cherti") and len(d["draws"]) == 100 and d["sources"] == ["own"]
    assert d["prior_included"] is False and len(d["data_hash"]) == 16 and d["clipbudget_version"]
    assert main(["predict", "--fit", str(out), "--model", "ViT-B-16", "--samples-seen", "1.28e10",
                 "--unique-samples", "4e8", "--format", "json"]) == 0
    p = json.loads(capsys.readouterr().out)
    assert {"predicted_top1", "ci_low", "ci_high", "form", "extrapolation", "sources"} <= set(p)
    assert abs(p["predicted_top1"] - 0.67) < 0.03 and p["ci_low"] <= p["predicted_top1"] <= p["ci_high"]
    assert p["extrapolation"] is False


def test_fit_with_prior_and_parquet_input(tmp_path, capsys):
    import pandas as pd

    df = pd.DataFrame({"model": ["ViT-B-32"] * 3 + ["ViT-B-16"] * 3, "samples_seen": [1e7, 3e7, 1e8] * 2,
                       "unique_samples": [1e7, 3e7, 1e8] * 2, "zeroshot_top1": [0.08, 0.15, 0.24, 0.1, 0.18, 0.28],
                       "strategy": ["clip"] * 6, "status": ["completed"] * 6})
    df.to_parquet(tmp_path / "own.parquet")
    out = tmp_path / "FIT.json"
    assert main(["fit", str(tmp_path / "own.parquet"), "--out", str(out), "--form", "cherti", "--bootstrap", "20"]) == 0
    d = json.loads(out.read_text())
    assert d["prior_included"] and "own" in d["sources"] and "published:cherti2023" in d["sources"]
    assert d["n_own_rows"] == 6 and d["n_points"] > 50


def test_predict_prior_json_keys(capsys):
    assert main(["predict", "--model", "ViT-B-32", "--samples-seen", "1.36e9", "--unique-samples", "1.36e9",
                 "--quality-fraction", "0.4", "--data-pool", "webli", "--format", "json"]) == 0
    p = json.loads(capsys.readouterr().out)
    assert p["form"] == "saturating" and "quality_clean" in p["finding_terms"] and "pool:webli" in p["finding_terms"]
    assert any(s.startswith("published:") for s in p["sources"])
    assert main(["predict", "--model", "ViT-B-16", "--samples-seen", "3e9", "--unique-samples", "3e9",
                 "--strategy", "flip", "--flip-mask", "0.75"]) == 0
    assert "predicted zero-shot top-1" in capsys.readouterr().out


@pytest.mark.parametrize("rows, cols, match", [
    ([{"model": "ViT-B-32", "samples_seen": 1e9, "unique_samples": 1e9}], COLS[:3], "zeroshot_top1"),
    ([{"model": "ViT-B-32", "samples_seen": "lots", "unique_samples": 1e9, "zeroshot_top1": 0.5}], COLS, "not a number"),
    ([{"model": "ViT-B-32", "samples_seen": 1e9, "unique_samples": 1e9, "zeroshot_top1": 55.0}], COLS, "fraction"),
    ([{"model": "ViT-Q-99", "samples_seen": 1e9, "unique_samples": 1e9, "zeroshot_top1": 0.5}], COLS, "unknown model"),
])
def test_fit_bad_input_is_one_line_exit_2(tmp_path, capsys, rows, cols, match):
    path = write_csv(tmp_path / "bad.csv", rows, cols)
    assert main(["fit", str(path), "--out", str(tmp_path / "F.json"), "--no-prior", "--bootstrap", "20"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and match in err, err


def test_fit_unreadable_and_predict_bad_fit(tmp_path, capsys):
    assert main(["fit", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "F.json")]) == 2
    assert "no results table" in capsys.readouterr().err
    bad = tmp_path / "F.json"
    bad.write_text("[1, 2]")
    assert main(["predict", "--fit", str(bad), "--model", "ViT-B-32", "--samples-seen", "1e9",
                 "--unique-samples", "1e9"]) == 2
    assert "not a clipbudget FIT.json" in capsys.readouterr().err
    assert main(["predict", "--model", "ViT-B-32", "--samples-seen", "1e9", "--unique-samples", "1e9",
                 "--quality-fraction", "1.5"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_predict_cli_imports_nothing_heavy():
    code = ("import sys; from planner.cli.main import main; "
            "rc = main(['predict', '--model', 'ViT-B-32', '--samples-seen', '1e9', '--unique-samples', '1e9', "
            "'--format', 'json']); "
            "sys.stderr.write(repr(sorted(m for m in ('torch', 'scipy', 'pandas', 'pyarrow', 'open_clip') "
            "if m in sys.modules)))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(res.stdout)["predicted_top1"] > 0.3
    assert res.stderr.strip().endswith("[]"), res.stderr


def test_fit_reads_a_results_store_folder_and_skips_failed_runs(tmp_path, capsys):
    from results.store import ResultStore

    store = ResultStore(tmp_path / "results")
    for i, (m, s, a) in enumerate([("ViT-B-32", 1e7, 0.08), ("ViT-B-32", 3e7, 0.15), ("ViT-B-32", 1e8, 0.24),
                                   ("ViT-B-16", 1e7, 0.10), ("ViT-B-16", 3e7, 0.18), ("ViT-B-16", 1e8, 0.28)]):
        store.write({"run_id": f"r{i}", "model": m, "strategy": "clip", "samples_seen": int(s),
                     "unique_samples": int(s), "zeroshot_top1": a, "status": "completed", "source": "own"})
    store.write({"run_id": "r9", "model": "ViT-B-32", "strategy": "clip", "samples_seen": 10**9,
                 "unique_samples": 10**9, "status": "failed", "error": "OOM"})
    out = tmp_path / "FIT.json"
    assert main(["fit", str(tmp_path), "--out", str(out), "--no-prior", "--form", "cherti", "--bootstrap", "20"]) == 0
    d = json.loads(out.read_text())
    assert d["n_points"] == 6 and d["form"] == "cherti" and d["params"]["alpha"] < 0


def _synthetic_study(tmp_path, eval_dataset="fashion-mnist"):
    """A study on a non-ImageNet evaluation set generated from known parameters (saturating law on
    -log top-1, 0.3-point noise): three models x five sample counts, one epoch."""
    import math

    import numpy as np

    from planner.scaling.data import build_features
    from planner.scaling.forms import accuracy, log_error, make_form

    form = make_form("saturating")
    theta = np.asarray(form.default, dtype=float)
    truth = {"log_E": math.log(0.08), "log_A": math.log(0.3), "alpha": 0.5, "log_B": math.log(0.15), "beta": 0.35,
             "gamma": 0.0}
    for k, v in truth.items():
        theta[form.index(k)] = v
    rng = np.random.default_rng(3)
    rows = [{"model": m, "samples_seen": s, "unique_samples": s, "eval_dataset": eval_dataset, "strategy": "clip"}
            for m in ("ViT-S-32", "ViT-B-32", "ViT-B-16") for s in (1e6, 3e6, 1e7, 3e7, 1e8)]
    acc = accuracy(form, log_error(form, theta[None], build_features(rows))[0])
    for r, a in zip(rows, acc):
        r["zeroshot_top1"] = float(a + rng.normal(0, 0.003))
    far = [dict(r, samples_seen=3e8, unique_samples=3e8) for r in rows if r["samples_seen"] == 1e8]
    far_acc = accuracy(form, log_error(form, theta[None], build_features(far))[0])
    cols = COLS + ("eval_dataset", "strategy")
    return write_csv(tmp_path / "study.csv", rows, cols), rows, far, far_acc


@pytest.mark.parametrize("prior", [True, False])
def test_other_eval_set_is_never_pooled_with_imagenet(tmp_path, capsys, prior):
    """Issue 11 check: in-sample error <= 2 points, 3x extrapolation <= 3 points, with and without the prior;
    with it, the ImageNet rows are refused (said why), never pooled."""
    path, rows, far, far_acc = _synthetic_study(tmp_path)
    out = tmp_path / "FIT.json"
    argv = ["fit", str(path), "--out", str(out), "--bootstrap", "50", "--form", "saturating"]
    assert main(argv + ([] if prior else ["--no-prior"])) == 0
    captured = capsys.readouterr()
    d = json.loads(out.read_text())
    assert d["prior_included"] is False and d["sources"] == ["own"] and d["n_points"] == len(rows)
    if prior:
        assert "never pooled" in captured.err and "fashion-mnist" in d["prior_refused"]
    assert d["train_error"]["mae_points"] <= 2.0
    from planner.scaling.predict import ScalingModel

    model = ScalingModel.from_dict(d, "study")
    p = model.predict(far)
    assert max(abs(p.top1 - far_acc)) * 100 <= 3.0, (p.top1, far_acc)
    # plan --fit ranks in the study's own metric
    from planner.scaling.rank import rank_plan

    r = rank_plan([dict(f, gpu_hours=1.0) for f in far], fit=out)
    assert r.rows[0]["predicted_top1"] == pytest.approx(max(p.top1))


def test_one_model_one_budget_fit_says_what_is_missing(tmp_path, capsys):
    path = write_csv(tmp_path / "tiny.csv", [{"model": "ViT-B-32", "samples_seen": 6e5, "unique_samples": 6e4,
                                              "zeroshot_top1": 0.41, "eval_dataset": "fashion-mnist"}],
                     COLS + ("eval_dataset",))
    assert main(["fit", str(path), "--out", str(tmp_path / "F.json"), "--bootstrap", "20"]) == 2
    err = capsys.readouterr().err
    assert "run next" in err and "sample counts" in err and "second model size" in err, err


def test_predict_lists_its_assumptions_and_warns_beyond_published_masks(capsys):
    assert main(["predict", "--model", "ViT-B-16", "--samples-seen", "3e9", "--unique-samples", "3e9",
                 "--strategy", "flip", "--flip-mask", "0.9", "--data-pool", "laion", "--format", "json"]) == 0
    p = json.loads(capsys.readouterr().out)
    assert any("beyond the largest published mask" in w for w in p["warnings"])
    names = {a["name"] for a in p["assumptions"]}
    assert {"gamma_small", "flip_onset"} <= names
    assert all(a["range"] and a["citation"] and "value" in a for a in p["assumptions"])
    assert p["data_pool"] == "laion" and p["metric"] == "zeroshot_top1"
    assert main(["predict", "--model", "RN50", "--samples-seen", "3e8", "--unique-samples", "3e8"]) == 0
    text = capsys.readouterr().out
    assert "stated assumptions" in text and "conv_data" in text


def test_plan_lists_assumptions_ties_pool_and_the_compute_optimal_size(capsys):
    assert main(["plan", "--gflops", "1e10", "--top", "5"]) == 0
    out = capsys.readouterr().out
    assert "stated assumptions behind these predictions" in out and "gamma_small = " in out
    assert "compute-optimal by the fit" in out and "data pool commonpool" in out
    assert main(["plan", "--gflops", "1e10", "--data-pool", "laion", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["data_pool"] for r in rows} == {"laion"} and rows[0]["recommended"] and rows[0]["tied_with_best"]
    assert all(isinstance(r["tied_with_best"], bool) for r in rows)
    assert sum(r["tied_with_best"] for r in rows) >= 1
