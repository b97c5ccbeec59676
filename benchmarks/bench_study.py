"""Adaptive study vs Optuna's SuccessiveHalving / Hyperband pruners and random search, at equal compute.

    python benchmarks/bench_study.py                 # 20 seeds at 1e11 GFLOPs over the default plan
    python benchmarks/bench_study.py --seeds 5 --big # also time a 1,000-trial study on SQLite

For each seed, ``clipbudget study --executor simulate`` runs against a seeded ground truth
(:mod:`planner.study.simulate`); its spent compute is then given to three baselines on the *same* truth:

* **SHA** / **Hyperband**: Optuna's ``SuccessiveHalvingPruner`` / ``HyperbandPruner`` driven by learning
  curves: a trial is one configuration (drawn in a random order without repeats), reporting its top-1 at
  steps 1, eta, eta^2, ... (in units of TARGET/eta^(rungs-1)), the value at step s being the truth at that
  compute plus run noise. A learning curve continues one run, so a trial stopped at step s has cost its
  run at s (not the sum of the rungs, which the study pays for separate runs). The recommendation is the
  best trial that reached the target (else the best at the highest step reached).
* **random**: configurations in a random order, each run at the target, until the compute is spent; the
  best measured one is recommended.

Regret = true best top-1 at the target − true top-1 of the recommendation (points of top-1; noise-free).
Spent = compute as a share of running every configuration once at the target.
Caveat: the truth is drawn from the same prior the study starts from (with per-configuration deviations
and a shape that is none of the prior's draws), so the study's regret here is a rehearsal, not a guarantee.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _baseline(kind: str, prep, truth, budget: float, seed: int, eta: float) -> tuple[tuple, float]:
    import optuna

    keys = list(prep.keys)
    order = [keys[i] for i in np.random.default_rng([seed, 99]).permutation(len(keys))]
    n = len(prep.rungs)
    top = len(prep.rungs) - 1
    if kind == "random":
        spent, best = 0.0, None
        for k in order:
            c = prep.costs[k][top]
            if spent + c > budget:
                continue
            spent += c
            v = truth.observe(k, prep.rungs[top] if top < n - 1 else truth.target_gflops)
            if best is None or v > best[1]:
                best = (k, v)
        return (best[0] if best else order[0]), spent
    max_step = int(round(eta ** (n - 1)))
    steps = [int(round(eta ** j)) for j in range(n)]
    pruner = (optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=int(eta), min_early_stopping_rate=0)
              if kind == "sha" else
              optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max_step, reduction_factor=int(eta)))
    study = optuna.create_study(direction="maximize", pruner=pruner, sampler=optuna.samplers.RandomSampler(seed))
    spent = 0.0
    results: list[tuple[int, float, tuple]] = []  # (steps reached, last value, key)
    i = 0
    while True:
        k = order[i % len(order)]
        i += 1
        if spent + prep.costs[k][0] > budget or i > 20 * len(order):
            break
        trial = study.ask()
        trial.suggest_categorical("config", [f"{j}" for j in range(len(keys))])  # for the pruner's bookkeeping
        reached, value, cost = 0, None, 0.0
        for j, s in enumerate(steps):
            c = prep.costs[k][j]
            if spent - cost + c > budget:
                break
            spent += c - cost
            cost = c
            value = truth.observe(k, prep.rungs[j] if j < n - 1 else truth.target_gflops)
            reached = j
            trial.report(value, step=s)
            if j < n - 1 and trial.should_prune():
                break
        if value is None:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            break
        results.append((reached, value, k))
        if reached == n - 1:
            study.tell(trial, value)
        else:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    if not results:
        return order[0], spent
    best = max(results, key=lambda r: (r[0], r[1]))
    return best[2], spent


def run_seed(seed: int, target: float, eta: float, storage: str) -> dict:
    from planner.study.driver import SimulatedRuns, StudySpec, prepare, run_study

    spec = StudySpec(target, eta=eta, simulate=True, seed=seed)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        res = run_study(spec, sweep_dir=Path(tmp) / f"s{seed}", executor="simulate",
                        storage=None if storage == "sqlite" else storage)
    wall = time.perf_counter() - t0
    prep = prepare(spec)
    truth = SimulatedRuns(prep).truth
    spent = res.ledger.spent_gflops
    row = {"study": (100 * res.regret, spent / prep.grid_gflops), "wall_s": wall}
    for kind in ("sha", "hyperband", "random"):
        key, used = _baseline(kind, prep, truth, spent, seed, eta)
        row[kind] = (100 * truth.regret(key), used / prep.grid_gflops)
    return row


def big(target: float) -> float:
    from planner.study.driver import StudySpec, run_study
    from planner.study.law import PlanOptions

    qs = tuple(float(q) for q in np.round(np.linspace(0.025, 1.0, 40), 4))
    spec = StudySpec(target, options=PlanOptions(quality_fractions=qs), simulate=True, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        res = run_study(spec, sweep_dir=Path(tmp) / "big", executor="simulate")
        wall = time.perf_counter() - t0
    print(f"1,000-trial study on SQLite: {res.trials} trials, {res.runs} runs, regret {100 * res.regret:.2f} points, "
          f"spent {res.ledger.spent_gflops / res.ledger.grid_gflops:.1%} of the grid: {wall:.1f} s (goal <= 60 s)")
    return wall


def main(argv=None) -> int:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--target", type=float, default=1e11)
    ap.add_argument("--eta", type=float, default=3.0)
    ap.add_argument("--storage", default="memory://", help="'sqlite' for the default SQLite file, or a URL")
    ap.add_argument("--big", action="store_true", help="also time a 1,000-trial study on SQLite")
    args = ap.parse_args(argv)
    rows = []
    for seed in range(args.seeds):
        r = run_seed(seed, args.target, args.eta, args.storage)
        rows.append(r)
        print(f"seed {seed:3d}: " + "  ".join(f"{m} {r[m][0]:5.2f} pt @ {r[m][1]:5.1%}"
                                              for m in ("study", "sha", "hyperband", "random"))
              + f"  ({r['wall_s']:.1f} s)", flush=True)
    print(f"\ntarget {args.target:g} GFLOPs, default plan, eta {args.eta:g}, {args.seeds} seeds; regret in points of "
          "top-1 at the target; compute as a share of the whole grid at the target (equal for all methods per seed)")
    print(f"{'method':<10} {'median regret':>14} {'mean':>7} {'p90':>7} {'max':>7} {'regret<=0.5':>12} {'median spent':>13}")
    for m in ("study", "sha", "hyperband", "random"):
        reg = [r[m][0] for r in rows]
        sp = [r[m][1] for r in rows]
        print(f"{m:<10} {statistics.median(reg):14.2f} {statistics.mean(reg):7.2f} {np.percentile(reg, 90):7.2f} "
              f"{max(reg):7.2f} {sum(x <= 0.5 for x in reg) / len(reg):12.0%} {statistics.median(sp):13.1%}")
    print(f"study wall time per seed: median {statistics.median(r['wall_s'] for r in rows):.1f} s ({args.storage})")
    if args.big:
        big(args.target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
