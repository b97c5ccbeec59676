"""Recompute the ``quality`` of shards with a trained CLIP: image-text cosine similarity (the seed paper's filter).

For every good sample of a shard folder: ``quality = cos(f_img(image), f_txt(caption))`` under the
checkpoint (normalised embeddings, so in [-1, 1]). The shards are then rewritten, each one atomically
(temp file + fsync + rename) either in place or into ``out_dir`` under the same names, with the JSON of
every sample updated: ``quality`` (new score), ``quality_source`` (``"clip_cosine:<checkpoint file>"``)
and ``quality_prev`` (the score it replaced). Samples the reader skips as corrupt are dropped from the
rewritten shards (counted in the report). The quality index of the rewritten folder is invalidated.

The model comes from :func:`runners.models.load_trained` (the engine's factory). Torch is imported here
only.

Example::

    report = score_shards("demo/shards", checkpoint="runs/abc/final.pt", model="tiny-vit-28")
    report.filter  # precision/recall vs the ground-truth is_clean, when the shards carry it
"""

from __future__ import annotations

import io
import json
import logging
import os
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from budget.errors import ConfigError
from results.atomic import fsync_dir, write_atomic
from runners.data.quality import filter_metrics, invalidate, load_quality_index
from runners.data.shards import (
    MemberRef,
    decode_image,
    read_member,
    scan_shard,
    shard_stats_path,
)

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class ScoreReport:
    """What :func:`score_shards` did: counts, score summary and (when ``is_clean`` is known) filter quality."""

    shards_dir: str
    n_scored: int
    n_dropped: int
    seconds: float
    mean: float
    std: float
    filter: list[dict] = field(default_factory=list)
    auc: float | None = None


def load_model(model: str, checkpoint: str | os.PathLike, device: str = "cpu"):
    """``(model, preprocess, tokenizer)`` of a trained checkpoint, in eval mode on ``device``."""
    ckpt = Path(checkpoint).expanduser()
    if not ckpt.is_file():
        raise ConfigError(f"checkpoint {str(ckpt)!r} does not exist")
    from runners.models import load_trained

    net, preprocess, tokenizer = load_trained(model, str(ckpt), device=device)
    net.eval()
    return net, preprocess, tokenizer


def score_pairs(net, preprocess, tokenizer, images: list, captions: list[str], device: str = "cpu") -> np.ndarray:
    """Cosine similarity of each (PIL image, caption) pair under ``net``; float64 array."""
    import torch

    x = torch.stack([preprocess(im.convert("RGB") if im.mode != "RGB" else im) for im in images]).to(device)
    t = tokenizer(captions).to(device)
    with torch.no_grad():
        fi = net.encode_image(x, normalize=True)
        ft = net.encode_text(t, normalize=True)
    return (fi * ft).sum(-1).double().cpu().numpy()


def _rewrite_shard(src: Path, dst: Path, scores: dict[str, float], source: str) -> tuple[int, int]:
    """Copy ``src`` to ``dst`` (atomically) with new ``quality`` in each JSON; returns (kept, dropped)."""
    scan = scan_shard(src)
    tmp = dst.with_name(f".{dst.name}.tmp{os.getpid()}")
    kept = 0
    now = int(time.time())
    fd = os.open(src, os.O_RDONLY)
    try:
        with tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tar:
            for key, ext, img_ref, cap_ref, meta in scan.samples:
                if key not in scores:
                    continue
                meta = dict(meta)
                meta["quality_prev"] = meta.get("quality")
                meta["quality"] = float(scores[key])
                meta["quality_source"] = source
                members = ((f"{key}.{ext}", read_member(fd, img_ref)), (f"{key}.txt", read_member(fd, cap_ref)),
                           (f"{key}.json", json.dumps(meta, sort_keys=True).encode()))
                for name, data in members:
                    info = tarfile.TarInfo(name)
                    info.size, info.mtime, info.mode = len(data), now, 0o444
                    tar.addfile(info, io.BytesIO(data))
                kept += 1
    finally:
        os.close(fd)
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, dst)
    stats = {"count": kept, "successes": kept, "status": "success", "scored_with": source}
    write_atomic(shard_stats_path(dst), json.dumps(stats, indent=1).encode())
    return kept, len(scan.samples) + scan.corrupt - kept


