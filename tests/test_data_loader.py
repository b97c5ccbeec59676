"""The train loader: exact samples_seen (short last batch), rank split, resume, workers, corrupt images.

Most tests use a shard folder whose captions are ``"sample <i>"`` and a tokenizer that returns ``i``, so
every yielded row is identified exactly; one test runs open_clip's real transforms and tokenizer on the
Fashion-MNIST demo shards.
"""

from __future__ import annotations

import dataclasses
import io
import tarfile

import numpy as np
import pytest
import torch

from budget.errors import ConfigError
from runners.data.demo import encode_png
from runners.data.loader import TrainLoader, build_train_loader, epoch_order, rank_slice
from runners.data.quality import load_quality_index, select_subset
from runners.data.shards import CorruptDataError, ShardWriter
from tests._data_fixtures import build_demo_data


@dataclasses.dataclass(frozen=True)
class _Cfg:
    """The RunConfig fields the loader reads (runners.config.RunConfig has them all; see the last test)."""

    train_data: str
    samples_seen: int
    quality_fraction: float = 1.0
    unique_samples: int | None = None
    pool_size: int | None = None
    seed: int = 0
    workers: int = 0


def _ids(captions: list[str]) -> torch.Tensor:
    return torch.tensor([[int(c.split()[-1])] for c in captions], dtype=torch.long)


def _pixels(img) -> torch.Tensor:
    return torch.from_numpy(np.asarray(img, dtype=np.float32)).permute(2, 0, 1)


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ids")
    rng = np.random.default_rng(0)
    with ShardWriter(folder, shard_size=150) as w:
        for i in range(600):
            img = np.full((4, 4), i % 256, dtype=np.uint8)
            w.write(f"{i:09d}", encode_png(img), f"sample {i}", {"quality": float(rng.random())})
    return folder


def _loader(folder, samples_seen, batch_size, **kw) -> TrainLoader:
    cfg_kw = {k: kw.pop(k) for k in ("quality_fraction", "unique_samples", "seed", "workers") if k in kw}
    return build_train_loader(_Cfg(str(folder), samples_seen, **cfg_kw), image_transform=_pixels, tokenizer=_ids,
                              batch_size=batch_size, **kw)


def _stream(loader) -> list[np.ndarray]:
    return [tokens[:, 0].numpy().copy() for _, tokens, _ in loader]


def test_exact_samples_seen_with_short_last_batch_and_fresh_epochs(shards):
    loader = _loader(shards, 1000, 64, quality_fraction=0.5, unique_samples=240, seed=3)
    assert (loader.unique_samples, loader.steps, len(loader)) == (240, 16, 16)
    assert loader.epochs == pytest.approx(1000 / 240)
    batches = _stream(loader)
    assert [len(b) for b in batches] == [64] * 15 + [40]
    seen = np.concatenate(batches)
    assert len(seen) == 1000 and loader.samples_consumed == 1000 and len(loader) == 0
    subset = set(loader.selection.ids.tolist())  # keys are row ids here
    epochs = [seen[i:i + 240] for i in range(0, 1000, 240)]
    for e in epochs[:4]:
        assert set(e.tolist()) == subset  # every full epoch is a permutation of the subset
    assert not np.array_equal(epochs[0], epochs[1])  # reshuffled each epoch
    assert set(epochs[4].tolist()) <= subset and len(set(epochs[4].tolist())) == 40
    index = load_quality_index(shards)
    assert index.quality[list(subset)].min() >= np.median(index.quality)  # top half by quality
    # deterministic: same seed, same stream
    assert all(np.array_equal(a, b) for a, b in zip(batches, _stream(
        _loader(shards, 1000, 64, quality_fraction=0.5, unique_samples=240, seed=3))))


