"""The quality index of a shard folder, and quality-subset selection.

**Index.** One pass over the shards' members (no image decoding) records, per good sample, where its image
and caption lie in its tar and its JSON fields ``quality``, ``label``, ``is_clean``. It is cached as
``quality_index.json`` next to the shards, keyed by the shards' names, sizes and mtimes (ns): any
rewritten, added or removed shard invalidates it. When the shard folder is read-only the cache goes to
``$XDG_CACHE_HOME/clipbudget/quality_index/`` (``~/.cache/...``) under a hash of the folder path.
Corrupt samples found by the scan are counted in ``QualityIndex.corrupt`` and fail the build of the
index only past the tolerated fraction (see :mod:`runners.data.shards`).

**Selection** (the seed paper's protocol; design.md "Data quality")::

    pool     = every good sample, or the first `pool_size` of a fixed-seed (0) permutation of them:
               the pool is a property of the data, the same for every run of a study
    quality  = the top round(quality_fraction × |pool|) of the pool by `quality`, highest first,
               ties broken by key (ascending), so the subset is deterministic
    unique   = the first `unique_samples` of the quality subset *in an order seeded by the run's seed*:
               a uniformly random subset of it, not the best-scored end of the ranking
               (all of the quality subset when `unique_samples` is None)

No torch here. Example::

    index = load_quality_index("demo/shards")
    sel = select_subset(index, quality_fraction=0.4, unique_samples=5000, seed=0)
    sel.ids[:5], sel.threshold, index.quality[sel.ids].min()
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from budget.errors import ConfigError
from results.atomic import write_atomic
from runners.data.shards import check_corrupt, list_shards, scan_shard

log = logging.getLogger(__name__)

INDEX_NAME = "quality_index.json"
INDEX_VERSION = 1
#: Pool order seed: the pool (a subset of the shards when pool_size is given) is a property of the data.
POOL_SEED = 0
#: Fractions whose thresholds the index records (for people reading the JSON; selection recomputes).
THRESHOLD_FRACTIONS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def fingerprint(root: Path, shards: list[Path]) -> list[list]:
    """``[[name, size_bytes, mtime_ns], …]`` of the shards (names relative to ``root``): the index's cache key."""
    out = []
    for s in shards:
        st = s.stat()
        out.append([_rel(s, root), st.st_size, st.st_mtime_ns])
    return out


@dataclass(frozen=True, eq=False)
class QualityIndex:
    """Per-sample locations and metadata of a shard folder (arrays aligned; sample id = row).

    ``quality`` is NaN where a sample's JSON has none; ``label`` is -1 and ``is_clean`` -1 where unknown.
    Offsets and sizes are bytes within ``shards[shard[i]]``.
    """

    root: str
    shards: tuple[str, ...]
    keys: np.ndarray  # str
    shard: np.ndarray  # int32, index into shards
    image_ext: np.ndarray  # str
    image_offset: np.ndarray  # int64 bytes
    image_size: np.ndarray  # int64 bytes
    caption_offset: np.ndarray  # int64 bytes
    caption_size: np.ndarray  # int64 bytes
    quality: np.ndarray  # float64
    label: np.ndarray  # int64
    is_clean: np.ndarray  # int8: 1 clean, 0 corrupted, -1 unknown
    corrupt: int
    reasons: dict

    def __len__(self) -> int:
        return len(self.keys)

    def shard_path(self, i: int) -> Path:
        return Path(self.root) / self.shards[i]

    def ranking(self) -> np.ndarray:
        """Sample ids by quality, highest first, ties by key ascending (NaN quality last)."""
        q = np.where(np.isnan(self.quality), -np.inf, self.quality)
        return np.lexsort((self.keys, -q))

    def threshold(self, fraction: float) -> float:
        """The lowest quality inside the top ``fraction`` of all samples."""
        k = _top_count(fraction, len(self))
        return float(self.quality[self.ranking()[k - 1]])


