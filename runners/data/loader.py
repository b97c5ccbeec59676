"""The training data loader: exactly ``samples_seen`` samples of the selected subset, sharded over ranks.

How it works (and why it is exact and resumable):

* :func:`runners.data.quality.load_quality_index` gives, per sample, where its image and caption lie in
  its tar; :func:`runners.data.quality.select_subset` picks the ``U`` unique samples of the run.
* The training stream is a sequence of *global positions* ``p = 0 … samples_seen - 1``. Position ``p``
  is sample ``order(e)[p mod U]`` of epoch ``e = p // U``, where ``order(e)`` is a reshuffle of the subset
  seeded by ``(seed, e)``: shards in a shuffled order, each shard's samples in file order, through a
  **seeded shuffle buffer** of ``shuffle_buffer`` samples (webdataset's scheme; when ``U`` ≤ the buffer
  this is a uniform random permutation). So every epoch repeats the subset in a fresh order, and the run
  sees exactly ``samples_seen`` samples: ``samples_seen / U`` epochs, logged at start.
* Global step ``s`` covers positions ``[s·G, min((s+1)·G, samples_seen))`` with ``G = batch_size ×
  world_size``; rank ``r`` takes the ``r``-th of ``world_size`` contiguous, near-equal parts (sizes
  differ by at most one; in the short last step a rank can get fewer, even zero, samples). Ranks are
  disjoint and their union, in rank order, is the single-rank stream.
* DataLoader workers each build whole batches (step ``s`` on worker ``s mod workers``; the DataLoader
  returns them in step order), reading members with ``os.pread`` from the tars, decoding with PIL and
  tokenizing a batch at a time. The data position is the number of global samples handed out, so
  :meth:`TrainLoader.state_dict` / :meth:`TrainLoader.load_state_dict` resume the very same sequence.
* Random image transforms (augmentation, SLIP views) draw from RNGs seeded per ``(seed, step, rank)``,
  so batches are bit-identical whatever the number of workers and across a resume; the caller's global
  RNG state is left untouched (also with ``workers=0``).
* An image that fails to decode is skipped and counted (``.skipped``) and replaced by the next sample
  of the same epoch order, so batch sizes and the sample count stay exact; past the tolerated corrupt
  fraction (:mod:`runners.data.shards`) loading fails with one line.

Batches are tuples ``(images float [B, 3, H, W], tokens long [B, L], extra_views)`` where
``extra_views`` is ``None`` or, with ``extra_views_transform(pil) -> (view1, view2)`` (SLIP), a float
tensor ``[B, 2, 3, H', W']``. Greyscale images are converted to RGB before ``image_transform``.

Example::

    loader = build_train_loader(cfg, image_transform=preprocess, tokenizer=tokenizer, batch_size=256)
    for images, tokens, extra in loader:
        ...
    loader.state_dict()  # {"samples_consumed": …, …}
"""

from __future__ import annotations

import io
import logging
import math
import os
import random
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from budget.errors import ConfigError
from runners.data.quality import (
    QualityIndex,
    Selection,
    load_quality_index,
    select_subset,
)
from runners.data.shards import (
    MemberRef,
    check_corrupt,
    max_corrupt_fraction,
    read_member,
)

log = logging.getLogger(__name__)

#: Default shuffle-buffer size (samples). Subsets up to this size get a uniform permutation per epoch.
DEFAULT_SHUFFLE_BUFFER = 100_000
STATE_VERSION = 1
#: PIL decoder per image extension (skips PIL's format sniffing; None = let PIL sniff).
_PIL_FORMATS = {"png": ("PNG",), "jpg": ("JPEG",), "jpeg": ("JPEG",), "webp": ("WEBP",)}
#: Captions whose tokens are cached per worker (demo captions repeat; real ones rarely do).
TOKEN_CACHE_SIZE = 200_000


