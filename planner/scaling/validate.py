"""Honesty check: fit on low-compute published results, predict the held-out high-compute ones, and compare
the saturating law with Cherti et al.'s plain power law on the same split. Prints a table (points of top-1).

    python -m planner.scaling.validate

Splits:

* ``cherti-34B``: Cherti et al.'s LAION grid; train on 2.5e9 and 1.28e10 samples seen, predict the 3.4e10
  runs (ViT-B/32, B/16, L/14 × 80M/400M/2B, ViT-H/14).
* ``prior-top25%``: every row of the built-in prior; train on the 75 % lowest total compute, predict the rest.

``gamma`` is held at the prior's finding-based value in the saturating fits (finding terms are not data).
"""

from __future__ import annotations

import sys

import numpy as np


def _split_rows():
    from planner.prior import published_rows

    rows = published_rows(prior_only=True)
    cherti = [r for r in rows if r["source"] == "published:cherti2023"]
    yield "cherti-34B", [r for r in cherti if float(r["samples_seen"]) < 3e10], \
        [r for r in cherti if float(r["samples_seen"]) >= 3e10]
    from planner.scaling.data import build_features

    x = build_features(rows, reference_pool="laion")
    cut = np.quantile(x.total_gflops, 0.75)
    yield "prior-top25%", [r for r, c in zip(rows, x.total_gflops) if c <= cut], \
        [r for r, c in zip(rows, x.total_gflops) if c > cut]


def validate(n_boot: int = 200) -> list[dict]:
    """One result dict per (split, form): RMSE/MAE/max error in points, interval coverage of the held-out rows."""
    from planner.scaling.fit import fit_rows
    from planner.scaling.predict import ScalingModel, load_model

    gamma = float(load_model(None).info["params"]["gamma"])
    out = []
    for split, train, test in _split_rows():
        y = np.asarray([float(r["zeroshot_top1"]) for r in test])
        for form in ("saturating", "cherti"):
            fit = fit_rows(train, form=form, n_boot=n_boot, fixed={"gamma": gamma}, reference_pool="laion",
                           heldout=False)
            model = ScalingModel.from_dict(fit.to_dict(), f"{split}/{form}")
            p = model.predict(test)
            d = (p.top1 - y) * 100
            out.append({"split": split, "form": fit.form, "n_train": len(train), "n_test": len(test),
                        "rmse_points": float(np.sqrt(np.mean(d * d))), "mae_points": float(np.mean(np.abs(d))),
                        "max_abs_points": float(np.max(np.abs(d))),
                        "coverage_95": float(np.mean((p.ci_low <= y) & (y <= p.ci_high)))})
    return out


def main() -> int:
    res = validate()
    print(f"{'split':<14} {'form':<11} {'train':>5} {'test':>4} {'RMSE':>6} {'MAE':>6} {'max':>6} {'95% cov':>8}")
    for r in res:
        print(f"{r['split']:<14} {r['form']:<11} {r['n_train']:>5} {r['n_test']:>4} {r['rmse_points']:>6.2f} "
              f"{r['mae_points']:>6.2f} {r['max_abs_points']:>6.2f} {r['coverage_95']:>8.2f}")
    print("errors in points of ImageNet zero-shot top-1 on held-out high-compute published runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
