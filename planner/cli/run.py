"""``clipbudget run CONFIG.yaml``: train, evaluate and record one configuration in this process.

Examples::

    clipbudget run run.yaml --out sweeps/demo --device cpu
    torchrun --nproc-per-node 8 -m planner.cli.main run run.yaml --out sweeps/demo --device cuda

CONFIG is a mapping of RunConfig fields (or a grid with one run). The row goes to ``OUT/results/``;
checkpoints to ``OUT/runs/<run_id>/``. Rerunning an interrupted run resumes it; rerunning a completed run
prints its row without training. Exit codes: 0 done, 2 bad config, 1 failure, 128+N stopped by signal N
(a checkpoint was saved: rerun to resume).
"""

from __future__ import annotations

import argparse
import json
import sys


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "run",
        help="train and evaluate one configuration here (CLIP, SLIP, FLIP, CLIP+aug)",
        description="Train one configuration for exactly its samples seen with open_clip, evaluate it "
        "(zero-shot, retrieval, linear probe) and write one result row. Resumes from checkpoints.",
    )
    p.add_argument("config", help="YAML/JSON file: RunConfig fields (model, strategy, samples_seen, train_data, "
                   "eval_data, ...) or a grid with one run")
    p.add_argument("--out", default=".", help="output folder (sweep folder): results/ and runs/ go here (default: .)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="training device (auto: CUDA when available)")
    p.add_argument("--sweep-id", default="", help="sweep id recorded in the row")
    p.add_argument("--format", choices=("table", "json"), default="table", help="how to print the result row")
    p.set_defaults(handler=run)
    return p


_SHOW = ("run_id", "model", "strategy", "samples_seen", "steps", "epochs", "zeroshot_top1", "zeroshot_top5",
         "retrieval_i2t_r1", "retrieval_t2i_r1", "linear_probe_top1", "final_train_loss", "total_gflops",
         "wall_seconds", "resumed_from_step", "skipped_samples", "status")


def run(args: argparse.Namespace) -> int:
    import logging

    from runners.gridfile import load_run_config
    from runners.run import run as run_one
    from runners.train import TrainingInterrupted

    logging.getLogger("runners").setLevel(logging.INFO)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if not any(isinstance(h, logging.StreamHandler) for h in logging.getLogger("runners").handlers):
        h = logging.StreamHandler(sys.stderr)
        h.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s", "%H:%M:%S"))
        logging.getLogger("runners").addHandler(h)
        logging.getLogger("runners").propagate = False
    cfg = load_run_config(args.config)
    try:
        row = run_one(cfg, args.out, device=args.device, sweep_id=args.sweep_id)
    except TrainingInterrupted as exc:
        print(f"clipbudget: {exc}", file=sys.stderr)
        return 128 + (exc.signum or 15)
    if not row:  # a non-zero rank of a distributed run
        return 0
    if args.format == "json":
        print(json.dumps({k: row.get(k) for k in row}, default=str, indent=1))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"run {row['run_id']}", show_header=False)
    for key in _SHOW:
        value = row.get(key)
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    Console().print(table)
    return 0
