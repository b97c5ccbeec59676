"""Fixtures of the training-engine tests: a micro open_clip config and RunConfig builders.

The micro model (28 px, 2×2 patches of 14 px, width 32, one layer per tower) is a real open_clip CLIP given
as a JSON config path, so the tests also exercise JSON-path models; it trains a step in a fraction of a
second on the loaded 2-core machine. Data: real Fashion-MNIST shards from ``tests._data_fixtures``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

MICRO_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 28, "layers": 1, "width": 32, "head_width": 16, "patch_size": 14},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


def write_micro_config(folder: Path, name: str = "micro-clip") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(MICRO_CONFIG))
    return path


def micro_cfg(model_path, shard_dir, eval_dir, **over):
    """A RunConfig for the micro model: 4 steps of 64 by default, no DataLoader workers."""
    from runners.config import RunConfig

    d = dict(model=str(model_path), strategy="clip", samples_seen=256, batch_size=64, lr=1e-3,
             train_data=str(shard_dir), eval_data=str(eval_dir), workers=0, slip_mlp_dim=64, slip_emb_dim=32,
             linear_probe=False)
    d.update(over)
    return RunConfig.from_dict(d)


@pytest.fixture(scope="session")
def micro_model(tmp_path_factory) -> Path:
    return write_micro_config(tmp_path_factory.mktemp("micro-model"))


@pytest.fixture(scope="session")
def one_thread():
    """Training tests use one intra-op thread: on this shared 2-core machine, OpenMP spinning across
    competing processes makes 2 threads up to 10× slower than 1 (measured)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def deterministic_clip_view(monkeypatch=None) -> None:
    """Make the CLIP view's transform the deterministic evaluation transform (resize, centre crop), in this
    process: for tests of DDP equivalence. Random augmentation draws from RNGs seeded per (seed, step, rank),
    so 2 ranks crop differently from 1 process, by design; the gradient maths is what those tests check."""
    import runners.strategies as strategies
    from runners.models import eval_transform

    original = strategies.train_transform

    def train_transform(aug, image_size, mean, std):
        return eval_transform(image_size, mean, std) if aug == "none" else original(aug, image_size, mean, std)

    if monkeypatch is not None:
        monkeypatch.setattr(strategies, "train_transform", train_transform)
    else:  # a spawned worker process
        strategies.train_transform = train_transform


def distributed_worker(rank: int, world_size: int, port: int, cfg_json: str, run_dir: str, out_file: str) -> None:
    """One rank of a gloo process group training ``cfg`` (for torch.multiprocessing.spawn), CLIP view
    deterministic (:func:`deterministic_clip_view`)."""
    import os

    import torch

    deterministic_clip_view()

    os.environ.update({"RANK": str(rank), "WORLD_SIZE": str(world_size), "LOCAL_RANK": str(rank),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    torch.set_num_threads(1)
    from runners.config import RunConfig
    from runners.distributed import cleanup, init_distributed
    from runners.train import train

    env = init_distributed("cpu")
    try:
        result = train(RunConfig.from_json(cfg_json), run_dir, device="cpu", env=env)
        if rank == 0:
            Path(out_file).write_text(json.dumps({"losses": result.losses, "samples": result.samples_trained}))
    finally:
        cleanup(env)
