"""Regenerate the built-in prior fit: ``python -m planner.prior.build [--bootstrap N] [--seed S]``.

Fits the ``saturating`` form of :mod:`planner.scaling.forms` to the rows of ``published.csv`` marked
``used_in_prior`` (LAION is the reference pool, so predictions are for a LAION-like web pool), with
``gamma`` set by the finding of :data:`planner.scaling.terms.L_B_CROSSOVER_SAMPLES` (bisection), and writes
``prior_fit.json`` (point estimate, bootstrap draws, held-out errors of this form and of Cherti et al.'s
power law on the same data). Takes about a minute on two cores.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

import numpy as np

from planner.prior import PRIOR_FIT_JSON, published_rows
from planner.scaling import terms

log = logging.getLogger(__name__)

REFERENCE_POOL = "laion"


def crossover_gap(fit) -> float:
    """ViT-L/16 minus ViT-B/16 predicted top-1 at the crossover's one-epoch sample count."""
    from planner.scaling.predict import ScalingModel

    model = ScalingModel.from_dict(fit.to_dict(), "candidate")
    s = terms.L_B_CROSSOVER_SAMPLES
    p = model.predict([{"model": m, "samples_seen": s, "unique_samples": s} for m in ("ViT-L-16", "ViT-B-16")])
    return float(p.top1[0] - p.top1[1])


def fit_gamma(rows, lo: float = 0.0, hi: float = 1.0, steps: int = 12) -> float:
    """``gamma`` at which ViT-L/16 and ViT-B/16 tie at L_B_CROSSOVER_SAMPLES (bisection)."""
    from planner.scaling.fit import fit_rows

    def gap(g):
        f = fit_rows(rows, form="saturating", n_boot=10, fixed={"gamma": g}, reference_pool=REFERENCE_POOL,
                     heldout=False)
        return crossover_gap(f)

    g_lo, g_hi = gap(lo), gap(hi)
    if g_lo < 0:  # L already worse without any penalty
        return lo
    if g_hi > 0:
        log.warning("gamma=%s cannot place the crossover; using the bound", hi)
        return hi
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        if gap(mid) > 0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def build(n_boot: int = 1000, seed: int = 0) -> dict:
    """Fit the prior and return the FIT.json dict (nothing written)."""
    from planner.scaling.fit import fit_rows

    rows = published_rows(prior_only=True)
    gamma = fit_gamma(rows)
    log.info("gamma from the ViT-L/ViT-B crossover: %.4f", gamma)
    fit = fit_rows(rows, form="saturating", n_boot=n_boot, seed=seed, fixed={"gamma": gamma},
                   reference_pool=REFERENCE_POOL)
    base = fit_rows(rows, form="cherti", n_boot=200, seed=seed, reference_pool=REFERENCE_POOL)
    d = fit.to_dict()
    d["candidates"]["cherti"] = base.candidates["cherti"]
    d["cherti_baseline"] = {"params": base.params, "intervals_95": {k: list(v) for k, v in base.intervals().items()}}
    d["gamma_from_finding"] = {"gamma": gamma, "crossover_samples": terms.L_B_CROSSOVER_SAMPLES,
                               "citation": terms.CITATIONS["gamma"]}
    d["excluded_published_rows"] = [r["run_id"] for r in published_rows() if r.get("used_in_prior") != "1"]
    d["name"] = "clipbudget built-in prior"
    return d


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m planner.prior.build", description=__doc__.splitlines()[0])
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(PRIOR_FIT_JSON))
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    d = build(args.bootstrap, args.seed)
    with open(args.out, "w", encoding="utf-8") as fh:
        json.dump(d, fh, separators=(",", ":"))
    log.info("wrote %s: %s form, train RMSE %.2f points, held-out %s", args.out, d["form"],
             d["train_error"]["rmse_points"], {k: round(v["rmse_points"], 2) for k, v in d["heldout"].items()})
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
