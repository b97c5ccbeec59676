"""``clipbudget data``: build demo shards, score shards with a trained CLIP, describe a shard folder.

Examples::

    clipbudget data fashion-mnist --out demo/ --corrupt 0.6 --seed 0    # demo/shards + demo/eval
    clipbudget data mnist --out mnist/ --n-train 10000
    clipbudget data score demo/shards --checkpoint runs/<id>/final.pt --model tiny-vit-28
    clipbudget data stats demo/shards --format json
"""

from __future__ import annotations

import argparse
import json
import math
import sys

DATASETS = ("fashion-mnist", "mnist")


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "data",
        help="build demo data, score shards by image-text similarity, describe shards",
        description="Build webdataset shards + an evaluation set from offline data (fashion-mnist, mnist), "
        "recompute the quality score of shards with a trained checkpoint (score), or describe shards (stats).",
    )
    sub = p.add_subparsers(dest="data_command", metavar="DATA_COMMAND", parser_class=type(p))
    for name in DATASETS:
        b = sub.add_parser(name, help=f"build {name} shards (train split) and an evaluation set (test split)")
        b.add_argument("--out", required=True, help="output folder: OUT/shards (training pairs), OUT/eval (test split)")
        b.add_argument("--corrupt", type=float, default=0.0,
                       help="fraction of pairs with a corrupted caption, in [0, 1) (70%% wrong class, 30%% boilerplate)")
        b.add_argument("--seed", type=int, default=0, help="seed of the corruption and caption draws")
        b.add_argument("--n-train", type=int, default=None, help="first N training images (default: all)")
        b.add_argument("--n-eval", type=int, default=None, help="first N test images (default: all)")
        b.add_argument("--shard-size", type=int, default=10_000, help="samples per tar shard")
    s = sub.add_parser("score", help="recompute 'quality' = image-text cosine similarity under a checkpoint")
    s.add_argument("shards", help="shard folder")
    s.add_argument("--checkpoint", required=True, help="trained checkpoint (.pt) of --model")
    s.add_argument("--model", required=True, help="model name (catalog or open_clip) or open_clip JSON config path")
    s.add_argument("--out", default=None, help="write scored shards here (default: rewrite in place, atomically)")
    s.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:1)")
    s.add_argument("--batch-size", type=int, default=256, help="pairs per forward pass")
    t = sub.add_parser("stats", help="samples, corrupt members, quality thresholds, filter precision/recall")
    t.add_argument("shards", help="shard folder")
    t.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(handler=run, _data_parser=p)
    return p


def _progress(console, description: str):
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=console, transient=True, disable=not console.is_terminal)


def _build(args, console) -> int:
    from rich.table import Table

    from runners.data.demo import build_demo

    with _progress(console, "") as prog:
        task = prog.add_task("train shards", total=None)
        etask = prog.add_task("eval set", total=None, visible=False)

        def on_train(done: int, total: int) -> None:
            prog.update(task, completed=done, total=total)

        def on_eval(done: int, total: int) -> None:
            prog.update(etask, completed=done, total=total, visible=True)

        report = build_demo(args.data_command, args.out, corrupt=args.corrupt, seed=args.seed, n_train=args.n_train,
                            n_eval=args.n_eval, shard_size=args.shard_size, progress=on_train, eval_progress=on_eval)
    table = Table(title=f"{report.dataset} demo data", show_header=False)
    table.add_row("training shards", f"{report.shards_dir} ({report.shards} shard(s), {report.n_train} pairs)")
    table.add_row("corrupted pairs", f"{report.n_corrupt} ({report.corrupt_fraction:.1%}): "
                  f"{report.n_wrong_class} wrong class, {report.n_boilerplate} boilerplate")
    table.add_row("evaluation set", f"{report.eval_dir} ({report.n_eval} test images)")
    table.add_row("quality", "caption heuristic; run 'clipbudget data score' with a trained checkpoint")
    console.print(table)
    return 0


def _filter_table(rows: list[dict], auc: float | None, title: str):
    from rich.table import Table

    table = Table(title=title)
    for col in ("keep top", "kept", "precision", "recall"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(f"{r['keep_fraction']:.0%}", str(r["kept"]), f"{r['precision']:.3f}", f"{r['recall']:.3f}")
    if auc is not None:
        table.caption = f"ROC AUC (clean vs corrupted) = {auc:.3f}"
    return table


def _score(args, console) -> int:
    from runners.data.score import score_shards

    with _progress(console, "") as prog:
        task = prog.add_task("scoring", total=None)
        report = score_shards(args.shards, checkpoint=args.checkpoint, model=args.model, out_dir=args.out,
                              device=args.device, batch_size=args.batch_size,
                              progress=lambda d, n: prog.update(task, completed=d, total=n))
    console.print(f"scored {report.n_scored} pairs in {report.seconds:.1f} s "
                  f"(mean cosine {report.mean:.3f} ± {report.std:.3f}); "
                  f"{report.n_dropped} corrupt dropped; shards: {report.shards_dir}")
    if report.filter:
        console.print(_filter_table(report.filter, report.auc, "quality filter vs ground-truth is_clean"))
    return 0


def _stats(args, console) -> int:
    import numpy as np

    from runners.data.quality import (
        THRESHOLD_FRACTIONS,
        filter_metrics,
        load_quality_index,
    )

    index = load_quality_index(args.shards)
    q = index.quality[~np.isnan(index.quality)]
    known = index.is_clean >= 0
    info = {
        "shards_dir": index.root,
        "shards": len(index.shards),
        "samples": len(index),
        "corrupt_skipped": index.corrupt,
        "corrupt_reasons": index.reasons,
        "quality_missing": int(np.isnan(index.quality).sum()),
        "quality_mean": float(q.mean()) if len(q) else None,
        "thresholds": {str(f): index.threshold(f) for f in THRESHOLD_FRACTIONS} if len(q) == len(index) else {},
        "clean_fraction": float((index.is_clean[known] == 1).mean()) if known.any() else None,
    }
    filt, auc = ([], None)
    if known.all() and len(q) == len(index):
        filt, auc = filter_metrics(index.quality, index.is_clean.astype(bool))
    info["filter"], info["auc"] = filt, auc
    if args.format == "json":
        sys.stdout.write(json.dumps(info, indent=1, default=float) + "\n")
        return 0
    from rich.table import Table

    table = Table(title=f"shards {index.root}", show_header=False)
    for k in ("shards", "samples", "corrupt_skipped", "quality_missing", "quality_mean", "clean_fraction"):
        v = info[k]
        table.add_row(k.replace("_", " "), "—" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v)))
    if info["thresholds"]:
        table.add_row("quality threshold (top 40% / 100%)",
                      f"{info['thresholds']['0.4']:.4g} / {info['thresholds']['1.0']:.4g}")
    console.print(table)
    if filt:
        console.print(_filter_table(filt, auc, "quality filter vs ground-truth is_clean"))
    return 0


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from budget.errors import ConfigError

    console = Console()
    cmd = getattr(args, "data_command", None)
    if cmd is None:
        args._data_parser.print_help()
        return 2
    if cmd in DATASETS:
        if not (0.0 <= args.corrupt < 1.0) or math.isnan(args.corrupt):
            raise ConfigError(f"--corrupt {args.corrupt} is outside [0, 1)")
        return _build(args, console)
    if cmd == "score":
        return _score(args, console)
    return _stats(args, console)
