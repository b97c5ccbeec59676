"""Rows → feature arrays for the scaling forms (numpy only; model costs from :mod:`budget.flops`).

A *row* is a mapping with at least ``model``, ``samples_seen``, ``unique_samples``; optional ``strategy``
(default ``clip``), ``quality_fraction`` (1), ``image_size``/``context_length`` (the model's own, i.e. 224
and 77 for the published models), ``flip_mask_ratio`` (0.5 for flip, else 0), ``batch_size``, ``data_pool``, ``quality_filter`` (``score``, the
default: the subset is the top ``quality_fraction`` by an image-text score; any other name: a filter of another
kind, :data:`SCORE_FILTERS`) and the metric
(``zeroshot_top1``, a fraction). Bad values raise :class:`budget.errors.ConfigError` naming the row.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from budget.coerce import to_float
from budget.errors import ConfigError
from budget.vocabulary import STRATEGIES, default_flip_mask_ratio

REQUIRED = ("model", "samples_seen", "unique_samples")
#: ``quality_filter`` values meaning a top-``quality_fraction`` cut of the pool ranked by an image-text score
#: (the quality term's ladder; also the default when a row does not say). Any other value (``basic``,
#: ``text``, ``image``, ``laion`` …) is a filter of another kind (the ``filter`` term).
SCORE_FILTERS = ("score", "clip_score", "clip-score")
CONV_FAMILIES = ("modified_resnet",)


@dataclass(frozen=True)
class Features:
    """Per-row arrays (length n). Units: counts (samples), GFLOPs / GMACs as named."""

    model: np.ndarray  # str
    capacity: np.ndarray  # plain CLIP per-sample image-tower forward GFLOPs at the image size (N before /10)
    compute_gmacs: np.ndarray  # strategy-adjusted per-sample forward GMACs × samples seen
    total_gflops: np.ndarray  # strategy-adjusted per-sample forward GFLOPs × samples seen (paper convention)
    seen: np.ndarray
    unique: np.ndarray
    quality: np.ndarray
    mask: np.ndarray
    batch: np.ndarray  # contrastive batch size (pairs); 0 where the row does not say
    conv: np.ndarray  # 1.0 for convolutional image towers
    is_slip: np.ndarray
    is_flip: np.ndarray
    is_aug: np.ndarray
    strategy: np.ndarray  # str
    pool_key: np.ndarray  # "pool:<name>" (str)
    y: np.ndarray | None  # metric (fraction) or None
    other_filter: np.ndarray | None = None  # 1.0 where the quality subset is not a top-q cut of a score
    source: np.ndarray | None = None  # str: the row's ``source`` (``own`` where it names none)

    def __len__(self) -> int:
        return len(self.seen)

    def take(self, idx) -> Features:
        """The rows at ``idx`` (indices or boolean mask)."""
        kw = {k: (None if v is None else v[idx]) for k, v in self.__dict__.items()}
        return Features(**kw)


@lru_cache(maxsize=512)
def model_costs(model: str, strategy: str, image_size: int | None, context_length: int | None,
                mask: float) -> tuple[float, float, bool]:
    """(plain CLIP image-tower forward GFLOPs at the given image size — the capacity —, strategy-adjusted
    forward GFLOPs of both towers at the given sizes — the cost —, is-convolutional) per sample."""
    from budget.catalog import get_model
    from budget.cost import sample_cost_of

    spec = get_model(model)
    sizes = {"model": spec, "image_size": image_size, "context_length": context_length}
    # capacity: the image tower alone (the seed paper keeps one text tower and varies the image tower), so a
    # shorter text changes the cost of a run but not what the model can learn. The published models' text
    # towers grow with their image towers, so a separate text-capacity term is not identifiable from them
    # (tried: it trades off against the image exponent); the image tower carries the capacity.
    plain = sample_cost_of({"model": spec, "image_size": image_size, "strategy": "clip"})
    adj = sample_cost_of({**sizes, "strategy": strategy, "flip_mask_ratio": mask if strategy == "flip" else None})
    return float(plain.image_gflops), float(adj.forward_gflops), spec.family in CONV_FAMILIES


def _missing(v) -> bool:
    if v is None:
        return True
    try:
        return isinstance(v, float) and math.isnan(v) or (isinstance(v, str) and v.strip() == "")
    except TypeError:
        return False


def _number(row: Mapping, key: str, where: str, default=None, *, integer_ok=True) -> float:
    v = row.get(key, None)
    if _missing(v):
        if default is None:
            raise ConfigError(f"{where}: column '{key}' is missing or empty (required: {', '.join(REQUIRED)})")
        return float(default)
    try:
        return to_float(v)
    except ValueError as exc:
        reason = "must be finite" if str(exc) == "not finite" else "is not a number"
        raise ConfigError(f"{where}: {key}={v!r} {reason}") from None


def build_features(rows: Iterable[Mapping], *, metric: str | None = None, reference_pool: str = "") -> Features:
    """Validate ``rows`` and compute their features.

    ``metric`` (e.g. ``"zeroshot_top1"``) is read into ``y`` when given; it must lie in (0, 1).
    Rows whose ``data_pool`` equals ``reference_pool`` (or is empty) get the reference pool key ``"pool:"``.

    Example:
        >>> f = build_features([{"model": "ViT-B-32", "samples_seen": 2.5e9, "unique_samples": 4e8}])
        >>> round(float(f.capacity[0]), 2), float(f.seen[0] / f.unique[0])
        (8.82, 6.25)
    """
    cols: dict[str, list] = {k: [] for k in Features.__dataclass_fields__ if k != "y"}
    ys: list[float] = []
    for i, row in enumerate(rows):
        where = f"row {i + 1}" + (f" ({row.get('source')})" if row.get("source") else "")
        model = row.get("model")
        if _missing(model):
            raise ConfigError(f"{where}: column 'model' is missing or empty (required: {', '.join(REQUIRED)})")
        strategy = row.get("strategy")
        strategy = "clip" if _missing(strategy) else str(strategy)
        if strategy not in STRATEGIES:
            raise ConfigError(f"{where}: unknown strategy '{strategy}'; choose one of: {', '.join(STRATEGIES)}")
        seen = _number(row, "samples_seen", where)
        unique = _number(row, "unique_samples", where)
        if seen < 1 or unique < 1:
            raise ConfigError(f"{where}: samples_seen={seen:g} and unique_samples={unique:g} must be >= 1")
        q = _number(row, "quality_fraction", where, 1.0)
        if not 0 < q <= 1:
            raise ConfigError(f"{where}: quality_fraction={q:g} must be in (0, 1]")
        image = row.get("image_size")
        ctx = row.get("context_length")
        image = None if _missing(image) else int(_number(row, "image_size", where))
        ctx = None if _missing(ctx) else int(_number(row, "context_length", where))
        mask = _number(row, "flip_mask_ratio", where, default_flip_mask_ratio(strategy))
        if strategy == "flip" and not 0 <= mask < 1:
            raise ConfigError(f"{where}: flip_mask_ratio={mask:g} must be in [0, 1)")
        if strategy != "flip":
            mask = 0.0
        plain, adj, conv = model_costs(str(model), strategy, image, ctx, round(mask, 6))
        pool = row.get("data_pool")
        pool = "" if _missing(pool) or str(pool) == reference_pool else str(pool)
        cols["model"].append(str(model))
        cols["capacity"].append(plain)
        cols["compute_gmacs"].append(adj / 2.0 * seen)
        cols["total_gflops"].append(adj * seen)
        cols["seen"].append(seen)
        cols["unique"].append(unique)
        cols["quality"].append(q)
        cols["mask"].append(mask)
        cols["conv"].append(1.0 if conv else 0.0)
        cols["is_slip"].append(1.0 if strategy == "slip" else 0.0)
        cols["is_flip"].append(1.0 if strategy == "flip" else 0.0)
        cols["is_aug"].append(1.0 if strategy == "clip_aug" else 0.0)
        cols["strategy"].append(strategy)
        cols["pool_key"].append(f"pool:{pool}")
        cols["batch"].append(_number(row, "batch_size", where, 0.0))
        kind = row.get("quality_filter")
        cols["other_filter"].append(0.0 if _missing(kind) or str(kind) in SCORE_FILTERS or q >= 1.0 else 1.0)
        cols["source"].append("own" if _missing(row.get("source")) else str(row.get("source")))
        if metric is not None:
            yv = _number(row, metric, where)
            if not 0 < yv < 1:
                raise ConfigError(f"{where}: {metric}={yv:g} must be a fraction in (0, 1) (accuracies are fractions)")
            ys.append(yv)
    if not cols["model"]:
        raise ConfigError("no rows to fit or predict")
    arrays = {k: np.asarray(v, dtype=object if k in ("model", "strategy") else None) for k, v in cols.items()}
    arrays["model"] = np.asarray(cols["model"], dtype=str)
    arrays["strategy"] = np.asarray(cols["strategy"], dtype=str)
    arrays["pool_key"] = np.asarray(cols["pool_key"], dtype=str)
    arrays["source"] = np.asarray(cols["source"], dtype=str)
    return Features(**arrays, y=np.asarray(ys, dtype=float) if metric is not None else None)


def data_ranges(x: Features) -> dict:
    """Per pool key (and ``"*"`` for all rows): log10 ranges of total compute (GFLOPs) and unique samples;
    per strategy other than plain CLIP with rows (``"strategy:<name>"``): the log10 range of samples seen."""
    u = np.log10(np.minimum(x.unique, x.seen))
    c = np.log10(x.total_gflops)
    out = {"*": [float(c.min()), float(c.max()), float(u.min()), float(u.max())]}
    for k in np.unique(x.pool_key):
        sel = x.pool_key == k
        out[str(k)] = [float(c[sel].min()), float(c[sel].max()), float(u[sel].min()), float(u[sel].max())]
    s = np.log10(x.seen)
    for k in np.unique(x.strategy):
        if k != "clip":
            sel = x.strategy == k
            out[f"strategy:{k}"] = [float(s[sel].min()), float(s[sel].max())]
    return out


#: Most decades of samples seen outside a strategy's own rows that count as extrapolation. A strategy term is
#: a bounded multiplier of the data (FLIP's fitted gain at mask 0.5 ≈ e^0.6, SLIP's ≈ e^1): however far from
#: its rows, getting it wrong moves a prediction at most as much as switching the whole term on or off,
#: ``beta`` × 0.6–1 ≈ 0.15–0.25 on the form's scale, which the per-decade discrepancy (≈ 0.2) reaches at one
#: decade. Beyond it the strategy's rows say no more; the compute and unique-sample decades still count.
STRATEGY_DECADES_CAP = 1.0


def extrapolation_parts(x: Features, ranges: Mapping) -> tuple[np.ndarray, np.ndarray]:
    """Per row: (decades of total compute, decades of unique samples) outside the fitted rows of its pool
    (0 inside; a pool without rows uses the range of all rows, ``"*"``). A row of a strategy with fitted
    rows (``"strategy:<name>"`` in ``ranges``: FLIP, SLIP) adds to the first the decades of samples seen
    outside that strategy's rows (its term was measured there only), at most :data:`STRATEGY_DECADES_CAP`."""
    u = np.log10(np.minimum(x.unique, x.seen))
    c = np.log10(x.total_gflops)
    s = np.log10(x.seen)
    dc, du = np.zeros(len(x)), np.zeros(len(x))
    for i, k in enumerate(x.pool_key):
        c_lo, c_hi, u_lo, u_hi = ranges.get(str(k), ranges["*"])
        dc[i] = max(0.0, c_lo - c[i], c[i] - c_hi)
        du[i] = max(0.0, u_lo - u[i], u[i] - u_hi)
        strat = ranges.get(f"strategy:{x.strategy[i]}")
        if strat:
            dc[i] += min(STRATEGY_DECADES_CAP, max(0.0, strat[0] - s[i], s[i] - strat[1]))
    return dc, du


