# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     name: python3
#     display_name: Python 3
# ---

# %% [markdown]
# # A study, end to end, on this machine's CPU
#
# plan → grid → run → collect → fit → report, at CPU scale on offline data: Fashion-MNIST from Debian's
# `dataset-fashion-mnist` with 60 % of the captions corrupted (so data quality matters), a tiny 28-px ViT, a
# handful of optimizer steps per run. The numbers are tiny; the workflow is the one a real study runs on a
# cluster (swap `executor="debug"` for `"slurm"` and the sizes for real ones).
#
#     .venv/bin/python notebooks/study_walkthrough.py --out study/      # ~1 minute on 2 cores
#     jupytext --to ipynb notebooks/study_walkthrough.py && jupyter nbconvert --execute --to html notebooks/study_walkthrough.ipynb
#
# `tests/test_notebooks.py` runs it and checks the sweep completed, the fit was written and both reports exist.

# %%
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

from planner.cli.main import main as clipbudget
from planner.plan import enumerate_plan
from planner.report import write_report
from runners.data.demo import build_demo
from runners.sweep import collect, status, submit

args = argparse.ArgumentParser(description="A CPU-scale clipbudget study, end to end.")
args.add_argument("--out", default="study", help="folder for data, grid, sweep, fit and reports")
opts, _ = args.parse_known_args(sys.argv[1:] if __name__ == "__main__" else [])
out = Path(opts.out).resolve()
out.mkdir(parents=True, exist_ok=True)

# %% [markdown]
# ## 1. Data: 2000 training pairs, 60 % with a wrong caption, 500 test images

# %%
data = build_demo("fashion-mnist", out / "data", corrupt=0.6, n_train=2000, n_eval=500, shard_size=1000)
print("shards:", data.shards_dir, " eval:", data.eval_dir)

# %% [markdown]
# ## 2. Plan: what three small budgets buy
#
# Budgets in GFLOPs (paper convention). One model at three budgets measures the data exponent; the top 40 %
# by quality and a second model size give the fit the other axes.

# %%
rows = []
for gflops, models, quality in ((1.6, ("tiny-vit-28",), (1.0,)), (3.2, ("tiny-vit-28",), (0.4, 1.0)),
                                (6.4, ("tiny-vit-28",), (1.0,)), (3.2, ("tiny-vit-s-28",), (1.0,))):
    plan = enumerate_plan(gflops, models=models, strategies=("clip",), quality_fractions=quality, pool_size=2000)
    rows += [r.to_dict() for r in plan.rows]
for r in rows:
    print(f"{r['model']:<14} q={r['quality_fraction']:<4g} {r['samples_seen']:>4} samples seen, "
          f"{r['total_gflops']:.3g} GFLOPs")

# %% [markdown]
# ## 3. Grid: one file a sweep can run (the format `clipbudget plan --emit-grid` writes)

# %%
grid = {
    "clipbudget_grid": 1,
    "sweep_name": "walkthrough",
    "defaults": {"train_data": str(data.shards_dir), "eval_data": str(data.eval_dir), "batch_size": 16,
                 "lr": 1e-3, "workers": 0, "eval_batch_size": 100, "linear_probe": False, "retrieval": False},
    "resources": {"cpus_per_task": 1, "mem_gb": 1, "time_min": 10},
    "runs": [{"model": r["model"], "strategy": r["strategy"], "samples_seen": int(r["samples_seen"]),
              "quality_fraction": r["quality_fraction"], "unique_samples": int(r["unique_samples"]),
              "pool_size": int(r["pool_size"])} for r in rows],
}
grid_path = out / "grid.yaml"
grid_path.write_text(yaml.safe_dump(grid, sort_keys=False), encoding="utf-8")
print(grid_path.read_text())

# %% [markdown]
# ## 4. Run: submit the grid (in-process here; `executor="slurm"` on a cluster), then ask for its state

# %%
sweep = out / "sweep"
submit(grid_path, sweep, executor="debug")
st = status(sweep)
print(st.counts, f"— {st.ledger.spent_train_flops:.3g} training FLOPs spent")

# %% [markdown]
# ## 5. Collect: one table of the completed runs

# %%
report = collect(sweep, into=out / "results.parquet")
print(report.table[["model", "quality_fraction", "samples_seen", "zeroshot_top1"]].to_string(index=False))

# %% [markdown]
# ## 6. Fit: a scaling law to these results (`clipbudget fit`; Fashion-MNIST is not ImageNet, so the
# published prior is not pooled with it)

# %%
fit_path = out / "fit.json"
code = clipbudget(["fit", str(out / "results.parquet"), "--out", str(fit_path), "--bootstrap", "200"])
fit = json.loads(fit_path.read_text()) if code == 0 else {}
print("fit:", fit.get("form"), "on", fit.get("n_points"), "points")

# %% [markdown]
# ## 7. Report: the sweep, and the fit, as HTML pages that open anywhere

# %%
sweep_report = write_report(out / "sweep-report.html", sweep_dir=sweep, refit_bootstrap=100)
fit_report = write_report(out / "fit-report.html", fit=fit_path) if code == 0 else None
print("reports:", sweep_report, fit_report)

# %%
summary = {
    "runs": len(st.runs), "completed": st.counts.get("completed", 0), "fit_form": fit.get("form"),
    "fit_points": fit.get("n_points"), "reports": [str(p) for p in (sweep_report, fit_report) if p],
    "top1": {f"{r.model} q={r.quality_fraction:g} S={r.samples_seen}": float(r.zeroshot_top1)
             for r in report.table.itertuples()},
}
(out / "summary.json").write_text(json.dumps(summary, indent=2))
print(json.dumps(summary, indent=2))