def _top_count(fraction: float, n: int) -> int:
    if not (isinstance(fraction, (int, float)) and 0.0 < fraction <= 1.0):
        raise ConfigError(f"quality_fraction {fraction!r} is outside (0, 1]")
    return max(1, min(n, round(fraction * n)))


def _resolve(train_data: str | os.PathLike) -> tuple[Path, list[Path], Path]:
    """``(root, shards, index file)``: ``root`` is the shards' common folder. The index is
    ``root/quality_index.json`` when the shards are all of ``root``'s, else (a brace pattern naming a
    subset) ``root/quality_index.<hash of the names>.json``, so two subsets never evict each other."""
    shards = list_shards(train_data)
    root = Path(os.path.commonpath([str(s.parent.resolve()) for s in shards]))
    whole = sorted(q for q in root.iterdir() if q.suffix == ".tar" and q.is_file() and not q.name.startswith("."))
    if [s.resolve() for s in shards] == [q.resolve() for q in whole]:
        return root, shards, root / INDEX_NAME
    digest = hashlib.sha256("\n".join(_rel(s, root) for s in shards).encode()).hexdigest()[:12]
    return root, shards, root / f"quality_index.{digest}.json"


def _rel(shard: Path, root: Path) -> str:
    return os.path.relpath(shard.resolve(), root)


def index_path(train_data: str | os.PathLike) -> Path:
    """Where the quality index of ``train_data`` (a folder or pattern) is cached when its folder is writable."""
    return _resolve(train_data)[2]


def _fallback_path(primary: Path) -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    digest = hashlib.sha256(str(primary.resolve()).encode()).hexdigest()[:16]
    return base / "clipbudget" / "quality_index" / f"{digest}.json"


def invalidate(shard_dir: str | os.PathLike) -> None:
    """Remove every cached index of the shard folder ``shard_dir``; the next load rebuilds it."""
    root = Path(shard_dir).expanduser()
    for p in [*root.glob("quality_index*.json"), _fallback_path(root / INDEX_NAME)]:
        try:
            p.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:  # read-only folder: the fingerprint check invalidates it anyway
            log.debug("could not remove %s: %s", p, exc)


def _read_cached(path: Path, fp: list) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if data.get("version") != INDEX_VERSION or data.get("fingerprint") != fp:
        return None
    return data


def _write_cached(path: Path, data: dict) -> bool:
    try:
        write_atomic(path, json.dumps(data, separators=(",", ":")), durable=False)  # a cache
        return True
    except OSError as exc:
        log.debug("cannot write %s: %s", path, exc)
        return False


def _build(root: Path, shards: list[Path], fp: list, max_corrupt: float | None) -> dict:
    cols: dict[str, list] = {k: [] for k in ("key", "shard", "image_ext", "image_offset", "image_size",
                                             "caption_offset", "caption_size", "quality", "label", "is_clean")}
    corrupt = 0
    reasons: dict[str, int] = {}
    for si, shard in enumerate(shards):
        scan = scan_shard(shard)
        corrupt += scan.corrupt
        for k, v in scan.reasons.items():
            reasons[k] = reasons.get(k, 0) + v
        for key, ext, img, cap, meta in scan.samples:
            q = meta.get("quality")
            try:
                q = float(q) if q is not None else None
                if q is not None and not math.isfinite(q):
                    q = None
            except (TypeError, ValueError):
                q = None
            label = meta.get("label")
            clean = meta.get("is_clean")
            cols["key"].append(key)
            cols["shard"].append(si)
            cols["image_ext"].append(ext)
            cols["image_offset"].append(img.offset)
            cols["image_size"].append(img.size)
            cols["caption_offset"].append(cap.offset)
            cols["caption_size"].append(cap.size)
            cols["quality"].append(q)
            cols["label"].append(int(label) if isinstance(label, (int, float)) and not isinstance(label, bool) else -1)
            cols["is_clean"].append(-1 if clean is None else int(bool(clean)))
    n = len(cols["key"])
    check_corrupt(corrupt, n + corrupt, str(root), limit=max_corrupt, final=True)
    if corrupt:
        log.warning("%s: skipped %d corrupt sample(s) of %d (%s)", root, corrupt, n + corrupt,
                    ", ".join(f"{k}: {v}" for k, v in sorted(reasons.items())))
    q = np.array([np.nan if v is None else v for v in cols["quality"]], dtype=np.float64)
    order = np.lexsort((np.array(cols["key"]), -np.where(np.isnan(q), -np.inf, q))) if n else np.array([], int)
    thresholds = {str(f): float(q[order[_top_count(f, n) - 1]]) for f in THRESHOLD_FRACTIONS} if n else {}
    return {"version": INDEX_VERSION, "root": str(root), "fingerprint": fp, "shards": [f[0] for f in fp],
            "n_samples": n, "corrupt": corrupt, "reasons": reasons, "thresholds": thresholds, "columns": cols}