def extrapolation_decades(x: Features, ranges: Mapping) -> np.ndarray:
    """Per row: decades outside the fitted rows of its pool (compute plus unique samples; 0 inside)."""
    dc, du = extrapolation_parts(x, ranges)
    return dc + du


def data_hash(rows: Sequence[Mapping], columns: Sequence[str]) -> str:
    """sha256 (16 hex) of the given columns of ``rows``, order-independent."""
    canon = sorted(json.dumps([str(r.get(c)) for c in columns]) for r in rows)
    return hashlib.sha256("\n".join(canon).encode()).hexdigest()[:16]


def select_frontier(x: Features, how: str = "all") -> np.ndarray:
    """Indices of the rows to fit: ``all``; ``pareto`` (no other row has ≤ compute and ≥ accuracy);
    ``hull`` (upper convex hull of accuracy vs log10 compute)."""
    n = len(x)
    if how == "all" or x.y is None:
        return np.arange(n)
    c = np.log10(x.total_gflops)
    order = np.lexsort((-x.y, c))
    if how == "pareto":
        keep, best = [], -np.inf
        for i in order:
            if x.y[i] > best:
                keep.append(i)
                best = x.y[i]
        return np.sort(np.asarray(keep, dtype=int))
    if how == "hull":
        pareto = select_frontier(x, "pareto")
        pts = sorted(pareto, key=lambda i: c[i])
        hull: list[int] = []
        for i in pts:  # monotone chain, upper hull
            while len(hull) >= 2:
                a, b = hull[-2], hull[-1]
                cross = (c[b] - c[a]) * (x.y[i] - x.y[a]) - (x.y[b] - x.y[a]) * (c[i] - c[a])
                if cross >= 0:
                    hull.pop()
                else:
                    break
            hull.append(i)
        return np.sort(np.asarray(hull, dtype=int))
    raise ConfigError(f"unknown frontier '{how}'; choose one of: all, pareto, hull")
