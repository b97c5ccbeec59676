"""Training data: webdataset shards, demo builders, quality subsets, the train loader, eval sets, scoring.

Modules (torch only in ``loader`` and ``score``):

* :mod:`runners.data.shards` — tar shards as img2dataset writes them; atomic writer; corruption-tolerant reader.
* :mod:`runners.data.demo` — ``clipbudget data fashion-mnist|mnist``: captioned shards with a chosen
  corrupted fraction, plus the held-out evaluation set.
* :mod:`runners.data.quality` — the cached ``quality_index.json`` and the quality/unique subset selection.
* :mod:`runners.data.loader` — :func:`build_train_loader`: exactly ``samples_seen`` samples, rank-sharded,
  resumable.
* :mod:`runners.data.evalset` — :func:`load_eval_set` for ImageNet-style evaluation folders.
* :mod:`runners.data.score` — ``clipbudget data score``: quality = image-text cosine under a checkpoint.

The names below are importable from here lazily (importing this package loads nothing heavy).
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "ShardWriter": "shards",
    "CorruptDataError": "shards",
    "list_shards": "shards",
    "iter_samples": "shards",
    "build_demo": "demo",
    "load_quality_index": "quality",
    "select_subset": "quality",
    "build_train_loader": "loader",
    "TrainLoader": "loader",
    "load_eval_set": "evalset",
    "EvalSet": "evalset",
    "score_shards": "score",
}

__all__ = [
    "CorruptDataError",
    "EvalSet",
    "ShardWriter",
    "TrainLoader",
    "build_demo",
    "build_train_loader",
    "iter_samples",
    "list_shards",
    "load_eval_set",
    "load_quality_index",
    "score_shards",
    "select_subset",
]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'runners.data' has no attribute {name!r}")
    return getattr(importlib.import_module(f"runners.data.{module}"), name)
