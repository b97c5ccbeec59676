"""Benchmark: ``fit`` on 200 rows with 1,000 bootstraps (goal: under 20 s on the 2-core dev machine), and
prediction/ranking speed of the prior. Prints times and ratios measured side by side in one run; timings
on a shared machine are noisy.

    python benchmarks/bench_fit.py [--rows 200] [--bootstrap 1000]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import numpy as np


def synthetic_rows(n: int, seed: int = 0) -> list[dict]:
    """``n`` rows drawn from the prior itself (plus 1 % noise): models × samples × unique × quality."""
    from planner.scaling.predict import load_model

    rng = np.random.default_rng(seed)
    models = ["ViT-S-16", "ViT-B-32", "ViT-B-16", "ViT-L-16", "ViT-L-14", "RN50"]
    rows = []
    for _ in range(n):
        s = 10 ** rng.uniform(7.5, 10.5)
        rows.append({"model": str(rng.choice(models)), "samples_seen": s,
                     "unique_samples": s / 2 ** rng.integers(0, 6), "quality_fraction": float(rng.choice([0.4, 1.0]))})
    pred = load_model(None).predict(rows).top1
    for r, p in zip(rows, pred):
        r["zeroshot_top1"] = float(np.clip(p + rng.normal(0, 0.01), 0.002, 0.99))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=200)
    ap.add_argument("--bootstrap", type=int, default=1000)
    args = ap.parse_args()
    from planner.scaling.fit import fit_rows

    rows = synthetic_rows(args.rows)
    fit_rows(rows[:20], form="cherti", n_boot=10, heldout=False)  # warm imports
    t = time.perf_counter()
    fit = fit_rows(rows, n_boot=args.bootstrap)
    total = time.perf_counter() - t
    t = time.perf_counter()
    fit_rows(rows, n_boot=args.bootstrap, form=fit.form, heldout=False)
    no_heldout = time.perf_counter() - t
    print(f"fit {args.rows} rows, {args.bootstrap} bootstraps, form auto -> {fit.form} ({len(fit.free)} free): "
          f"{total:.1f} s total ({total / 20:.2f}x the 20 s goal); chosen form without held-out search: {no_heldout:.1f} s")
    from planner.prior import published_rows

    pooled = rows + published_rows(prior_only=True)  # what `clipbudget fit` fits for an ImageNet study
    t = time.perf_counter()
    fit = fit_rows(pooled, n_boot=args.bootstrap)
    with_prior = time.perf_counter() - t
    print(f"with the prior's {len(pooled) - len(rows)} published rows ({len(fit.sources)} sources: the discrepancy "
          f"holds out each source and each source's top-compute quarter): {with_prior:.1f} s "
          f"({with_prior / 20:.2f}x the 20 s goal; {with_prior / total:.1f}x the study alone)")

    def cold(code: str) -> float:
        best = np.inf
        for _ in range(3):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True)
            best = min(best, time.perf_counter() - t)
        return best

    pandas = cold("import pandas")
    rank = cold("from planner.scaling.rank import rank_plan; rank_plan([{'model': m, 'samples_seen': s, "
                "'unique_samples': s} for m in ('ViT-B-32', 'ViT-B-16', 'ViT-L-16') for s in (1e8, 1e9, 1e10)] * 17)")
    plan = cold("import sys; from planner.cli.main import main; import io, contextlib; "
                "contextlib.redirect_stdout(io.StringIO()).__enter__(); sys.exit(main(['plan', '--gflops', '1e10']))")
    print(f"cold process: import pandas {pandas:.2f} s; rank 153 rows with the prior {rank:.2f} s "
          f"(ratio {rank / pandas:.2f}); clipbudget plan --gflops 1e10 {plan:.2f} s (ratio {plan / pandas:.2f}, goal <= 2)")


if __name__ == "__main__":
    main()
