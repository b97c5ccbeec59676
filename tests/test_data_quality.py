"""Quality index (cached, invalidated when shards change) and subset selection (top fraction, unique subset)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from budget.errors import ConfigError
from runners.data import quality
from runners.data.demo import encode_png
from runners.data.quality import filter_metrics, load_quality_index, select_subset
from runners.data.shards import ShardWriter


def _shards(folder, qualities, shard_size=50):
    png = encode_png(np.zeros((4, 4), dtype=np.uint8))
    with ShardWriter(folder, shard_size=shard_size) as w:
        for i, q in enumerate(qualities):
            w.write(f"{i:09d}", png, f"c{i}", {"quality": float(q), "label": i % 10, "is_clean": bool(q > 0.5)})
    return folder


@pytest.fixture
def pool(tmp_path):
    rng = np.random.default_rng(7)
    q = np.round(rng.random(200), 2)  # two decimals: plenty of ties
    return _shards(tmp_path / "s", q), q


def test_top_fraction_with_ties_broken_by_key(pool):
    folder, q = pool
    index = load_quality_index(folder)
    assert len(index) == 200 and index.corrupt == 0
    sel = select_subset(index, quality_fraction=0.4, seed=0)
    assert sel.unique_samples == sel.quality_size == 80 and sel.pool_size == 200
    expected = sorted(range(200), key=lambda i: (-q[i], i))[:80]  # keys are the zero-padded indices
    assert sorted(sel.ids.tolist()) == sorted(expected)
    assert sel.threshold == q[expected[-1]]
    assert index.quality[sel.ids].min() >= np.delete(q, sel.ids).max()


def test_unique_subset_is_a_seeded_random_subset_not_the_top(pool):
    folder, q = pool
    index = load_quality_index(folder)
    top = set(select_subset(index, quality_fraction=0.5).ids.tolist())
    a = select_subset(index, quality_fraction=0.5, unique_samples=30, seed=1)
    b = select_subset(index, quality_fraction=0.5, unique_samples=30, seed=1)
    c = select_subset(index, quality_fraction=0.5, unique_samples=30, seed=2)
    assert np.array_equal(a.ids, b.ids) and not np.array_equal(np.sort(a.ids), np.sort(c.ids))
    assert set(a.ids.tolist()) <= top and a.unique_samples == 30 and a.quality_size == 100
    best30 = sorted(top, key=lambda i: (-q[i], i))[:30]
    assert sorted(a.ids.tolist()) != sorted(best30)
    # a random subset of the top half: its mean quality sits well below the best 30's
    assert q[a.ids].mean() < q[best30].mean() - 0.05


def test_pool_size_is_a_fixed_subset_of_the_data(pool):
    folder, _ = pool
    index = load_quality_index(folder)
    a = select_subset(index, quality_fraction=1.0, pool_size=120, seed=0)
    b = select_subset(index, quality_fraction=1.0, pool_size=120, seed=5)
    assert a.pool_size == 120 and set(a.ids.tolist()) == set(b.ids.tolist())  # the pool ignores the run seed
    s = select_subset(index, quality_fraction=0.25, pool_size=120)
    assert s.quality_size == 30 and set(s.ids.tolist()) <= set(a.ids.tolist())


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"quality_fraction": 0.0}, r"quality_fraction 0.0 is outside \(0, 1\]"),
        ({"quality_fraction": 1.5}, r"quality_fraction 1.5 is outside \(0, 1\]"),
        ({"quality_fraction": 0.4, "unique_samples": 81}, "unique_samples 81 exceeds the 80 samples in the top 0.4"),
        ({"unique_samples": 0}, "unique_samples 0 must be a positive integer"),
        ({"pool_size": 201}, r"pool_size 201 is outside 1..200"),
    ],
)
def test_bad_selection_is_a_one_line_error(pool, kwargs, message):
    index = load_quality_index(pool[0])
    with pytest.raises(ConfigError, match=message):
        select_subset(index, **kwargs)


def test_index_is_cached_and_invalidated_when_shards_change(pool, monkeypatch):
    folder, q = pool
    load_quality_index(folder)
    assert (folder / "quality_index.json").is_file()
    calls = []
    real_scan = quality.scan_shard
    monkeypatch.setattr(quality, "scan_shard", lambda p: calls.append(p) or real_scan(p))
    index = load_quality_index(folder)
    assert calls == [] and len(index) == 200  # served from the cache
    # rewrite shard 1 with new qualities (same size): its mtime changes, so the index is rebuilt
    png = encode_png(np.zeros((4, 4), dtype=np.uint8))
    st = os.stat(folder / "00001.tar")
    with ShardWriter(folder, shard_size=50, start_shard=1) as w:
        for i in range(50, 100):
            w.write(f"{i:09d}", png, f"c{i}", {"quality": float(round(1 - q[i], 2)), "label": i % 10,
                                               "is_clean": bool(q[i] > 0.5)})
    os.utime(folder / "00001.tar", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    index = load_quality_index(folder)
    assert len(calls) == 4 and len(index) == 200
    assert np.allclose(index.quality[50:100], np.round(1 - q[50:100], 2))
    assert np.allclose(index.quality[100:], q[100:])
    (folder / "00001.tar").unlink()
    assert len(load_quality_index(folder)) == 150 and len(calls) == 7


def test_read_only_folder_caches_elsewhere(pool, tmp_path, monkeypatch):
    folder, _ = pool
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(quality, "_write_cached", lambda p, d, real=quality._write_cached:
                        False if p.parent == folder else real(p, d))
    load_quality_index(folder)
    assert not (folder / "quality_index.json").exists()
    assert list((tmp_path / "cache" / "clipbudget" / "quality_index").glob("*.json"))


def test_missing_quality_only_matters_when_filtering(tmp_path):
    png = encode_png(np.zeros((4, 4), dtype=np.uint8))
    with ShardWriter(tmp_path, shard_size=10) as w:
        for i in range(10):
            w.write(f"{i:09d}", png, "c", {} if i == 3 else {"quality": 1.0})
    index = load_quality_index(tmp_path)
    assert select_subset(index, quality_fraction=1.0).unique_samples == 10
    with pytest.raises(ConfigError, match="1 sample.* have no 'quality'"):
        select_subset(index, quality_fraction=0.5)


def test_filter_metrics():
    rows, auc = filter_metrics(np.array([0.9, 0.1, 0.8, 0.7, 0.2]), np.array([1, 0, 0, 1, 0], bool), (0.4,))
    by = {r["keep_fraction"]: r for r in rows}
    assert by[0.4]["kept"] == 2 and by[0.4]["precision"] == 0.5 and by[0.4]["recall"] == 0.5
    assert by[0.4]["kept"] == 2 and auc == pytest.approx(5 / 6)


def test_a_pattern_naming_a_subset_gets_its_own_index(pool):
    folder, _ = pool
    whole = load_quality_index(folder)
    part = load_quality_index(f"{folder}/{{00000..00001}}.tar")
    assert len(whole) == 200 and len(part) == 100
    assert np.array_equal(part.quality, whole.quality[:100])
    names = sorted(p.name for p in folder.glob("quality_index*.json"))
    assert len(names) == 2 and "quality_index.json" in names
    assert len(load_quality_index(folder)) == 200  # neither evicted the other