def test_two_ranks_are_disjoint_and_union_is_the_single_rank_stream(shards):
    single = _stream(_loader(shards, 1001, 64, quality_fraction=0.8, seed=1))
    r0 = _stream(_loader(shards, 1001, 32, quality_fraction=0.8, seed=1, rank=0, world_size=2))
    r1 = _stream(_loader(shards, 1001, 32, quality_fraction=0.8, seed=1, rank=1, world_size=2))
    assert len(single) == len(r0) == len(r1) == 16
    assert [len(b) for b in r0][-1] == 21 and [len(b) for b in r1][-1] == 20  # 41 left: split evenly
    for s, a, b in zip(single, r0, r1):
        assert np.array_equal(np.concatenate([a, b]), s)
    assert sum(map(len, r0)) + sum(map(len, r1)) == 1001


def test_tiny_remainder_gives_a_rank_an_empty_batch_with_the_right_shape(shards):
    r1 = list(_loader(shards, 65, 32, rank=1, world_size=2))
    assert [len(b[0]) for b in r1] == [32, 0]
    assert r1[-1][0].shape == (0, 3, 4, 4) and r1[-1][1].shape == (0, 1)


def test_resume_continues_the_same_sequence(shards):
    full = _stream(_loader(shards, 700, 50, quality_fraction=0.7, seed=2))
    first = _loader(shards, 700, 50, quality_fraction=0.7, seed=2)
    head = []
    for _, tokens, _ in first:
        head.append(tokens[:, 0].numpy().copy())
        if len(head) == 6:
            break
    state = first.state_dict()
    assert state["samples_consumed"] == 300
    resumed = _loader(shards, 700, 50, quality_fraction=0.7, seed=2)
    resumed.load_state_dict(state)
    assert len(resumed) == 8
    tail = _stream(resumed)
    assert all(np.array_equal(a, b) for a, b in zip(head + tail, full)) and len(head + tail) == len(full)
    other = _loader(shards, 700, 50, quality_fraction=0.6, seed=2)
    with pytest.raises(ConfigError, match="cannot resume the data position: checkpoint has selection="):
        other.load_state_dict(state)


def test_workers_give_the_same_stream(shards):
    base = _stream(_loader(shards, 900, 40, seed=4))
    multi = _stream(_loader(shards, 900, 40, seed=4, workers=2))
    assert len(base) == len(multi) == 23
    assert all(np.array_equal(a, b) for a, b in zip(base, multi))


def test_shuffle_buffer_order_is_a_seeded_permutation(shards):
    index = load_quality_index(shards)
    ids = select_subset(index, quality_fraction=1.0).ids
    a = epoch_order(index, ids, seed=0, epoch=0, shuffle_buffer=50)
    assert sorted(a.tolist()) == sorted(ids.tolist()) and not np.array_equal(a, np.sort(a))
    assert np.array_equal(a, epoch_order(index, ids, seed=0, epoch=0, shuffle_buffer=50))
    assert not np.array_equal(a, epoch_order(index, ids, seed=0, epoch=1, shuffle_buffer=50))
    assert [rank_slice(0, 7, r, 3) for r in range(3)] == [(0, 3), (3, 5), (5, 7)]
    loader = _loader(shards, 1200, 100, shuffle_buffer=64)
    seen = np.concatenate(_stream(loader))
    assert sorted(seen[:600].tolist()) == list(range(600)) == sorted(seen[600:].tolist())


def test_corrupt_image_is_skipped_counted_and_replaced(tmp_path):
    png = encode_png(np.zeros((4, 4), dtype=np.uint8))
    with ShardWriter(tmp_path, shard_size=300) as w:
        for i in range(300):
            w.write(f"{i:09d}", png if i != 17 else png[:40], f"sample {i}", {"quality": 1.0})
    loader = _loader(tmp_path, 600, 64, workers=2)
    seen = np.concatenate(_stream(loader))
    assert len(seen) == 600 and 17 not in seen.tolist()
    assert loader.skipped == 2  # once per epoch
    # past the tolerated fraction: one line, during training
    with ShardWriter(tmp_path / "bad", shard_size=300) as w:
        for i in range(300):
            w.write(f"{i:09d}", png if i % 20 else b"junk", f"sample {i}", {"quality": 1.0})
    with pytest.raises(CorruptDataError, match="samples are corrupt"):
        _stream(_loader(tmp_path / "bad", 600, 64))


