# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     name: python3
#     display_name: Python 3
# ---

# %% [markdown]
# # What a compute budget buys: the seed paper's findings through the built-in prior
#
# Li, Xie, Cubuk, "Scaling (Down) CLIP" (arXiv 2404.08197): data quality beats quantity, the best
# architecture depends on data and compute, and the best strategy depends on the budget. This notebook
# asks the built-in prior (`planner/prior/prior_fit.json`, fitted to the published numbers in
# `planner/prior/published.csv`) the paper's questions and draws the answers, with 95 % bootstrap bands.
# Pass `--fit FIT.json` (your own `clipbudget fit`) to see the same plots from your results.
#
# Open it in Jupyter with jupytext, or run it as a script:
#
#     .venv/bin/python notebooks/budget_frontier.py --out figures/
#
# The tests run it (`tests/test_notebooks.py`). Compute is in the paper's convention throughout: per-sample
# forward GFLOPs (image + text tower, FLOPs = 2 × MACs) × samples seen.

# %%
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from budget.units import parse_budget  # noqa: E402
from planner.plan import enumerate_plan  # noqa: E402
from planner.scaling.predict import load_model  # noqa: E402
from planner.scaling.rank import rank_plan  # noqa: E402

POOL = 3.4e9  # pairs, the paper's WebLI subset size

args = argparse.ArgumentParser(description=__doc__)
args.add_argument("--out", default="notebook-figures", help="folder for the PNG figures and findings.json")
args.add_argument("--fit", default=None, help="FIT.json from `clipbudget fit` (default: the built-in prior)")
opts, _ = args.parse_known_args(sys.argv[1:] if __name__ == "__main__" else [])
out = Path(opts.out)
out.mkdir(parents=True, exist_ok=True)
law = load_model(opts.fit)
print(f"scaling law: {law.name} (form {law.form.name})")


def predict(rows: list[dict]):
    """Top-1 and 95 % band (fractions) for a list of configurations."""
    return law.predict(law.features(rows))


def band(ax, x, rows, label):
    p = predict(rows)
    ax.plot(x, 100 * p.top1, label=label)
    ax.fill_between(x, 100 * p.ci_low, 100 * p.ci_high, alpha=0.2)
    return p


findings: dict[str, object] = {}

# %% [markdown]
# ## 1. Data quality beats quantity (one epoch, ViT-B-32)
#
# Train on the top `q` share of the pool, once. Smaller, cleaner subsets win until they get too small.

# %%
q = np.linspace(0.1, 1.0, 19)
fig, ax = plt.subplots(figsize=(5, 3.5))
p = band(ax, q, [{"model": "ViT-B-32", "samples_seen": POOL * f, "unique_samples": POOL * f,
                  "quality_fraction": f} for f in q], "ViT-B-32, one epoch")
ax.set(xlabel="quality fraction of a 3.4e9 pool", ylabel="zero-shot top-1 (%)", title="Quality vs quantity")
fig.tight_layout()
fig.savefig(out / "quality.png", dpi=120)
findings["best_quality_fraction_one_epoch_vit_b32"] = float(q[int(np.argmax(p.top1))])
print("best quality fraction (ViT-B-32, one epoch):", findings["best_quality_fraction_one_epoch_vit_b32"])

# %% [markdown]
# ## 2. The best architecture depends on how much data is seen
#
# One epoch over `S` unique samples: small models win on little data, large ones on much.

# %%
seen = np.logspace(np.log10(2.5e7), np.log10(3.4e9), 25)
fig, ax = plt.subplots(figsize=(5, 3.5))
curves = {m: band(ax, seen, [{"model": m, "samples_seen": s, "unique_samples": s} for s in seen], m).top1
          for m in ("ViT-S-16", "ViT-B-16", "ViT-L-16", "RN50")}
ax.set(xscale="log", xlabel="samples seen (one epoch)", ylabel="zero-shot top-1 (%)", title="Model vs data")
ax.legend()
fig.tight_layout()
fig.savefig(out / "models.png", dpi=120)
best = [max(curves, key=lambda m: curves[m][i]) for i in range(len(seen))]
findings["best_model_at_2.5e7"] = best[0]
findings["best_model_at_3.4e9"] = best[-1]
print("best model at 2.5e7 / 3.4e9 samples:", best[0], "/", best[-1])

# %% [markdown]
# ## 3. Strategies at equal compute
#
# Each strategy gets the same GFLOPs; SLIP's extra views cost samples, FLIP's masking buys more of them.

# %%
budgets = np.logspace(8, 11, 13)  # GFLOPs
fig, ax = plt.subplots(figsize=(5, 3.5))
best_strategy = []
for strategy in ("clip", "flip", "slip", "clip_aug"):
    plan = enumerate_plan(parse_budget(gflops=float(budgets[0])), models=("ViT-B-16",), strategies=(strategy,),
                          quality_fractions=(1.0,), pool_size=POOL)
    per_sample = plan.rows[0].gflops_per_sample
    rows = [{"model": "ViT-B-16", "strategy": strategy, "samples_seen": b / per_sample,
             "unique_samples": min(b / per_sample, POOL)} for b in budgets]
    band(ax, budgets, rows, strategy)
ax.set(xscale="log", xlabel="budget (GFLOPs, paper convention)", ylabel="zero-shot top-1 (%)",
       title="ViT-B-16 by strategy, equal compute")
ax.legend()
fig.tight_layout()
fig.savefig(out / "strategies.png", dpi=120)

# %% [markdown]
# ## 4. What `clipbudget plan` recommends, budget by budget
#
# The whole default grid (models × strategies × quality fractions), ranked by the prior at each budget.

# %%
frontier = []
for b in budgets:
    plan = enumerate_plan(parse_budget(gflops=float(b)), pool_size=POOL)
    top = rank_plan(plan.rows, fit=opts.fit).rows[0]
    frontier.append({k: top[k] for k in ("model", "strategy", "quality_fraction", "samples_seen",
                                         "predicted_top1", "ci_low", "ci_high", "p_best")} | {"gflops": float(b)})
fig, ax = plt.subplots(figsize=(5, 3.5))
ax.plot(budgets, [100 * r["predicted_top1"] for r in frontier], marker="o")
ax.fill_between(budgets, [100 * r["ci_low"] for r in frontier], [100 * r["ci_high"] for r in frontier], alpha=0.2)
for r in frontier[::3]:
    ax.annotate(f"{r['model']}\n{r['strategy']} q={r['quality_fraction']:g}", (r["gflops"], 100 * r["predicted_top1"]),
                fontsize=6, textcoords="offset points", xytext=(0, 6), ha="center")
ax.set(xscale="log", xlabel="budget (GFLOPs, paper convention)", ylabel="zero-shot top-1 (%)",
       title="Recommended configuration by budget")
fig.tight_layout()
fig.savefig(out / "frontier.png", dpi=120)
findings["frontier"] = frontier
for r in frontier:
    print(f"{r['gflops']:9.3g} GFLOPs  {r['model']:<10} {r['strategy']:<8} q={r['quality_fraction']:<4g} "
          f"{100 * r['predicted_top1']:5.1f} % [{100 * r['ci_low']:.1f}, {100 * r['ci_high']:.1f}]  p_best {r['p_best']:.2f}")

(out / "findings.json").write_text(json.dumps(findings, indent=2))
plt.close("all")