def epoch_order(index: QualityIndex, ids: np.ndarray, seed: int, epoch: int, shuffle_buffer: int) -> np.ndarray:
    """The selected ``ids`` in the order epoch ``epoch`` visits them (see the module docstring)."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(epoch), 0xDA7A]))
    u = len(ids)
    if u <= shuffle_buffer:
        return ids[rng.permutation(u)]
    # Stream order: shards shuffled, samples in file order within a shard; then a shuffle buffer.
    shard_rank = rng.permutation(len(index.shards))[index.shard[ids]]
    stream = ids[np.lexsort((index.image_offset[ids], shard_rank))]
    picks = rng.integers(0, shuffle_buffer, size=u - shuffle_buffer)
    buf = stream[:shuffle_buffer].tolist()
    out = np.empty(u, dtype=np.int64)
    for n, (x, i) in enumerate(zip(stream[shuffle_buffer:].tolist(), picks.tolist())):
        out[n] = buf[i]
        buf[i] = x
    tail = np.asarray(buf, dtype=np.int64)
    out[u - shuffle_buffer:] = tail[rng.permutation(shuffle_buffer)]
    return out


def rank_slice(lo: int, hi: int, rank: int, world_size: int) -> tuple[int, int]:
    """Rank ``rank``'s contiguous part of global positions ``[lo, hi)`` (``np.array_split`` sizes).

    >>> [rank_slice(0, 5, r, 2) for r in range(2)]
    [(0, 3), (3, 5)]
    """
    n = hi - lo
    base, extra = divmod(n, world_size)
    start = lo + rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


class _BatchStream(IterableDataset):
    """Builds this rank's batches for steps ``start_step …``; workers split the steps round-robin.

    Yields ``(images, tokens, extra_views, n_skipped)``; :class:`TrainLoader` strips the counter.
    """

    def __init__(self, loader: TrainLoader, start_step: int):
        super().__init__()
        self.index = loader.index
        self.ids = loader.selection.ids
        self.seed = loader.seed
        self.samples_seen = loader.samples_seen
        self.global_batch = loader.global_batch_size
        self.rank = loader.rank
        self.world_size = loader.world_size
        self.steps = loader.steps
        self.start_step = start_step
        self.shuffle_buffer = loader.shuffle_buffer
        self.image_transform = loader.image_transform
        self.tokenizer = loader.tokenizer
        self.extra_views_transform = loader.extra_views_transform
        self._fds: dict[int, int] = {}
        self._fd_pid = -1
        self._orders: dict[int, np.ndarray] = {}
        self._token_cache: dict[str, torch.Tensor] = {}

    # -- data access
    def _fd(self, shard: int) -> int:
        if self._fd_pid != os.getpid():  # forked into a worker: open our own descriptors
            self._fds, self._fd_pid = {}, os.getpid()
        fd = self._fds.get(shard)
        if fd is None:
            fd = self._fds[shard] = os.open(self.index.shard_path(shard), os.O_RDONLY)
        return fd

    def _order(self, epoch: int) -> np.ndarray:
        order = self._orders.get(epoch)
        if order is None:
            if len(self._orders) >= 2:
                self._orders.pop(min(self._orders))
            order = self._orders[epoch] = epoch_order(self.index, self.ids, self.seed, epoch, self.shuffle_buffer)
        return order

    def _load(self, sid: int):
        from PIL import Image

        ix = self.index
        fd = self._fd(int(ix.shard[sid]))
        data = read_member(fd, MemberRef(int(ix.image_offset[sid]), int(ix.image_size[sid])))
        caption = read_member(fd, MemberRef(int(ix.caption_offset[sid]), int(ix.caption_size[sid]))).decode("utf-8")
        img = Image.open(io.BytesIO(data), formats=_PIL_FORMATS.get(str(ix.image_ext[sid])))
        img.load()
        if img.mode != "RGB":
            img = img.convert("RGB")
        return img, caption

    def _sample(self, position: int) -> tuple[Any, str, int]:
        """The sample at a global position (or its replacement), and how many were skipped for it."""
        u = len(self.ids)
        epoch, j = divmod(position, u)
        order = self._order(epoch)
        skipped = 0
        for k in range(u):
            sid = int(order[(j + k) % u])
            try:
                img, caption = self._load(sid)
                return img, caption, skipped
            except (OSError, ValueError, SyntaxError, UnicodeDecodeError) as exc:
                skipped += 1
                log.warning("skipping sample %s of %s: %s", self.index.keys[sid],
                            self.index.shards[int(self.index.shard[sid])], exc)
        raise ConfigError(f"no sample of the {u} selected in {self.index.root} decodes")

    def _tokenize(self, captions: list[str]) -> torch.Tensor:
        """``tokenizer(captions)``, row by row from a per-process cache (open_clip tokenizers pad each
        caption to the context length on its own, so rows do not depend on the batch)."""
        cache = self._token_cache
        todo = list(dict.fromkeys(c for c in captions if c not in cache))
        if todo:
            if len(cache) + len(todo) > TOKEN_CACHE_SIZE:
                cache.clear()
            for c, row in zip(todo, self.tokenizer(todo)):
                cache[c] = row
        return torch.stack([cache[c] for c in captions])

    def batch(self, step: int):
        """This rank's batch of global step ``step``. Random transforms draw from torch's and Python's RNGs
        seeded by ``(seed, step, rank)`` (the caller's RNG states are restored afterwards), so a batch,
        augmentations included, is the same whatever the worker count and after a resume."""
        step_seed = int(np.random.SeedSequence([self.seed, step, self.rank, 0xA06]).generate_state(1)[0])
        py_state = random.getstate()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(step_seed)
            random.seed(step_seed)
            try:
                return self._batch(step)
            finally:
                random.setstate(py_state)

    def _batch(self, step: int):
        lo = step * self.global_batch
        hi = min(lo + self.global_batch, self.samples_seen)
        a, b = rank_slice(lo, hi, self.rank, self.world_size)
        images, captions, views, skipped = [], [], [], 0
        for p in range(a, b):
            img, caption, s = self._sample(p)
            skipped += s
            images.append(self.image_transform(img))
            captions.append(caption)
            if self.extra_views_transform is not None:
                v1, v2 = self.extra_views_transform(img)
                views.append(torch.stack((v1, v2)))
        if not images:  # a rank's share of a short last step can be empty: keep shapes, zero rows
            img, caption, _ = self._sample(0)
            x = self.image_transform(img)
            tokens = self.tokenizer([caption])
            extra = None
            if self.extra_views_transform is not None:
                extra = torch.stack(self.extra_views_transform(img))[None][:0]
            return x[None][:0], tokens[:0], extra, 0
        tokens = self._tokenize(captions)
        extra = torch.stack(views) if views else None
        return torch.stack(images), tokens, extra, skipped

    def __iter__(self) -> Iterator:
        info = get_worker_info()
        wid, nw = (info.id, info.num_workers) if info is not None else (0, 1)
        try:
            for step in range(self.start_step + wid, self.steps, nw):
                yield self.batch(step)
        finally:
            for fd in self._fds.values():
                os.close(fd)
            self._fds = {}


class TrainLoader:
    """Iterable of this rank's batches from the current data position to the end of the run.

    Attributes:
        samples_seen: global samples the whole run sees (all ranks, all epochs).
        global_batch_size: ``batch_size × world_size`` samples per step.
        steps: global steps of the run (the last one may be short).
        unique_samples / pool_size / quality_threshold: the selection (see :mod:`runners.data.quality`).
        epochs: ``samples_seen / unique_samples`` (float).
        skipped: corrupt samples skipped: found by the index scan plus images that failed to decode here.
    """

    def __init__(
        self,
        index: QualityIndex,
        selection: Selection,
        *,
        samples_seen: int,
        batch_size: int,
        image_transform: Callable,
        tokenizer: Callable,
        extra_views_transform: Callable | None = None,
        rank: int = 0,
        world_size: int = 1,
        workers: int = 2,
        seed: int = 0,
        shuffle_buffer: int = DEFAULT_SHUFFLE_BUFFER,
        pin_memory: bool = False,
        max_corrupt: float | None = None,
    ):
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ConfigError(f"batch_size {batch_size!r} must be a positive integer (samples per rank per step)")
        if not (isinstance(world_size, int) and world_size >= 1 and isinstance(rank, int) and 0 <= rank < world_size):
            raise ConfigError(f"rank {rank!r} / world_size {world_size!r}: need 0 <= rank < world_size")
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
            raise ConfigError(f"workers {workers!r} must be an integer >= 0")
        if shuffle_buffer < 1:
            raise ConfigError(f"shuffle_buffer {shuffle_buffer!r} must be >= 1")
        samples_seen = int(samples_seen)
        self.index = index
        self.selection = selection
        self.samples_seen = samples_seen
        self.batch_size = int(batch_size)
        self.world_size = world_size
        self.rank = rank
        self.global_batch_size = self.batch_size * world_size
        if samples_seen < self.global_batch_size:
            raise ConfigError(
                f"samples_seen {samples_seen} is below one global batch ({self.batch_size} × {world_size} ranks "
                f"= {self.global_batch_size}); raise samples_seen or lower batch_size"
            )
        self.steps = math.ceil(samples_seen / self.global_batch_size)
        self.image_transform = image_transform
        self.tokenizer = tokenizer
        self.extra_views_transform = extra_views_transform
        self.workers = workers
        self.seed = int(seed)
        self.shuffle_buffer = int(shuffle_buffer)
        self.pin_memory = pin_memory
        self.max_corrupt = max_corrupt_fraction(max_corrupt)
        self.decode_skipped = 0
        self._step = 0  # next global step to hand out
        self._rank_samples = 0  # samples this rank received in this process (for the corrupt-fraction check)
        log.info(
            "data: %d samples seen over %d unique samples = %.4g epochs (%d steps of %d, rank %d/%d, %d workers)",
            samples_seen, self.unique_samples, self.epochs, self.steps, self.global_batch_size, rank, world_size, workers,
        )

    # -- description
    @property
    def unique_samples(self) -> int:
        return self.selection.unique_samples

    @property
    def pool_size(self) -> int:
        return self.selection.pool_size

    @property
    def quality_threshold(self) -> float:
        return self.selection.threshold

    @property
    def epochs(self) -> float:
        """Passes over the unique subset that ``samples_seen`` implies (``samples_seen / unique_samples``)."""
        return self.samples_seen / self.unique_samples

    @property
    def skipped(self) -> int:
        return self.index.corrupt + self.decode_skipped

    @property
    def samples_consumed(self) -> int:
        """Global samples handed out so far (the data position)."""
        return min(self._step * self.global_batch_size, self.samples_seen)

    @property
    def step(self) -> int:
        """Global steps handed out so far."""
        return self._step

    def __len__(self) -> int:
        """Batches left from the current position (equal on every rank)."""
        return self.steps - self._step

    # -- resume
    def state_dict(self) -> dict:
        """The data position (plain values; store it in the checkpoint)."""
        return {
            "version": STATE_VERSION,
            "samples_consumed": self.samples_consumed,
            "step": self._step,
            "samples_seen": self.samples_seen,
            "global_batch_size": self.global_batch_size,
            "seed": self.seed,
            "selection": self.selection.digest(),
            "decode_skipped": self.decode_skipped,
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue from a saved position; refuses a state from a different data set, seed or batch size."""
        for key, mine in (("samples_seen", self.samples_seen), ("global_batch_size", self.global_batch_size),
                          ("seed", self.seed), ("selection", self.selection.digest())):
            if state.get(key) != mine:
                raise ConfigError(
                    f"cannot resume the data position: checkpoint has {key}={state.get(key)!r}, this run {mine!r} "
                    "(the data set, selection or batch size changed)"
                )
        consumed = int(state["samples_consumed"])
        if consumed % self.global_batch_size and consumed != self.samples_seen:
            raise ConfigError(f"data position {consumed} is not a multiple of the global batch {self.global_batch_size}")
        self._step = math.ceil(consumed / self.global_batch_size)
        self.decode_skipped = int(state.get("decode_skipped", 0))

    # -- iteration
    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]:
        stream = _BatchStream(self, self._step)
        if self._step >= self.steps:
            return
        if self.workers == 0:
            batches = iter(stream)
        else:
            batches = iter(DataLoader(
                stream, batch_size=None, num_workers=min(self.workers, self.steps - self._step),
                pin_memory=self.pin_memory, prefetch_factor=4, persistent_workers=False,
            ))
        for images, tokens, extra, skipped in batches:
            self._step += 1
            self._rank_samples += len(images)
            if skipped:
                self.decode_skipped += skipped
                check_corrupt(self.decode_skipped, self._rank_samples + self.decode_skipped,
                              self.index.root, limit=self.max_corrupt)
            yield images, tokens, extra


