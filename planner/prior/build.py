"""Regenerate the built-in prior fit: ``python -m planner.prior.build [--bootstrap N] [--seed S]``.

Fits the ``saturating`` form of :mod:`planner.scaling.forms` to the rows of ``published.csv`` marked
``used_in_prior`` (LAION is the reference pool, so predictions are for a LAION-like web pool) and writes
``prior_fit.json``: point estimate, bootstrap draws (every stated assumption drawn from its range in every
draw), the model discrepancy, held-out errors of this form and of Cherti et al.'s power law on the same
data, and the per-split validation of :mod:`planner.prior.validate` (``--no-validate`` skips it).

``gamma`` (larger models need more samples) is fitted: the published grid gives < 0 (bigger models are
*more* sample-efficient at ≥ 3.75e8 samples); the seed paper's finding 3 (ViT-L/16 worst below 1e8) enters
as the stated small-sample part ``gamma_small``/``gamma_fade`` (:mod:`planner.scaling.terms`); the prior
records where the ViT-L/16–ViT-B/16 crossover falls at either end of the ``gamma`` range
(``gamma_from_finding``).
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
#: The pool ``plan``/``predict`` assume when none is named: a raw web pool ranked by an image-text score, as
#: the plan's quality fractions assume. DataComp's CommonPool is the published such pool: its CLIP-score
#: ladders are measured (and fitted) at four scales from ~1e8 to ~1e12 GFLOPs, so answers there are anchored.
DEFAULT_DATA_POOL = "commonpool"
#: Pools a user may name with ``--data-pool`` although the prior has no rows of them (drawn as assumptions).
#: ``laion`` is LAION-400M and its subsets (Schuhmann et al. 2021: pairs with a CLIP ViT-B/32 image-text
#: similarity >= 0.3), ``laion2b`` LAION-2B-en (Schuhmann et al. 2022, LAION-5B: >= 0.28, a looser filter of
#: another crawl). They are two pools because their runs say so: at equal samples seen Cherti et al.'s
#: LAION-400M runs match or beat its LAION-2B runs (ViT-B/16 at 2.5e9 samples: 62.7 vs 61.8 %), though the
#: 2B runs repeat their data 5x less; as one pool the fit over-predicts every 2B run.
KNOWN_POOLS = ("laion", "laion2b", "wit", "commonpool", "yfcc15m", "cc12m", "cc3m", "webli")


def crossover_gap(fit, samples: float, gamma: float | None = None) -> float:
    """ViT-L/16 minus ViT-B/16 predicted top-1 at ``samples`` one-epoch samples (optionally at ``gamma``)."""
    from planner.scaling.predict import ScalingModel

    model = ScalingModel.from_dict(fit.to_dict(), "candidate")
    theta = model.theta.copy()
    if gamma is not None:
        theta[model.form.index("gamma")] = gamma
    from planner.scaling.forms import accuracy, log_error

    x = model.features([{"model": m, "samples_seen": samples, "unique_samples": samples}
                        for m in ("ViT-L-16", "ViT-B-16")])
    acc = accuracy(model.form, log_error(model.form, theta[None], x)[0])
    return float(acc[0] - acc[1])


def _crossover(fit, gamma: float) -> float | None:
    """One-epoch samples above which ViT-L/16 beats ViT-B/16 at ``gamma`` (None beyond 1e4–1e11)."""
    grid = np.logspace(4, 11, 71)
    above = [s for s in grid if crossover_gap(fit, s, gamma) > 0]
    return float(above[0]) if above else None


#: Terms the prior holds as stated assumptions although its rows could fit them: none since ``gamma`` is
#: fitted (kept for callers: ``fit --prior`` and the validation pass it as ``fixed``).
PRIOR_ASSUMED: dict[str, float] = {}


def build(n_boot: int = 1000, seed: int = 0, validate: bool = True) -> dict:
    """Fit the prior and return the FIT.json dict (nothing written)."""
    from planner.scaling.fit import fit_rows

    rows = published_rows(prior_only=True)
    fit = fit_rows(rows, form="saturating", n_boot=n_boot, seed=seed, fixed=PRIOR_ASSUMED,
                   reference_pool=REFERENCE_POOL, extra_pools=KNOWN_POOLS)
    base = fit_rows(rows, form="cherti", n_boot=200, seed=seed, reference_pool=REFERENCE_POOL, discrepancy=False)
    d = fit.to_dict()
    d["candidates"]["cherti"] = base.candidates["cherti"]
    d["cherti_baseline"] = {"params": base.params, "intervals_95": {k: list(v) for k, v in base.intervals().items()}}
    g_lo, g_hi = terms.param("gamma").assumed
    d["gamma_from_finding"] = {"range": [g_lo, g_hi], "citation": terms.CITATIONS["gamma"],
                               "crossover_samples_at_range_ends": [_crossover(fit, g) for g in (g_lo, g_hi)]}
    d["excluded_published_rows"] = [r["run_id"] for r in published_rows() if r.get("used_in_prior") != "1"]
    d["name"] = "clipbudget built-in prior"
    d["default_data_pool"] = DEFAULT_DATA_POOL
    if validate:
        from planner.prior.validate import validate as run_validation

        d["validation"] = run_validation(n_boot=200, prior=d)
    return d


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m planner.prior.build", description=__doc__.splitlines()[0])
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(PRIOR_FIT_JSON))
    ap.add_argument("--no-validate", action="store_true", help="skip the per-split validation")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    d = build(args.bootstrap, args.seed, validate=not args.no_validate)
    with open(args.out, "w", encoding="utf-8") as fh:
        json.dump(d, fh, separators=(",", ":"))
    log.info("wrote %s: %s form, train RMSE %.2f points, discrepancy sigma %.3f", args.out, d["form"],
             d["train_error"]["rmse_points"], d["discrepancy"]["sigma_log_error"])
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
