"""``clipbudget study``: find the budget's best configuration for a fraction of the grid's compute.

Runs the plan's configurations first at small shares of the target compute (rungs at TARGET/eta^k), refits
the scaling law after each rung (the prior as the start), promotes the configurations whose upper bound at
the target beats the best lower bound, and stops at the study budget; the study lives in an Optuna storage
(SQLite in the sweep folder by default), so re-running the same command resumes it. ``--executor simulate``
trains nothing: results come from a seeded ground truth, and the output adds the regret.

Examples::

    clipbudget study --gflops 1e11 --sweep-dir studies/s1 --executor simulate --seed 3
    clipbudget study --gflops 1e10 --sweep-dir studies/s2 --executor slurm --data SHARDS --eval EVALSET \\
        --storage mysql+pymysql://user:pw@db/optuna --partition gpu
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from planner.cli import _format as fmt


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "study",
        help="adaptive study: small runs, refit, promote; the best configuration for a fraction of the grid",
        description=__doc__.split("\n\n")[1].replace("``", ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  clipbudget study --gflops 1e11 --sweep-dir studies/s1 --executor simulate\n"
               "  clipbudget study --gflops 1e8 --models tiny-vit-28 --pool-size 60000 --sweep-dir s2 "
               "--executor local --data SHARDS --eval EVALSET",
    )
    p.add_argument("--gflops", type=fmt.positive_number, required=True, metavar="TARGET",
                   help="target compute: per-sample forward GFLOPs x samples seen (paper convention)")
    grid = p.add_argument_group("plan (as clipbudget plan)")
    grid.add_argument("--models", nargs="+", metavar="MODEL")
    grid.add_argument("--strategies", nargs="+", metavar="S")
    grid.add_argument("--quality", nargs="+", type=fmt.fraction, metavar="Q")
    grid.add_argument("--pool-size", type=fmt.positive_int, metavar="N")
    grid.add_argument("--min-epochs", type=fmt.positive_number, metavar="E")
    grid.add_argument("--max-epochs", type=fmt.positive_number, metavar="E")
    grid.add_argument("--flip-mask", type=fmt.unit_interval, metavar="R")
    grid.add_argument("--image-size", type=fmt.positive_int, metavar="PX")
    grid.add_argument("--context-length", type=fmt.positive_int, metavar="TOKENS")
    grid.add_argument("--fit", metavar="FIT.json", help="start from this fit instead of the built-in prior")
    st = p.add_argument_group("study")
    st.add_argument("--sweep-dir", required=True, metavar="DIR", help="the study's folder (re-use it to resume)")
    st.add_argument("--executor", required=True, choices=("simulate", "debug", "local", "slurm"))
    st.add_argument("--study-budget", type=fmt.positive_number, metavar="GFLOPS",
                    help="cap on the study's compute (default: 20%% of running every configuration at the target)")
    st.add_argument("--eta", type=fmt.positive_number, default=3.0, help="ratio between rungs (default 3)")
    st.add_argument("--rungs", type=fmt.positive_int, default=5,
                    help="rungs including the target: TARGET/eta^(rungs-1) .. TARGET (default 5)")
    st.add_argument("--min-rung-gflops", type=fmt.positive_number, metavar="GFLOPS",
                    help="instead of --rungs: rungs down to the smallest TARGET/eta^k not below this")
    st.add_argument("--level", type=fmt.fraction, default=0.95, help="confidence level of the bounds (default 0.95)")
    st.add_argument("--storage", metavar="URL", help="Optuna storage: sqlite:///F, journal:///F, mysql://, "
                                                     "postgresql:// (default: sqlite in --sweep-dir)")
    st.add_argument("--study-name", help="study name in the storage (default: the sweep folder's name)")
    st.add_argument("--seed", type=int, default=0, help="simulated truth's seed (simulate)")
    ex = p.add_argument_group("real runs (debug, local, slurm)")
    ex.add_argument("--data", metavar="DIR", help="training shards")
    ex.add_argument("--eval", metavar="DIR", help="evaluation set")
    ex.add_argument("--partition", help="SLURM partition")
    ex.add_argument("--time-min", type=fmt.positive_int, metavar="MIN", help="wall-clock limit per job")
    ex.add_argument("--cpus-per-task", type=fmt.positive_int, metavar="N", help="CPUs per job")
    ex.add_argument("--mem-gb", type=fmt.positive_number, metavar="GB", help="memory per job, GiB")
    ex.add_argument("--device", default="auto", help="device for the runner (auto, cpu, cuda)")
    ex.add_argument("--array-parallelism", type=fmt.positive_int, metavar="N", help="jobs at once")
    ex.add_argument("--poll-s", type=fmt.positive_number, default=5.0, help="seconds between looks at runs")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(handler=run)
    return p


def _spec(args: argparse.Namespace) -> Any:
    from planner.study.driver import StudySpec
    from planner.study.law import PlanOptions
    from planner.study.policy import PolicyConfig

    options = PlanOptions(
        models=tuple(args.models) if args.models else None,
        strategies=tuple(args.strategies) if args.strategies else None,
        quality_fractions=tuple(args.quality) if args.quality else None,
        pool_size=args.pool_size, min_epochs=args.min_epochs, max_epochs=args.max_epochs,
        flip_mask_ratio=args.flip_mask, image_size=args.image_size, context_length=args.context_length)
    return StudySpec(target_gflops=args.gflops, options=options, eta=args.eta, n_rungs=args.rungs,
                     min_rung_gflops=args.min_rung_gflops, study_budget_gflops=args.study_budget, seed=args.seed,
                     policy=PolicyConfig(level=args.level), fit=args.fit, simulate=args.executor == "simulate")


def _ledger_line(kind: str, info: dict) -> str:
    led = info["ledger"]
    head = (f"step: rung {info.get('rung', 0) + 1}, {info.get('launched', 0)} run(s) launched, "
            f"{info.get('pruned', 0)} pruned" if kind == "step" else "finished")
    return (f"clipbudget study: {head} | GFLOPs: budget {fmt.sci(led.budget_gflops)}, "
            f"spent {fmt.sci(led.spent_gflops)} ({fmt.pct(led.spent_fraction)} of the grid), "
            f"in flight {fmt.sci(led.in_flight_gflops)}, remaining {fmt.sci(led.remaining_gflops)}")


def run(args: argparse.Namespace) -> int:
    import logging

    import optuna

    from planner.study.driver import run_study

    if args.verbose < 2:
        optuna.logging.set_verbosity(logging.WARNING)
    overrides = {k: v for k, v in (("partition", args.partition), ("time_min", args.time_min),
                                   ("cpus_per_task", args.cpus_per_task), ("mem_gb", args.mem_gb)) if v is not None}
    # planner.study.executors.SweepRuns turns "overrides" into runners.executors.ResourceOverrides at submit time
    executor_options = {"overrides": overrides, "device": args.device}
    if args.array_parallelism:
        executor_options["array_parallelism"] = args.array_parallelism
    result = run_study(
        _spec(args), sweep_dir=args.sweep_dir, executor=args.executor, storage=args.storage,
        study_name=args.study_name, train_data=args.data, eval_data=args.eval, executor_options=executor_options,
        poll_s=args.poll_s, on_event=lambda kind, info: print(_ledger_line(kind, info), file=sys.stderr, flush=True))
    if args.format == "json":
        fmt.write_json([result.to_json()])
        return 0
    _table(result)
    return 0


def _table(result: Any) -> None:
    rec = result.recommended
    header = [f"Study {result.study_name} in {result.storage}",
              "Rungs (GFLOPs, paper convention): " + ", ".join(fmt.sci(g) for g in result.rungs),
              (f"Compute: spent {fmt.sci(result.ledger.spent_gflops)} GFLOPs = "
               f"{fmt.pct(result.ledger.spent_fraction)} of running the whole grid at the "
               f"target ({fmt.sci(result.ledger.grid_gflops)}); budget {fmt.sci(result.ledger.budget_gflops)}; "
               f"{result.trials} trials, {result.runs} runs")]
    columns = [("#", "right"), ("model", "left"), ("strategy", "left"), ("quality", "right"), ("state", "left"),
               ("rungs run", "right"), ("last top-1", "right"), ("top-1 at target (95% CI)", "right")]
    rows, highlight = [], None
    for i, r in enumerate(result.rows[:20]):
        if r["recommended"]:
            highlight = i
        rows.append([f"{'*' if r['recommended'] else ''}{i + 1}", r["model"], r["strategy"], f"{r['quality_fraction']:g}",
                     r["state"].lower(), str(r["rungs_run"]), fmt.pct(r["last_top1"]),
                     f"{fmt.pct(r['predicted_top1'])} [{fmt.pct(r['ci_low'])}, {fmt.pct(r['ci_high'])}]"])
    footer = [f"* recommended: {rec['model']} {rec['strategy']} on the top {rec['quality_fraction']:.0%} of the pool, "
              f"{fmt.human_count(rec['samples_seen'])} samples seen: predicted top-1 {fmt.pct(result.predicted_top1)} "
              f"[{fmt.pct(result.ci_low)}, {fmt.pct(result.ci_high)}]"]
    if result.regret is not None:
        footer.append(f"simulation: true best {fmt.pct(result.true_best, 2)}, recommended truly "
                      f"{fmt.pct(result.true_recommended, 2)}, regret {100 * result.regret:.2f} points")
    if len(result.rows) > 20:
        footer.append(f"showing 20 of {len(result.rows)} configurations (--format json for the summary)")
    footer += [f"skipped: {s}" for s in result.skipped[:5]]
    fmt.render_table(columns, rows, header_lines=header, footer_lines=footer, highlight=highlight)
