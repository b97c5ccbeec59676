"""Rank a plan's rows by predicted zero-shot top-1 with intervals and the probability of being best.

``rank_plan(rows, fit=None)`` is what ``clipbudget plan`` calls: ``rows`` are :class:`planner.plan.PlanRow`
objects or dicts with the same keys; ``fit`` is ``None`` (the built-in prior) or a FIT.json path.
Vectorised over rows × bootstrap draws; numpy only.

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
from planner.scaling.predict import load_model, term_citations


@dataclass(frozen=True)
class Ranking:
    """Rows best first, each with ``predicted_top1``, ``ci_low``, ``ci_high`` (95 %), ``p_best``,
    ``recommended`` (exactly one True) and ``extrapolation``; plus the fit's name, warnings and sources."""

    rows: list[dict]
    fit_name: str
    warnings: list[str] = field(default_factory=list)
    extrapolation: bool = False
    sources: list[str] = field(default_factory=list)


def _as_dict(row) -> dict:
    if is_dataclass(row) and not isinstance(row, type):
        return asdict(row)
    if isinstance(row, Mapping):
        return dict(row)
    raise ConfigError(f"cannot rank a {type(row).__name__}; give PlanRow objects or dicts")


def rank_plan(rows: Sequence, fit: str | os.PathLike | None = None) -> Ranking:
    """Predict and rank ``rows`` (see module docstring). An empty ``rows`` gives an empty ranking."""
    model = load_model(fit)
    dicts = [_as_dict(r) for r in rows]
    if not dicts:
        return Ranking(rows=[], fit_name=model.name, warnings=[], extrapolation=False, sources=list(model.sources))
    x = model.features(dicts)
    p = model.predict(x)
    # p_best: share of draws in which the row has the highest accuracy (ties split evenly)
    best = p.draws.max(axis=1, keepdims=True)
    is_best = p.draws >= best - 1e-12
    p_best = (is_best / is_best.sum(axis=1, keepdims=True)).mean(axis=0)
    hours = np.asarray([float(d.get("gpu_hours") or 0.0) for d in dicts])
    order = np.lexsort((hours, -np.round(p.top1, 12)))
    out = []
    used_terms: set[str] = set()
    for rank, i in enumerate(order):
        d = dict(dicts[i])
        d.update(predicted_top1=float(p.top1[i]), ci_low=float(p.ci_low[i]), ci_high=float(p.ci_high[i]),
                 p_best=float(p_best[i]), recommended=rank == 0, extrapolation=bool(p.extrapolation[i]),
                 finding_terms=list(p.finding_terms[i]))
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
    fixed_in_top = [t for t in out[0]["finding_terms"] if t != "gamma"]
    if fixed_in_top:
        warnings.append("the recommendation rests on finding-based terms (no published numbers): "
                        + ", ".join(fixed_in_top))
    return Ranking(rows=out, fit_name=model.name, warnings=warnings, extrapolation=extra,
                   sources=list(model.sources) + term_citations(sorted(used_terms)))