def load_quality_index(
    shard_dir: str | os.PathLike, *, refresh: bool = False, max_corrupt: float | None = None
) -> QualityIndex:
    """The (cached) quality index of a shard folder or pattern; builds and caches it when absent or stale.

    Raises :class:`ConfigError` for a folder without shards or with no good sample, and
    :class:`runners.data.shards.CorruptDataError` past the tolerated corrupt fraction.
    """
    root, shards, primary = _resolve(shard_dir)
    fp = fingerprint(root, shards)
    data = None
    fallback = _fallback_path(primary)
    if not refresh:
        data = _read_cached(primary, fp) or _read_cached(fallback, fp)
    if data is None:
        log.info("indexing %d shard(s) in %s", len(shards), root)
        data = _build(root, shards, fp, max_corrupt)
        if not _write_cached(primary, data) and not _write_cached(fallback, data):
            log.warning("could not cache the quality index of %s (read-only folder and cache)", root)
    else:
        check_corrupt(data["corrupt"], data["n_samples"] + data["corrupt"], str(root), limit=max_corrupt, final=True)
    if data["n_samples"] == 0:
        raise ConfigError(f"train data folder {str(root)!r}: its {len(shards)} shard(s) hold no readable sample")
    c = data["columns"]
    return QualityIndex(
        root=str(root),
        shards=tuple(data["shards"]),
        keys=np.array(c["key"]),
        shard=np.asarray(c["shard"], dtype=np.int32),
        image_ext=np.array(c["image_ext"]),
        image_offset=np.asarray(c["image_offset"], dtype=np.int64),
        image_size=np.asarray(c["image_size"], dtype=np.int64),
        caption_offset=np.asarray(c["caption_offset"], dtype=np.int64),
        caption_size=np.asarray(c["caption_size"], dtype=np.int64),
        quality=np.array([np.nan if v is None else v for v in c["quality"]], dtype=np.float64),
        label=np.asarray(c["label"], dtype=np.int64),
        is_clean=np.asarray(c["is_clean"], dtype=np.int8),
        corrupt=int(data["corrupt"]),
        reasons=dict(data["reasons"]),
    )


@dataclass(frozen=True, eq=False)
class Selection:
    """The samples a run trains on: ``ids`` (rows of the index, in the seeded subset order).

    ``threshold`` = the lowest quality admitted by ``quality_fraction``; ``quality_size`` = samples in the
    quality subset (before ``unique_samples`` cut it).
    """

    ids: np.ndarray
    pool_size: int
    quality_fraction: float
    quality_size: int
    threshold: float
    seed: int

    @property
    def unique_samples(self) -> int:
        return len(self.ids)

    def digest(self) -> str:
        """A short hash of the selected ids (stored with the loader state to catch a changed data set)."""
        return hashlib.sha256(np.ascontiguousarray(self.ids, dtype=np.int64).tobytes()).hexdigest()[:16]