def build_train_loader(
    cfg,
    *,
    image_transform: Callable,
    tokenizer: Callable,
    extra_views_transform: Callable | None = None,
    rank: int = 0,
    world_size: int = 1,
    batch_size: int,
    shuffle_buffer: int = DEFAULT_SHUFFLE_BUFFER,
    pin_memory: bool | None = None,
) -> TrainLoader:
    """The train loader of a :class:`runners.config.RunConfig` (see the module docstring).

    Reads ``cfg.train_data``, ``quality_fraction``, ``unique_samples``, ``pool_size``, ``samples_seen``,
    ``seed``, ``workers``. ``batch_size`` is samples per rank per step (global batch =
    ``batch_size × world_size``). Raises :class:`ConfigError` (one line) before any training for a missing
    or empty shard folder, too many corrupt samples, impossible sizes or ``samples_seen`` below one batch.
    """
    index = load_quality_index(cfg.train_data)
    selection = select_subset(
        index,
        quality_fraction=cfg.quality_fraction,
        unique_samples=cfg.unique_samples,
        pool_size=cfg.pool_size,
        seed=cfg.seed,
    )
    if pin_memory is None:
        pin_memory = torch.cuda.is_available()
    return TrainLoader(
        index, selection,
        samples_seen=int(cfg.samples_seen), batch_size=batch_size, image_transform=image_transform,
        tokenizer=tokenizer, extra_views_transform=extra_views_transform, rank=rank, world_size=world_size,
        workers=int(getattr(cfg, "workers", 0)), seed=int(cfg.seed), shuffle_buffer=shuffle_buffer,
        pin_memory=pin_memory,
    )