def test_structurally_corrupt_members_count_in_skipped(tmp_path):
    png = encode_png(np.zeros((4, 4), dtype=np.uint8))
    with ShardWriter(tmp_path, shard_size=500) as w:
        for i in range(500):
            w.write(f"{i:09d}", png, f"sample {i}", {"quality": 1.0})
    src = tmp_path / "00000.tar"
    with tarfile.open(src) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers() if m.name != "000000003.txt"]
    with tarfile.open(src, "w") as tar:
        for m, data in members:
            tar.addfile(m, io.BytesIO(data))
    loader = _loader(tmp_path, 499, 100)
    assert loader.skipped == 1 and loader.unique_samples == 499
    assert sorted(np.concatenate(_stream(loader)).tolist()) == [i for i in range(500) if i != 3]


def test_input_errors(shards, tmp_path):
    with pytest.raises(ConfigError, match=r"samples_seen 100 is below one global batch \(64 × 2 ranks = 128\)"):
        _loader(shards, 100, 64, world_size=2)
    with pytest.raises(ConfigError, match="holds no .*tar shards"):
        _loader(tmp_path, 1000, 10)
    with pytest.raises(ConfigError, match=r"quality_fraction 0 is outside \(0, 1\]"):
        _loader(shards, 1000, 10, quality_fraction=0)
    with pytest.raises(ConfigError, match="rank 2 / world_size 2"):
        _loader(shards, 1000, 10, rank=2, world_size=2)


def test_open_clip_transforms_tokenizer_and_slip_views_on_fashion_mnist(tmp_path_factory):
    import open_clip

    from runners.config import RunConfig

    shard_dir, eval_dir = build_demo_data(tmp_path_factory.mktemp("fm"), n_train=2000, n_eval=500)
    cfg = RunConfig(model="tiny-vit-28", strategy="slip", samples_seen=300, train_data=str(shard_dir),
                    eval_data=str(eval_dir), quality_fraction=1.0, workers=1, seed=0)
    preprocess = open_clip.image_transform(28, is_train=False)
    views = open_clip.image_transform(28, is_train=True)
    loader = build_train_loader(cfg, image_transform=preprocess, tokenizer=open_clip.get_tokenizer("ViT-B-32"),
                                extra_views_transform=lambda im: (views(im), views(im)), batch_size=128)
    batches = list(loader)
    assert [len(b[0]) for b in batches] == [128, 128, 44]
    images, tokens, extra = batches[0]
    assert images.shape == (128, 3, 28, 28) and images.dtype == torch.float32
    assert tokens.shape == (128, 77) and tokens.dtype == torch.long
    assert extra.shape == (128, 2, 3, 28, 28) and not torch.equal(extra[:, 0], extra[:, 1])
    mean = torch.tensor(open_clip.OPENAI_DATASET_MEAN)[:, None, None]
    std = torch.tensor(open_clip.OPENAI_DATASET_STD)[:, None, None]
    pixels = images[0] * std + mean  # grey converted to RGB: three equal channels before normalisation
    assert torch.allclose(pixels[0], pixels[1], atol=1e-5) and torch.allclose(pixels[0], pixels[2], atol=1e-5)
    assert pixels.std() > 0.1


def test_random_transforms_are_reproducible_and_leave_the_callers_rng_alone(shards):
    def noisy(img):  # a random "augmentation": torch and Python RNGs
        import random

        return _pixels(img) + torch.rand(1) + random.random()

    def run(workers, start=None):
        loader = build_train_loader(_Cfg(str(shards), 400, workers=workers), image_transform=noisy, tokenizer=_ids,
                                    batch_size=50)
        if start is not None:
            loader.load_state_dict(start)
        return [images.clone() for images, _, _ in loader], loader

    torch.manual_seed(123)
    before = torch.get_rng_state()
    a, loader = run(0)
    assert torch.equal(torch.get_rng_state(), before)  # the training loop's RNG is not consumed
    b, _ = run(2)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    half = loader.state_dict() | {"samples_consumed": 200, "step": 4}
    c, _ = run(1, start=half)
    assert len(c) == 4 and all(torch.equal(x, y) for x, y in zip(a[4:], c))
    assert not torch.equal(a[0][0], a[0][1])  # different draws for different samples
