"""The parquet results store: atomic writes, many concurrent writers, killed writers, old files, dedup.

Everything here is real: real processes writing real parquet files into one folder. Nothing is mocked;
the only test-only device is ``results.store._test_hooks`` to stop a writer between fsync and rename.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import signal
import time
from pathlib import Path

import _results_fixtures as fx
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from results.errors import ResultsError, SchemaError
from results.schema import COLUMNS
from results.store import ResultStore, is_result_file, parse_name

N_WRITERS = 24
ROWS_EACH = 2


def _ctx():
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["pandas", "pyarrow.parquet", "results.store", "_results_fixtures"])  # fork, not re-import
    return ctx


def test_write_is_one_named_file_and_reads_back(tmp_path):
    store = ResultStore(tmp_path / "results")
    path = store.write(fx.make_row("abc", zeroshot_top1=0.5, slurm_job_id=123))
    assert path.parent == store.root and is_result_file(path.name)
    assert parse_name(path.name) == ("abc", "completed")
    assert [p.name for p in store.root.iterdir()] == [path.name]  # no temp file left behind
    df = store.read()
    assert list(df.columns) == list(COLUMNS)
    assert df.loc[0, "zeroshot_top1"] == 0.5 and df.loc[0, "slurm_job_id"] == "123"
    assert df.loc[0, "schema_version"] == 1 and df.loc[0, "source"] == "own"
    assert store.rows_for("abc")[0]["hostname"] == "node1"
    assert store.rows_for("nope") == []


def test_invalid_row_writes_nothing(tmp_path):
    store = ResultStore(tmp_path)
    with pytest.raises(SchemaError, match="zeroshot_top1 52.0 is outside"):
        store.write(fx.make_row("abc", zeroshot_top1=52.0))
    assert list(tmp_path.iterdir()) == []


def test_missing_folder_reads_empty_with_schema_columns(tmp_path):
    store = ResultStore(tmp_path / "not-yet")
    df = store.read()
    assert len(df) == 0 and list(df.columns) == list(COLUMNS)
    assert store.completed_run_ids() == set()


def test_store_root_that_is_a_file_is_an_error(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ResultsError, match="is a file"):
        ResultStore(f).read()
    with pytest.raises(ResultsError, match="cannot write"):
        ResultStore(f).write(fx.make_row("a"))


def test_latest_dedup_completed_beats_failed_then_newest(tmp_path):
    store = ResultStore(tmp_path)
    # run a: failed (newer) and completed (older): the completed one wins
    store.write(fx.make_row("a", "completed", finished_at="2026-01-01T00:00:00Z", zeroshot_top1=0.1))
    store.write(fx.make_row("a", "failed", finished_at="2026-02-01T00:00:00Z"))
    # run b: two completed: the newest wins, whatever the file order
    store.write(fx.make_row("b", "completed", finished_at="2026-03-01T00:00:00Z", zeroshot_top1=0.3))
    store.write(fx.make_row("b", "completed", finished_at="2026-01-01T00:00:00Z", zeroshot_top1=0.2))
    # run c: failed twice: the newest failure is kept
    store.write(fx.make_row("c", "failed", finished_at="2026-01-01T00:00:00Z", error="first"))
    store.write(fx.make_row("c", "failed", finished_at="2026-01-02T00:00:00Z", error="second"))
    # run d: one completed row without finished_at still counts
    store.write(fx.make_row("d", "completed", finished_at=None, zeroshot_top1=0.4))
    df = store.read().set_index("run_id")
    assert sorted(df.index) == ["a", "b", "c", "d"]
    assert df.loc["a", "status"] == "completed" and df.loc["a", "zeroshot_top1"] == 0.1
    assert df.loc["b", "zeroshot_top1"] == 0.3
    assert df.loc["c", "error"] == "second"
    assert len(store.read(latest=False)) == 7
    assert store.completed_run_ids() == {"a", "b", "d"}
    assert store.run_ids()["a"] == {"completed", "failed"}
    assert [r["error"] for r in store.rows_for("c")] == ["first", "second"]


def test_unreadable_files_are_skipped_counted_and_logged(tmp_path, caplog):
    store = ResultStore(tmp_path)
    store.write(fx.make_row("good"))
    good = next(tmp_path.iterdir()).read_bytes()
    (tmp_path / "torn.completed.deadbeef.parquet").write_bytes(good[: len(good) // 2])  # a torn file
    (tmp_path / "junk.parquet").write_text("not parquet")
    (tmp_path / ".hidden.parquet").write_text("ignored: hidden")
    (tmp_path / ".x.parquet.123.tmp").write_text("ignored: temp file")
    (tmp_path / "notes.txt").write_text("ignored: not parquet")
    with caplog.at_level(logging.WARNING, logger="results.store"):
        df = store.read()
    assert list(df["run_id"]) == ["good"]
    assert sorted(p.name for p, _ in store.skipped) == ["junk.parquet", "torn.completed.deadbeef.parquet"]
    assert sum("skipping unreadable result file" in r.message for r in caplog.records) == 2


def test_old_schema_file_without_new_columns_still_reads(tmp_path):
    """A file written before the optional columns existed (and with an int where float is now expected)."""
    old = pa.table(
        {
            "run_id": ["old1"],
            "model": ["RN50"],
            "strategy": ["clip"],
            "samples_seen": pa.array([1000], pa.int64()),
            "zeroshot_top1": pa.array([0.2], pa.float32()),
            "wall_seconds": pa.array([12], pa.int32()),
            "status": ["completed"],
            "finished_at": ["2025-06-01T00:00:00+00:00"],
        }
    )
    pq.write_table(old, tmp_path / "old1.completed.00000000.parquet")
    store = ResultStore(tmp_path)
    store.write(fx.make_row("new1", retrieval_i2t_r5=0.5, config_json="{}"))
    df = store.read().set_index("run_id")
    assert store.skipped == []
    assert df.loc["old1", "wall_seconds"] == 12.0 and df.loc["old1", "zeroshot_top1"] == pytest.approx(0.2)
    assert pd.isna(df.loc["old1", "config_json"]) and df.loc["new1", "retrieval_i2t_r5"] == 0.5
    assert str(df["wall_seconds"].dtype) == "float64"


def test_newer_schema_extra_columns_are_kept(tmp_path):
    store = ResultStore(tmp_path)
    store.write(fx.make_row("a"))
    future = pa.table({"run_id": ["b"], "model": ["RN50"], "strategy": ["clip"], "samples_seen": [5],
                       "status": ["completed"], "imagenet_v2_top1": [0.1]})  # fmt: skip
    pq.write_table(future, tmp_path / "b.completed.11111111.parquet")
    df = store.read().set_index("run_id")
    assert list(df.columns)[-1] == "imagenet_v2_top1" and df.loc["b", "imagenet_v2_top1"] == 0.1


def test_many_concurrent_writers_lose_and_tear_nothing(tmp_path):
    """24 processes write 2 rows each into one folder at once while another process keeps reading."""
    ctx = _ctx()
    root = str(tmp_path / "results")
    barrier = ctx.Barrier(N_WRITERS)
    stop, out = str(tmp_path / "stop"), str(tmp_path / "reader.txt")
    reader = ctx.Process(target=fx.reader_loop, args=(root, stop, out))
    reader.start()
    writers = [ctx.Process(target=fx.concurrent_writer, args=(root, w, ROWS_EACH, barrier)) for w in range(N_WRITERS)]
    for p in writers:
        p.start()
    for p in writers:
        p.join(timeout=180)
    Path(stop).touch()
    reader.join(timeout=60)
    assert [p.exitcode for p in writers] == [0] * N_WRITERS
    assert reader.exitcode == 0

    store = ResultStore(root)
    df = store.read(latest=False)
    assert store.skipped == []
    expected = {f"w{w:02d}-r{k}" for w in range(N_WRITERS) for k in range(ROWS_EACH)}
    assert len(df) == len(expected) == N_WRITERS * ROWS_EACH
    assert set(df["run_id"]) == expected
    for rid, steps, cfg in zip(df["run_id"], df["steps"], df["config_json"]):
        assert cfg == fx.payload(rid, int(steps)), f"row {rid} is torn"
    assert not [n for n in os.listdir(root) if n.endswith(".tmp")]
    reads, skipped, torn, max_seen = map(int, Path(out).read_text().split())
    assert skipped == 0 and torn == 0  # a reader mid-write never sees a partial file
    assert reads >= 1 and max_seen == len(expected)  # its last read came after the writers


def test_writer_killed_between_write_and_rename_leaves_readable_store(tmp_path):
    ctx = _ctx()
    store = ResultStore(tmp_path / "results")
    store.write(fx.make_row("before"))
    marker = tmp_path / "marker"
    p = ctx.Process(target=fx.killed_writer, args=(str(store.root), str(marker)))
    p.start()
    deadline = time.monotonic() + 120
    while not marker.exists() and time.monotonic() < deadline and p.is_alive():
        time.sleep(0.05)
    assert marker.exists(), "the writer never reached the rename"
    os.kill(p.pid, signal.SIGKILL)
    p.join(timeout=30)
    assert p.exitcode == -signal.SIGKILL
    tmp = Path(marker.read_text())
    assert tmp.exists() and tmp.stat().st_size > 0  # the complete temp file is there …
    df = store.read()
    assert list(df["run_id"]) == ["before"] and store.skipped == []  # … and ignored
    assert store.clean_temp(older_than_s=3600) == 0  # young temp files are kept (a writer may be alive)
    assert store.clean_temp(older_than_s=0) == 1 and not tmp.exists()


def test_writer_killed_at_arbitrary_points_never_breaks_reading(tmp_path):
    ctx = _ctx()
    root = tmp_path / "results"
    for attempt, delay in enumerate((0.0, 0.13, 0.37)):
        marker = tmp_path / f"marker{attempt}"
        p = ctx.Process(target=fx.endless_writer, args=(str(root), str(marker)))
        p.start()
        deadline = time.monotonic() + 120
        while not marker.exists() and time.monotonic() < deadline and p.is_alive():
            time.sleep(0.01)
        time.sleep(delay)
        os.kill(p.pid, signal.SIGKILL)
        p.join(timeout=30)
    store = ResultStore(root)
    df = store.read(latest=False)
    assert store.skipped == [] and len(df) >= 3
    for rid, steps, cfg in zip(df["run_id"], df["steps"], df["config_json"]):
        assert cfg == fx.payload(rid, int(steps))


def test_snapshot_is_a_cache_never_the_truth(tmp_path, caplog, monkeypatch):
    import results.store as store_mod

    monkeypatch.setattr(store_mod, "AUTO_CONSOLIDATE_MIN_NEW", 5)
    store = ResultStore(tmp_path)
    paths = [store.write(fx.make_row(f"r{i}", steps=i)) for i in range(6)]
    assert not (tmp_path / store_mod.SNAPSHOT).exists()
    first = store.read()
    assert (tmp_path / store_mod.SNAPSHOT).exists()  # enough new files: read() consolidated them
    assert store_mod.SNAPSHOT not in [p.name for p in store.files()]
    pd.testing.assert_frame_equal(store.read(), first)  # the same rows through the snapshot
    # a row written after the snapshot is read from its own file
    store.write(fx.make_row("late"))
    assert "late" in set(store.read()["run_id"])
    # a result file removed by the user disappears even though the snapshot still holds it
    paths[0].unlink()
    assert "r0" not in set(store.read()["run_id"])
    # a completed attempt landing after the snapshot still wins the dedup
    store.write(fx.make_row("r1", "failed", finished_at="2030-01-01T00:00:00Z"))
    assert store.read().set_index("run_id").loc["r1", "status"] == "completed"
    assert store.consolidate() == 7  # r1..r5, late, r1's failure
    # a broken snapshot only costs time
    (tmp_path / store_mod.SNAPSHOT).write_bytes(b"garbage")
    with caplog.at_level(logging.WARNING, logger="results.store"):
        again = store.read(consolidate=False)
    assert sorted(again["run_id"]) == ["late", "r1", "r2", "r3", "r4", "r5"]
    assert "ignoring unreadable results snapshot" in caplog.text and store.skipped == []
    assert store.consolidate() == 7 and len(store.read(latest=False)) == 7
