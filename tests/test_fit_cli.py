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
                 "--quality-fraction", "0.4", "--format", "json"]) == 0
    p = json.loads(capsys.readouterr().out)
    assert p["form"] == "saturating" and "quality_clean" in p["finding_terms"]
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
