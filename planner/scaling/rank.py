"""Rank a plan's rows by predicted zero-shot top-1 with intervals, the probability of being best and ties.

``rank_plan(rows, fit=None)`` is what ``clipbudget plan`` calls: ``rows`` are :class:`planner.plan.PlanRow`
objects or dicts with the same keys (optionally ``data_pool``, ``batch_size``); ``fit`` is ``None`` (the
built-in prior) or a FIT.json path. Vectorised over rows × bootstrap draws; numpy only.

Each ranked row gains: ``predicted_top1``, ``ci_low``, ``ci_high`` (95 % predictive interval, fractions, in
the fit's metric), ``p_best`` (share of draws in which the row is best; each draw holds the parameters,
every stated assumption and a model-discrepancy draw — a part shared by all rows and a part per
configuration, :meth:`~planner.scaling.predict.ScalingModel.discrepancy_draws` — so rows closer than the
discrepancy that widens the intervals are not ranked with confidence), ``recommended`` (exactly one row),
``tied_with_best`` (True when the uncertainty cannot separate the row from the recommended one: it beats it
in at least :data:`TIE_SHARE` of the same paired draws, or their predictions differ by less than
:data:`TIE_POINTS`),
``extrapolation`` and ``finding_terms`` (the stated assumptions the row rests on). The :class:`Ranking`
carries ``assumptions`` (every stated assumption behind the ranked rows, with value, range and citation,
``discrepancy_shared`` among them when the fit has a discrepancy),
``tied`` (how many rows are tied with the best), ``metric`` and the fit's warnings and sources.

Example:
    >>> r = rank_plan([{"model": "ViT-B-32", "strategy": "clip", "samples_seen": 1e9, "unique_samples": 1e9,
    ...                 "quality_fraction": 1.0, "gpu_hours": 10.0},
    ...                {"model": "ViT-B-32", "strategy": "clip", "samples_seen": 1e8, "unique_samples": 1e8,
    ...                 "quality_fraction": 1.0, "gpu_hours": 1.0}])
    >>> [row["samples_seen"] for row in r.rows], r.rows[0]["recommended"], round(sum(x["p_best"] for x in r.rows), 6)
    ([1000000000.0, 100000000.0], True, 1.0)
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, is_dataclass

import numpy as np

from budget.errors import ConfigError
from planner.scaling import terms
from planner.scaling.predict import load_model, term_citations

#: A row that beats the recommended one in at least this share of paired draws is tied with it.
TIE_SHARE = 0.05
#: Rows whose point predictions differ by less than this (fraction; DataComp's seed-to-seed spread is ≈0.2
#: points on ImageNet) are tied whatever the draws say.
TIE_POINTS = 0.002


@dataclass(frozen=True)
class Ranking:
    """Rows best first (see the module docstring for their keys); plus the fit's name, warnings, its data
    sources, the citations of the finding-based terms the rows use, the stated assumptions behind the rows, the
    number of rows tied with the best and the metric."""

    rows: list[dict]
    fit_name: str
    warnings: list[str] = field(default_factory=list)
    extrapolation: bool = False
    sources: list[str] = field(default_factory=list)
    citations: list[str] = field(default_factory=list)  # "term (params): citation"
    assumptions: list[dict] = field(default_factory=list)
    tied: int = 0
    metric: str = "zeroshot_top1"
    eval_dataset: str | None = None  # the fit's evaluation set when it is not the prior's ImageNet


def _as_dict(row) -> dict:
    if is_dataclass(row) and not isinstance(row, type):
        return asdict(row)
    if isinstance(row, Mapping):
        return dict(row)
    raise ConfigError(f"cannot rank a {type(row).__name__}; give PlanRow objects or dicts")


def rank_plan(rows: Sequence, fit: str | os.PathLike | None = None, data_pool: str | None = None) -> Ranking:
    """Predict and rank ``rows`` (see module docstring). An empty ``rows`` gives an empty ranking.

    ``data_pool`` names the pool the rows train on where a row does not say (default: the fit's
    :attr:`~planner.scaling.predict.ScalingModel.default_pool`).
    """
    model = load_model(fit)
    pool = model.default_pool if data_pool is None else data_pool
    dicts = [_as_dict(r) for r in rows]
    for d in dicts:
        if not d.get("data_pool"):
            d["data_pool"] = pool
    if not dicts:
        return Ranking(rows=[], fit_name=model.name, warnings=[], extrapolation=False, sources=list(model.sources))
    x = model.features(dicts)
    p = model.predict(x)
    # p_best: share of draws in which the row has the highest accuracy (ties split evenly); the draws hold
    # parameters, assumptions and the shared + per-configuration model discrepancy
    draws = p.draws if p.ranked is None else p.ranked
    best = draws.max(axis=1, keepdims=True)
    is_best = draws >= best - 1e-12
    p_best = (is_best / is_best.sum(axis=1, keepdims=True)).mean(axis=0)
    hours = np.asarray([float(d.get("gpu_hours") or 0.0) for d in dicts])
    order = np.lexsort((hours, -np.round(p.top1, 12)))
    top = order[0]
    beats = (draws >= draws[:, top : top + 1] - 1e-12).mean(axis=0)  # paired: same draw, every row
    tied = (beats >= TIE_SHARE) | (np.abs(p.top1 - p.top1[top]) < TIE_POINTS)
    out = []
    used_terms: set[str] = set()
    for rank, i in enumerate(order):
        d = dict(dicts[i])
        d.update(predicted_top1=float(p.top1[i]), ci_low=float(p.ci_low[i]), ci_high=float(p.ci_high[i]),
                 p_best=float(p_best[i]), recommended=rank == 0, tied_with_best=bool(tied[i]),
                 extrapolation=bool(p.extrapolation[i]), finding_terms=list(p.finding_terms[i]))
        used_terms.update(p.finding_terms[i])
        out.append(d)
    warnings = []
    extra = bool(p.extrapolation.any())
    if extra:
        lo, hi = model.compute_range_gflops
        warnings.append(f"{int(p.extrapolation.sum())} of {len(dicts)} rows lie outside the fitted compute range "
                        f"({lo:.3g}–{hi:.3g} GFLOPs): their predictions are extrapolations")
    if out[0]["extrapolation"]:
        warnings.append("the recommended row is an extrapolation beyond the fitted data")
    masks = x.mask[x.is_flip > 0]
    if len(masks) and masks.max() > terms.FLIP_MAX_PUBLISHED_MASK:
        warnings.append(f"FLIP mask {masks.max():g} is beyond the largest published mask "
                        f"({terms.FLIP_MAX_PUBLISHED_MASK:g}, FLIP Table 1): the mask term is extrapolated")
    n_tied = int(tied.sum()) - 1
    if n_tied:
        warnings.append(f"{n_tied} other row{'s' if n_tied > 1 else ''} cannot be told apart from the recommended "
                        "one within the uncertainty (tied_with_best): treat them as equally good")
    disc = ([terms.discrepancy_assumption(model.discrepancy_shared_range)]
            if p.ranked is not None and p.ranked is not p.draws else [])
    fixed_in_top = list(out[0]["finding_terms"])
    if fixed_in_top:
        warnings.append("the recommendation rests on stated assumptions (drawn from their ranges in every draw): "
                        + ", ".join(fixed_in_top))
    return Ranking(rows=out, fit_name=model.name, warnings=warnings, extrapolation=extra,
                   sources=list(model.sources), citations=term_citations(sorted(used_terms)),
                   assumptions=model.assumptions(sorted(used_terms)) + disc, tied=n_tied,
                   metric=str(model.info.get("metric", "zeroshot_top1")), eval_dataset=model.info.get("eval_dataset"))


#: Catalog models named as the nearest to a compute-optimal size (ViTs at 224 px with open_clip's text tower).
OPTIMUM_CANDIDATES = ("ViT-Ti-16", "ViT-S-32", "ViT-S-16", "ViT-B-32", "ViT-B-16", "ViT-L-16", "ViT-L-14", "ViT-H-14",
                      "ViT-g-14", "ViT-bigG-14")


def _catalog_sizes() -> list[tuple[float, float, str]]:
    """(image-tower GFLOPs, both towers' GFLOPs, name) per sample of :data:`OPTIMUM_CANDIDATES`, plain CLIP,
    sorted by size."""
    from budget.cost import sample_cost_of

    out = []
    for name in OPTIMUM_CANDIDATES:
        try:
            c = sample_cost_of({"model": name, "strategy": "clip"})
        except ConfigError:
            continue
        out.append((float(c.image_gflops), float(c.forward_gflops), name))
    return sorted(out)


def compute_optimal(budget_gflops: float, fit: str | os.PathLike | None = None, data_pool: str | None = None, *,
                    pool_size: float | None = None, quality_fraction: float = 1.0) -> dict:
    """The model size and samples seen the law implies at ``budget_gflops`` (plain CLIP, paper convention),
    whether or not a catalog model has that size (as the LAION scaling-law code's D_opt(C)).

    Scans the capacity (image-tower forward GFLOPs per sample) on a log grid; a size's per-sample cost adds
    a text tower from a power law fitted to the catalog ViTs' (open_clip's text towers grow with the image
    tower),
    ``S = budget / cost`` samples seen and ``min(S, pool_size * quality_fraction)`` unique (one epoch when
    ``pool_size`` is None). Returns ``gflops_per_sample`` (both towers, the cost) and
    ``image_gflops_per_sample`` (the capacity) and ``samples_seen`` at the point estimate's optimum,
    ``predicted_top1``, the 95 % range of the optimal ``gflops_per_sample`` over the bootstrap/assumption
    draws (``gflops_per_sample_95``), and ``nearest_models`` (the catalog ViTs just below and above, with their
    GFLOPs per sample).
    """
    from planner.scaling.data import Features
    from planner.scaling.forms import accuracy, log_error

    model = load_model(fit)
    pool = model.default_pool if data_pool is None else data_pool
    key = "pool:" if not pool or pool == model.reference_pool else f"pool:{pool}"
    sizes = _catalog_sizes()
    caps = np.logspace(-2, 3.7, 115)
    slope, icpt = np.polyfit(np.log([s[0] for s in sizes]), np.log([s[1] - s[0] for s in sizes]), 1)
    text = np.exp(icpt + slope * np.log(caps))  # smooth: a power law through the catalog's text towers
    cost = caps + text
    seen = budget_gflops / cost
    unique = np.minimum(seen, pool_size * quality_fraction) if pool_size else seen
    n = len(caps)
    zeros = np.zeros(n)
    x = Features(model=np.asarray(["(size)"] * n), capacity=caps, compute_gmacs=cost / 2 * seen,
                 total_gflops=cost * seen, seen=seen, unique=unique, quality=np.full(n, quality_fraction),
                 mask=zeros, batch=zeros, conv=zeros, is_slip=zeros, is_flip=zeros, is_aug=zeros,
                 strategy=np.asarray(["clip"] * n), pool_key=np.asarray([key] * n), y=None)
    point = accuracy(model.form, log_error(model.form, model.theta[None], x)[0])
    draws = accuracy(model.form, log_error(model.form, model.draws, x))
    best = int(np.argmax(point))
    opt = cost[np.argmax(draws, axis=1)]
    below = [s for s in sizes if s[1] <= cost[best]]
    above = [s for s in sizes if s[1] > cost[best]]
    nearest = ([below[-1]] if below else []) + ([above[0]] if above else [])
    return {"budget_gflops": float(budget_gflops), "gflops_per_sample": float(cost[best]),
            "image_gflops_per_sample": float(caps[best]),
            "samples_seen": float(seen[best]), "predicted_top1": float(point[best]),
            "gflops_per_sample_95": [float(np.percentile(opt, 2.5)), float(np.percentile(opt, 97.5))],
            "at_grid_edge": best in (0, n - 1), "data_pool": pool or model.reference_pool,
            "nearest_models": [{"model": m, "gflops_per_sample": float(g)} for _, g, m in nearest]}