def score_shards(
    shards_dir: str | os.PathLike,
    *,
    checkpoint: str | os.PathLike,
    model: str,
    out_dir: str | os.PathLike | None = None,
    device: str = "cpu",
    batch_size: int = 256,
    progress: ProgressFn | None = None,
) -> ScoreReport:
    """Score every sample of ``shards_dir`` with ``checkpoint`` and rewrite the shards (see module docstring).

    ``out_dir`` = a new folder (same shard names); ``None`` = rewrite in place. Returns a
    :class:`ScoreReport`; raises :class:`ConfigError` for a missing checkpoint, unknown model, no shards.
    """
    import torch

    if batch_size < 1:
        raise ConfigError(f"batch size {batch_size!r} must be >= 1")
    t0 = time.time()
    index = load_quality_index(shards_dir)
    net, preprocess, tokenizer = load_model(model, checkpoint, device=device)
    net.to(device)
    n = len(index)
    scores = np.full(n, np.nan)
    fds: dict[int, int] = {}
    dropped_keys: set[str] = set()
    try:
        with torch.no_grad():
            for lo in range(0, n, batch_size):
                ids = range(lo, min(lo + batch_size, n))
                images, captions, good = [], [], []
                for i in ids:
                    s = int(index.shard[i])
                    fd = fds.get(s) or fds.setdefault(s, os.open(index.shard_path(s), os.O_RDONLY))
                    try:
                        img = decode_image(read_member(fd, MemberRef(int(index.image_offset[i]), int(index.image_size[i]))))
                        cap = read_member(fd, MemberRef(int(index.caption_offset[i]), int(index.caption_size[i]))).decode("utf-8")
                    except (OSError, ValueError, UnicodeDecodeError):
                        dropped_keys.add(str(index.keys[i]))
                        continue
                    images.append(img)
                    captions.append(cap)
                    good.append(i)
                if good:
                    scores[good] = score_pairs(net, preprocess, tokenizer, images, captions, device)
                if progress is not None:
                    progress(min(lo + batch_size, n), n)
    finally:
        for fd in fds.values():
            os.close(fd)
    ok = ~np.isnan(scores)
    by_shard: dict[int, dict[str, float]] = {}
    for i in np.flatnonzero(ok):
        by_shard.setdefault(int(index.shard[i]), {})[str(index.keys[i])] = float(scores[i])
    src_root = Path(index.root)
    dst_root = Path(out_dir).expanduser() if out_dir is not None else src_root
    dst_root.mkdir(parents=True, exist_ok=True)
    source = f"clip_cosine:{Path(checkpoint).name}"
    for si, name in enumerate(index.shards):
        (dst_root / name).parent.mkdir(parents=True, exist_ok=True)
        _rewrite_shard(src_root / name, dst_root / name, by_shard.get(si, {}), source)
    n_dropped = index.corrupt + len(dropped_keys)
    fsync_dir(dst_root)
    invalidate(dst_root)
    filt, auc = [], None
    clean = index.is_clean[ok]
    if len(clean) and (clean >= 0).all():
        filt, auc = filter_metrics(scores[ok], clean.astype(bool))
    report = ScoreReport(shards_dir=str(dst_root), n_scored=int(ok.sum()), n_dropped=n_dropped,
                         seconds=time.time() - t0, mean=float(np.mean(scores[ok])) if ok.any() else float("nan"),
                         std=float(np.std(scores[ok])) if ok.any() else float("nan"), filter=filt, auc=auc)
    log.info("scored %d samples (%d dropped as corrupt) in %.1f s -> %s", report.n_scored, n_dropped,
             report.seconds, dst_root)
    return report
