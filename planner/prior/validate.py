"""Honesty check of the built-in prior: held-out MAE and 95 % interval coverage per split, next to Cherti et
al.'s plain power law fitted to the same training rows. Prints a table (points of ImageNet zero-shot top-1).

    python -m planner.prior.validate [--bootstrap N]

Splits (all on the rows of ``published.csv`` the prior fits):

* ``fit-low/predict-high`` — train on the 75 % lowest total compute, predict the rest.
* ``leave-one-source-out`` — for each source (Cherti et al., OpenAI CLIP, DataComp, FLIP, SLIP), train on the
  others and predict it (a pool or strategy with no rows left is then a drawn assumption, as for a user's
  unknown pool); errors pooled over all sources, and per source in ``per_source``.
* ``cherti-34B`` — train on everything but the 3.4e10-samples runs of Cherti et al.'s grid (and ViT-H/14),
  predict them.
* ``held-out published`` — rows of ``published.csv`` not used by the prior (``used_in_prior`` 0), predicted
  by the full prior; skipped when there are none. The shipped table keeps 13 such runs from open_clip's
  results (architectures the prior has no rows of — OpenAI's ResNets, ConvNeXt-B/B-w, ViT-B/16+ —, scales
  beyond it — ViT-g/14 at 34B, ViT-bigG/14 at 39B samples — and DataComp-1B at 13B–34B samples).
  Goal: MAE ≤ 3 points, ≥ 75 % inside the 95 % intervals.

The saturating law's intervals include the bootstrap, the stated assumptions and the model discrepancy
(:func:`planner.scaling.discrepancy.discrepancy_sigma`: fitted per split, on that split's training rows only, by
maximum a posteriori of their leave-one-source-out residuals under a stated prior; a test run of a source
that is among the training rows — fit-low/predict-high, Cherti 34B — takes the known-source calibration,
one of a new source — leave one source out, the held-out published runs, every ``plan`` answer — the
leave-one-source-out one); Cherti et al.'s have the bootstrap only, as published. ``scale`` is the factor
the intervals' half-widths would need to cover 95 % of the split (below 1: wider than needed).
Goal: coverage ≥ 0.85 on every split; Cherti 34B MAE ≤ 1.0 point.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from planner.prior import published_rows
from planner.prior.build import KNOWN_POOLS, REFERENCE_POOL


def _splits(rows):
    from planner.scaling.data import build_features

    x = build_features(rows, reference_pool=REFERENCE_POOL)
    cut = np.quantile(x.total_gflops, 0.75)
    yield "fit-low/predict-high", [([r for r, c in zip(rows, x.total_gflops) if c <= cut],
                                    [r for r, c in zip(rows, x.total_gflops) if c > cut], "all")]
    sources = sorted({r["source"] for r in rows})
    yield "leave-one-source-out", [([r for r in rows if r["source"] != s], [r for r in rows if r["source"] == s], s)
                                   for s in sources]
    big = [r for r in rows if r["source"] == "published:cherti2023" and float(r["samples_seen"]) >= 3e10]
    yield "cherti-34B", [([r for r in rows if r not in big], big, "cherti2023")]


def _score(model, test) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    y = np.asarray([float(r["zeroshot_top1"]) for r in test])
    p = model.predict(test)
    return y, p.top1, p.ci_low, p.ci_high


def needed_scale(y, pred, lo, hi, level: float = 0.95) -> float:
    """The factor the intervals' half-widths (point to each end, on the side the result fell) would need to
    cover ``level`` of the results: 1 calibrated, below 1 wider than needed, above 1 too narrow."""
    side = np.where(y >= pred, hi - pred, pred - lo)
    ratio = np.abs(y - pred) / np.maximum(side, 1e-9)
    return float(np.quantile(ratio, level))


def _summary(split, form, n_train, y, pred, lo, hi, per_source=None) -> dict:
    d = (pred - y) * 100
    out = {"split": split, "form": form, "n_train": n_train, "n_test": len(y),
           "rmse_points": float(np.sqrt(np.mean(d * d))), "mae_points": float(np.mean(np.abs(d))),
           "max_abs_points": float(np.max(np.abs(d))), "coverage_95": float(np.mean((lo <= y) & (y <= hi))),
           "covered": int(np.sum((lo <= y) & (y <= hi))),
           "mean_width_points": float(np.mean(hi - lo) * 100), "needed_scale_95": needed_scale(y, pred, lo, hi)}
    if per_source:
        out["per_source"] = per_source
    return out


def validate(n_boot: int = 200, prior: dict | None = None) -> list[dict]:
    """One result dict per (split, form): RMSE/MAE/max error in points, coverage of the 95 % intervals.

    ``prior``: the FIT.json dict the held-out published rows are predicted with (default: the shipped
    ``prior_fit.json``; :mod:`planner.prior.build` passes the fit it is about to write)."""
    from planner.prior.build import PRIOR_ASSUMED
    from planner.scaling.fit import fit_rows
    from planner.scaling.predict import ScalingModel, load_model

    rows = published_rows(prior_only=True)
    out = []
    for split, parts in _splits(rows):
        for form in ("saturating", "cherti"):
            ys, ps, los, his, per, n_train = [], [], [], [], {}, 0
            for train, test, key in parts:
                kw = {} if form == "cherti" else {"fixed": PRIOR_ASSUMED}
                fit = fit_rows(train, form=form, n_boot=n_boot, reference_pool=REFERENCE_POOL, heldout=False,
                               discrepancy=form != "cherti", extra_pools=KNOWN_POOLS if form != "cherti" else (), **kw)
                model = ScalingModel.from_dict(fit.to_dict(), f"{split}/{form}")
                y, p, lo, hi = _score(model, test)
                ys.append(y), ps.append(p), los.append(lo), his.append(hi)
                n_train = max(n_train, len(train))
                if len(parts) > 1:
                    per[key] = _summary(split, form, len(train), y, p, lo, hi)
            out.append(_summary(split, fit.form, n_train, *(np.concatenate(v) for v in (ys, ps, los, his)),
                                per_source=per or None))
    held = [r for r in published_rows() if r.get("used_in_prior") != "1"]
    if held:
        model = load_model(None) if prior is None else ScalingModel.from_dict(prior, "prior being built")
        out.append(_summary("held-out published", "prior", len(rows), *_score(model, held)))
    return out


def print_table(res, file=sys.stdout) -> None:
    print(f"{'split':<22} {'form':<11} {'train':>5} {'test':>4} {'RMSE':>6} {'MAE':>6} {'max':>6} "
          f"{'95% cov':>8} {'width':>6} {'scale':>5}", file=file)

    def line(label, form, s):
        print(f"{label:<22} {form:<11} {s['n_train']:>5} {s['n_test']:>4} {s['rmse_points']:>6.2f} "
              f"{s['mae_points']:>6.2f} {s['max_abs_points']:>6.2f} {s['covered']:>3}/{s['n_test']:<4} "
              f"{s['mean_width_points']:>6.1f} {s.get('needed_scale_95', float('nan')):>5.2f}", file=file)

    for r in res:
        line(r["split"], r["form"], r)
        for key, s in (r.get("per_source") or {}).items():
            line(f"  {key}", "", s)
    print("errors and 95% interval widths in points of ImageNet zero-shot top-1 on held-out published runs; "
          "scale: the factor the intervals' half-widths would need to cover 95% of them (below 1: wider than "
          "needed)", file=file)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m planner.prior.validate", description=__doc__.splitlines()[0])
    ap.add_argument("--bootstrap", type=int, default=200, help="bootstrap draws per fit (default 200)")
    args = ap.parse_args(argv)
    np.seterr(all="ignore")
    print_table(validate(args.bootstrap))
    return 0


if __name__ == "__main__":
    sys.exit(main())
