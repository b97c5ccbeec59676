"""read_table: CSV, parquet, a results store and a sweep folder; clear errors for everything else."""

from __future__ import annotations

import _results_fixtures as fx
import pandas as pd
import pytest

from results.errors import ResultsError
from results.store import ResultStore
from results.tables import read_table


def test_csv_parquet_store_and_sweep_folder(tmp_path):
    df = pd.DataFrame({"model": ["ViT-B-32", "RN50"], "samples_seen": [2.5e9, 1.28e10],
                       "unique_samples": [4e8, 2e9], "zeroshot_top1": [0.5712, 0.63]})  # fmt: skip
    df.to_csv(tmp_path / "t.csv", index=False)
    df.to_csv(tmp_path / "t.tsv", index=False, sep="\t")
    df.to_csv(tmp_path / "t.csv.gz", index=False)
    df.to_parquet(tmp_path / "t.parquet")
    for name in ("t.csv", "t.tsv", "t.csv.gz", "t.parquet"):
        out = read_table(tmp_path / name, required=("model", "zeroshot_top1"))
        pd.testing.assert_frame_equal(out, df, check_dtype=False)

    sweep = tmp_path / "sweep"
    store = ResultStore(sweep / "results")
    store.write(fx.make_row("a", "failed"))
    store.write(fx.make_row("a", "completed"))
    store.write(fx.make_row("b", "completed"))
    assert list(read_table(sweep / "results")["run_id"]) == ["a", "b"]
    assert list(read_table(sweep)["run_id"]) == ["a", "b"]  # a sweep folder reads its results/
    assert len(read_table(sweep, latest=False)) == 3


def test_errors_are_clear(tmp_path):
    with pytest.raises(ResultsError, match="no results table at .*missing.csv"):
        read_table(tmp_path / "missing.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ResultsError, match="empty.csv is empty"):
        read_table(tmp_path / "empty.csv")
    (tmp_path / "header.csv").write_text("model,zeroshot_top1\n")
    with pytest.raises(ResultsError, match="header.csv has no rows"):
        read_table(tmp_path / "header.csv")
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(ResultsError, match="cannot read results table .*bad.parquet"):
        read_table(tmp_path / "bad.parquet")
    (tmp_path / "t.xlsx").write_text("x")
    with pytest.raises(ResultsError, match=r"unknown results table type 't.xlsx': use .csv"):
        read_table(tmp_path / "t.xlsx")
    (tmp_path / "empty_store").mkdir()
    with pytest.raises(ResultsError, match="holds no result rows"):
        read_table(tmp_path / "empty_store")
    (tmp_path / "ok.csv").write_text("model,samples_seen\nRN50,10\n")
    with pytest.raises(ResultsError, match=r"lacks column\(s\) zeroshot_top1 \(has: model, samples_seen\)"):
        read_table(tmp_path / "ok.csv", required=("model", "zeroshot_top1"))


def test_store_with_only_unreadable_files_says_so(tmp_path):
    (tmp_path / "x.completed.12345678.parquet").write_text("junk")
    with pytest.raises(ResultsError, match=r"holds no result rows \(1 unreadable file\(s\) skipped\)"):
        read_table(tmp_path)
