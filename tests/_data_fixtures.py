"""Shared test data: small real Fashion-MNIST shard folders and evaluation folders, built once per session.

Import from any test module::

    from tests._data_fixtures import build_demo_data, demo_data   # demo_data is a pytest fixture

    shard_dir, eval_dir = build_demo_data(tmp_path_factory.mktemp("d"), n_train=2000, n_eval=500)

``build_demo_data`` caches by its arguments for the whole test session (one process): a second call with the
same arguments returns the folders built the first time, wherever ``root`` points. Treat them as read-only;
copy (``shutil.copytree``) before modifying. Needs Debian's ``dataset-fashion-mnist`` (a missing package
fails the test with the install command; it is not skipped).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

_CACHE: dict[tuple, tuple[Path, Path]] = {}
_SESSION_ROOT: Path | None = None


def _session_root() -> Path:
    global _SESSION_ROOT
    if _SESSION_ROOT is None:
        _SESSION_ROOT = Path(tempfile.mkdtemp(prefix="clipbudget-demo-data-"))
    return _SESSION_ROOT


def build_demo_data(
    root: str | os.PathLike | None = None,
    *,
    n_train: int = 2000,
    n_eval: int = 500,
    corrupt: float = 0.0,
    seed: int = 0,
    shard_size: int = 1000,
    dataset: str = "fashion-mnist",
) -> tuple[Path, Path]:
    """Build (or reuse) ``(shard_dir, eval_dir)`` with ``n_train`` training pairs and ``n_eval`` test images.

    ``root`` is where the first build for these arguments goes (a session temp folder if ``None``).
    """
    key = (dataset, n_train, n_eval, corrupt, seed, shard_size)
    if key in _CACHE and _CACHE[key][0].is_dir() and _CACHE[key][1].is_dir():
        return _CACHE[key]
    from runners.data.demo import build_demo

    base = Path(root) if root is not None else _session_root()
    out = base / f"{dataset}-n{n_train}-e{n_eval}-c{corrupt}-s{seed}-k{shard_size}"
    report = build_demo(dataset, out, corrupt=corrupt, seed=seed, n_train=n_train, n_eval=n_eval,
                        shard_size=shard_size)
    _CACHE[key] = (Path(report.shards_dir), Path(report.eval_dir))
    return _CACHE[key]


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory) -> tuple[Path, Path]:
    """``(shard_dir, eval_dir)``: 2000 clean Fashion-MNIST training pairs (2 shards), 500 test images."""
    return build_demo_data(tmp_path_factory.mktemp("demo-data"), n_train=2000, n_eval=500)


@pytest.fixture(scope="session")
def noisy_demo_data(tmp_path_factory) -> tuple[Path, Path]:
    """``(shard_dir, eval_dir)``: 2000 pairs with 60 % corrupted captions, 500 test images."""
    return build_demo_data(tmp_path_factory.mktemp("noisy-demo-data"), n_train=2000, n_eval=500, corrupt=0.6)
