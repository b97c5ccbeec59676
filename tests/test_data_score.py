"""`data score`: recompute quality = image-text cosine under a checkpoint, rewrite shards, invalidate the index.

The checkpoint is a randomly initialised tiny open_clip ViT from the catalog: the point is the plumbing
(the engine's slow tests check that a trained model's scores separate clean from corrupted pairs).
"""

from __future__ import annotations

import io
import shutil
import tarfile

import numpy as np
import pytest
import torch

from planner.cli.main import main
from runners.data.quality import load_quality_index
from runners.data.score import score_shards
from runners.data.shards import iter_samples, list_shards
from tests._data_fixtures import build_demo_data

MODEL = "tiny-vit-28"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from runners.models import build_model

    torch.manual_seed(0)
    built = build_model(MODEL)
    path = tmp_path_factory.mktemp("ckpt") / "final.pt"
    torch.save({"state_dict": built.model.state_dict()}, path)
    return path


@pytest.fixture
def shards(tmp_path_factory, tmp_path):
    src, _ = build_demo_data(tmp_path_factory.getbasetemp() / "score-data", n_train=160, n_eval=20, corrupt=0.5,
                             shard_size=80)
    dst = tmp_path / "shards"
    shutil.copytree(src, dst)
    return dst


def test_score_in_place_matches_the_model_and_invalidates_the_index(shards, checkpoint):
    from runners.models import load_trained

    before = load_quality_index(shards)
    assert set(np.unique(before.quality)) == {0.0, 1.0}  # the builder's caption heuristic
    report = score_shards(shards, checkpoint=checkpoint, model=MODEL, batch_size=128)
    assert report.n_scored == 160 and report.n_dropped == 0
    samples = list(iter_samples(list_shards(shards)))
    assert len(samples) == 160 and [s.key for s in samples] == [f"{i:09d}" for i in range(160)]
    net, preprocess, tokenizer = load_trained(MODEL, checkpoint)
    with torch.no_grad():
        for s in samples[:5]:
            fi = net.encode_image(preprocess(s.image.convert("RGB"))[None], normalize=True)
            ft = net.encode_text(tokenizer([s.caption]), normalize=True)
            assert s.meta["quality"] == pytest.approx(float((fi * ft).sum()), abs=1e-5)
    for s in samples:
        assert s.meta["quality_source"] == "clip_cosine:final.pt"
        assert s.meta["quality_prev"] in (0.0, 1.0) and -1.0 <= s.meta["quality"] <= 1.0
    after = load_quality_index(shards)  # rebuilt: the cached one described the old shards
    assert np.allclose(after.quality, [s.meta["quality"] for s in samples])
    assert len(np.unique(after.quality)) > 120
    # is_clean is known: precision/recall of the filter at several keep fractions, and an AUC
    assert {r["keep_fraction"] for r in report.filter} >= {0.4, 0.5} and 0.0 <= report.auc <= 1.0


def test_score_into_a_new_folder_drops_corrupt_samples(shards, checkpoint, tmp_path):
    src = shards / "00001.tar"
    with tarfile.open(src) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    with tarfile.open(src, "w") as tar:
        for m, data in members:
            if m.name == "000000100.png":
                data = b"not a png"
                m.size = len(data)
            tar.addfile(m, io.BytesIO(data))
    original = (shards / "00000.tar").read_bytes()
    out = tmp_path / "scored"
    report = score_shards(shards, checkpoint=checkpoint, model=MODEL, out_dir=out)
    assert (shards / "00000.tar").read_bytes() == original  # source untouched
    assert sorted(p.name for p in out.glob("*.tar")) == ["00000.tar", "00001.tar"]
    assert report.n_scored == 159 and report.n_dropped == 1
    keys = [s.key for s in iter_samples(list_shards(out))]
    assert len(keys) == 159 and "000000100" not in keys


def test_cli_score_reports_precision_recall(shards, checkpoint, capsys):
    rc = main(["data", "score", str(shards), "--checkpoint", str(checkpoint), "--model", MODEL])
    out = capsys.readouterr().out
    assert rc == 0 and "scored 160 pairs" in out and "precision" in out and "ROC AUC" in out
    assert main(["data", "score", str(shards), "--checkpoint", str(shards / "none.pt"), "--model", MODEL]) == 2
    assert "none.pt' does not exist" in capsys.readouterr().err