def select_subset(
    index: QualityIndex,
    *,
    quality_fraction: float = 1.0,
    unique_samples: int | None = None,
    pool_size: int | None = None,
    seed: int = 0,
) -> Selection:
    """Choose the training subset (see the module docstring). One-line :class:`ConfigError` on bad sizes."""
    n = len(index)
    if pool_size is None:
        pool = np.arange(n)
    else:
        if isinstance(pool_size, bool) or not isinstance(pool_size, (int, np.integer)) or not 1 <= pool_size <= n:
            raise ConfigError(f"pool_size {pool_size!r} is outside 1..{n} (the good samples in {index.root})")
        pool = np.sort(np.random.default_rng(POOL_SEED).permutation(n)[: int(pool_size)])
    k = _top_count(quality_fraction, len(pool))
    q = index.quality[pool]
    if quality_fraction < 1.0 and np.isnan(q).any():
        missing = int(np.isnan(q).sum())
        raise ConfigError(
            f"{missing} sample(s) in {index.root} have no 'quality' in their JSON; quality_fraction "
            f"{quality_fraction} needs one (run 'clipbudget data score')"
        )
    ranked = pool[np.lexsort((index.keys[pool], -np.where(np.isnan(q), -np.inf, q)))]
    top = ranked[:k]
    threshold = float(index.quality[top[-1]])
    if unique_samples is None:
        unique = k
    else:
        if isinstance(unique_samples, bool) or not isinstance(unique_samples, (int, np.integer)) or unique_samples < 1:
            raise ConfigError(f"unique_samples {unique_samples!r} must be a positive integer")
        if unique_samples > k:
            raise ConfigError(
                f"unique_samples {unique_samples} exceeds the {k} samples in the top {quality_fraction:g} "
                f"of the pool ({len(pool)} samples); use at most {k} or a larger quality_fraction"
            )
        unique = int(unique_samples)
    order = np.random.default_rng(np.random.SeedSequence([int(seed), 0x5E1EC7])).permutation(k)
    ids = top[order[:unique]]
    log.info("selected %d unique samples: top %.3g of a %d-sample pool (quality >= %.4g)",
             unique, quality_fraction, len(pool), threshold)
    return Selection(ids=ids.astype(np.int64), pool_size=len(pool), quality_fraction=float(quality_fraction),
                     quality_size=k, threshold=threshold, seed=int(seed))


def filter_metrics(
    quality: np.ndarray, is_clean: np.ndarray, fractions: tuple[float, ...] = (0.3, 0.4, 0.5, 0.7)
) -> tuple[list[dict], float | None]:
    """How well keeping the top fraction by ``quality`` recovers the clean pairs.

    Returns ``(rows, auc)``: one row per kept fraction (plus the clean fraction itself, where precision =
    recall) with ``keep_fraction``, ``kept``, ``precision`` (clean among kept) and ``recall`` (kept among
    clean); ``auc`` = probability that a clean pair outscores a corrupted one (ties count half), ``None``
    when one class is absent. Ranking ties are broken by position (stable), as the selection breaks them
    by key.

    >>> rows, auc = filter_metrics(np.array([0.9, 0.8, 0.1, 0.2]), np.array([True, True, False, False]), (0.5,))
    >>> rows[0]["precision"], rows[0]["recall"], auc
    (1.0, 1.0, 1.0)
    """
    q = np.asarray(quality, dtype=np.float64)
    clean = np.asarray(is_clean, dtype=bool)
    n, n_clean = len(q), int(clean.sum())
    if n == 0:
        return [], None
    order = np.argsort(-q, kind="stable")
    cum_clean = np.cumsum(clean[order])
    fracs = sorted(set(fractions) | ({round(n_clean / n, 4)} if 0 < n_clean < n else set()))
    rows = []
    for f in fracs:
        k = max(1, min(n, round(f * n)))
        tp = int(cum_clean[k - 1])
        rows.append({"keep_fraction": float(f), "kept": k, "precision": tp / k,
                     "recall": tp / n_clean if n_clean else float("nan")})
    auc = None
    if 0 < n_clean < n:
        _, inverse, counts = np.unique(q, return_inverse=True, return_counts=True)
        ranks = (np.cumsum(counts) - (counts - 1) / 2.0)[inverse]  # 1-based ranks, ties averaged
        auc = float((ranks[clean].sum() - n_clean * (n_clean + 1) / 2) / (n_clean * (n - n_clean)))
    return rows, auc
