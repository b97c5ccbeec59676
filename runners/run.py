"""One run, end to end: validate, train (resuming if possible), evaluate, write exactly one result row.

:func:`run` is the unit of work of every sweep (``runners.job.RunJob`` wraps it for submitit) and what
``clipbudget run CONFIG.yaml`` calls. Folder layout under ``out_dir`` (the sweep folder)::

    results/<run_id>.<status>.<uuid8>.parquet   ResultStore rows
    runs/<run_id>/checkpoints/step_*.pt        training checkpoints (resume)
    runs/<run_id>/final.pt                     open_clip-loadable weights
    runs/<run_id>/run.log                      this run's log (every attempt appends)
    runs/<run_id>/error-<timestamp>.log        traceback of a failed attempt

Guarantees:

* Everything that can be checked before training is checked first (model, strategy, sizes, shards, eval
  set, FLOP accounting): a bad config fails in seconds with one line, as a :class:`ConfigError`.
* A run whose ``run_id`` already has a completed row returns that row without training again.
* A failure writes a ``failed`` row (``error`` = one line + the traceback file) and re-raises.
  A stop on a signal (:class:`runners.train.TrainingInterrupted`) writes no row: the run resumes later.
* ``total_gflops`` = samples trained × strategy-adjusted per-sample forward GFLOPs (``budget.flops``),
  ``train_flops`` = 3 × that × 1e9; ``gpu_hours`` = measured wall seconds × GPUs / 3600.

Example::

    row = run(RunConfig.from_dict({...}), "sweeps/demo", device="cpu")
    row["zeroshot_top1"], row["total_gflops"], row["status"]
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import socket
import time
import traceback
from pathlib import Path
from typing import Any

from budget.errors import ConfigError

log = logging.getLogger(__name__)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds")


def slurm_job_id() -> str | None:
    """``JOBID`` (or ``ARRAYJOBID_TASKID`` for array jobs) from the SLURM environment, else None."""
    env = os.environ
    if env.get("SLURM_ARRAY_JOB_ID") and env.get("SLURM_ARRAY_TASK_ID"):
        return f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    return env.get("SLURM_JOB_ID") or None


def versions() -> dict[str, str | None]:
    """``clipbudget_version``, ``open_clip_version``, ``torch_version``."""
    from importlib import metadata

    from budget import __version__

    def v(dist: str) -> str | None:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return None

    cb = v("clipbudget") or __version__
    return {"clipbudget_version": cb, "open_clip_version": v("open_clip_torch"), "torch_version": v("torch")}


def sample_cost_for(cfg):
    """The ``budget.flops.SampleCost`` of ``cfg`` (:func:`budget.cost.sample_cost_of`: strategy, image size,
    text length, mask ratio, SLIP head), the same cost the sweep ledger plans with."""
    from budget.cost import sample_cost_of

    return sample_cost_of(cfg)


def validate(cfg, device: str = "auto") -> None:
    """Every check that needs no training, each raising a one-line :class:`ConfigError`.

    The RunConfig constructor has already checked fields, strategy, quality fraction and ``samples_seen``
    against one batch; here: the model exists in the catalog, its FLOPs can be counted for the strategy
    (FLIP needs a ViT), the shard folder has shards, the evaluation set is well-formed (class names,
    templates, class folders, captions, one readable image per class: :func:`runners.data.evalset.check_eval_set`),
    the device exists.
    """
    from budget.catalog import get_model
    from runners.config import STRATEGIES
    from runners.data.evalset import check_eval_set
    from runners.data.shards import list_shards

    if cfg.strategy not in STRATEGIES:
        raise ConfigError(f"unknown strategy {cfg.strategy!r} (valid: {', '.join(STRATEGIES)})")
    if cfg.samples_seen < cfg.batch_size:
        raise ConfigError(f"samples_seen {cfg.samples_seen} is below one batch (batch_size {cfg.batch_size})")
    if not 0.0 < cfg.quality_fraction <= 1.0:
        raise ConfigError(f"quality_fraction must be in (0, 1], got {cfg.quality_fraction}")
    get_model(cfg.model)
    sample_cost_for(cfg)
    list_shards(cfg.train_data)  # raises ConfigError for a missing folder or one without shards
    eval_dir = Path(cfg.eval_data)
    if not eval_dir.is_dir():
        raise ConfigError(f"eval_data {cfg.eval_data!r} is not a folder (expected classnames.txt, templates.txt, "
                          "<label>/ image folders)")
    check_eval_set(eval_dir)  # class names, templates, class folders, captions, one image per class decodes
    if device not in ("auto", "cpu", "cuda") and not str(device).startswith("cuda:"):
        raise ConfigError(f"unknown device {device!r} (valid: cpu, cuda, auto)")
    if str(device).startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(f"device {device!r} requested but CUDA is not available here (use --device cpu)")


def existing_row(store, run_id: str) -> dict | None:
    """The newest completed row of ``run_id`` in ``store``, or None."""
    if run_id not in store.completed_run_ids():
        return None
    rows = [r for r in store.rows_for(run_id) if r.get("status") == "completed"]
    if not rows:
        return None
    return max(rows, key=lambda r: str(r.get("finished_at") or ""))


def base_row(cfg, sweep_id: str) -> dict[str, Any]:
    """The identity, config and provenance columns of ``cfg``'s row."""
    row = {
        "run_id": cfg.run_id, "sweep_id": sweep_id or None, "source": "own",
        "model": cfg.model, "strategy": cfg.strategy, "flip_mask_ratio": cfg.flip_mask_ratio, "aug": cfg.aug,
        "image_size": cfg.image_size, "context_length": cfg.context_length, "batch_size": cfg.batch_size,
        "lr": cfg.lr, "weight_decay": cfg.weight_decay, "warmup_steps": cfg.warmup_steps, "seed": cfg.seed,
        "data_pool": cfg.data_pool or None, "pool_size": cfg.pool_size, "quality_fraction": cfg.quality_fraction,
        "unique_samples": cfg.effective_unique_samples, "samples_seen": cfg.samples_seen, "epochs": cfg.epochs,
        "hostname": socket.gethostname(), "slurm_job_id": slurm_job_id(), "config_json": cfg.to_json(),
    }
    row.update(versions())
    return row


def _attach_log(run_dir: Path) -> logging.Handler | None:
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(run_dir / "run.log")
    except OSError:
        return None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    root = logging.getLogger("runners")
    root.addHandler(handler)
    if root.getEffectiveLevel() > logging.INFO:
        root.setLevel(logging.INFO)
    return handler


def run(cfg, out_dir: str | os.PathLike, *, device: str = "auto", sweep_id: str = "") -> dict:
    """Train, evaluate and record ``cfg`` (see the module docstring); returns the result row.

    Under ``torch.distributed`` (torchrun or SLURM with one task per GPU) every rank trains; rank 0
    evaluates and writes the row; the other ranks return ``{}``.
    """
    from results.store import ResultStore

    out_dir = Path(out_dir)
    store = ResultStore(out_dir / "results")
    done = existing_row(store, cfg.run_id)
    if done is not None:
        log.info("run %s already completed (%s); not training again", cfg.run_id, done.get("finished_at"))
        return done

    run_dir = out_dir / "runs" / cfg.run_id
    handler = _attach_log(run_dir)
    started_at, t0 = _now(), time.monotonic()
    row = base_row(cfg, sweep_id)
    row["started_at"] = started_at
    env = None
    try:
        validate(cfg, device)
        import torch

        from runners.data.evalset import load_eval_set
        from runners.distributed import cleanup, init_distributed
        from runners.evaluate import evaluate
        from runners.models import load_trained
        from runners.train import resolve_device, train

        dev = resolve_device(device)
        env = init_distributed(dev.type)
        cost = sample_cost_for(cfg)
        row.update({"gflops_per_sample": cost.forward_gflops, "image_size": cost.image_size,
                    "context_length": cost.context_length, "device": _device_name(dev),
                    "n_gpus": env.world_size if dev.type == "cuda" else 0})
        result = train(cfg, run_dir, device=dev, env=env)
        if not env.is_main:
            return {}
        t_eval = time.monotonic()
        evalset = load_eval_set(cfg.eval_data)
        eval_dev = torch.device("cuda", env.local_rank) if dev.type == "cuda" else dev
        model, preprocess, tokenizer = load_trained(cfg.model, result.final_path, device=str(eval_dev))
        metrics = evaluate(model, tokenizer, preprocess, evalset, device=eval_dev, batch_size=cfg.eval_batch_size,
                           do_retrieval=cfg.retrieval, do_linear_probe=cfg.linear_probe, seed=cfg.seed)
        wall = result.train_seconds_total + (time.monotonic() - t_eval)
        from budget.cost import cost_for_samples

        spent = cost_for_samples(cost, result.samples_trained)
        total_gflops = spent.total_gflops
        row.update(metrics)
        row.update({
            "unique_samples": result.unique_samples, "pool_size": cfg.pool_size or result.pool_size,
            "epochs": result.samples_trained / result.unique_samples,
            "total_gflops": total_gflops, "train_flops": spent.train_flops,
            "wall_seconds": wall, "gpu_hours": wall * row["n_gpus"] / 3600.0,
            "final_train_loss": result.final_loss, "steps": result.steps, "skipped_samples": result.skipped,
            "resumed_from_step": result.resumed_from_step, "status": "completed", "error": None,
            "finished_at": _now(),
        })
        from results.schema import validate_row

        row = validate_row(row)
        store.write(row)
        log.info("run %s completed: zero-shot top-1 %.4f, %.4g GFLOPs, %.1f s", cfg.run_id,
                 row["zeroshot_top1"], total_gflops, wall)
        return row
    except Exception as exc:
        if env is None or env.is_main:
            _write_failure(store, row, run_dir, exc, t0)
        raise
    finally:
        if env is not None:
            cleanup(env)
        if handler is not None:
            logging.getLogger("runners").removeHandler(handler)
            handler.close()


def _device_name(dev) -> str:
    if dev.type == "cuda":
        import torch

        return torch.cuda.get_device_name(dev)
    return "cpu"


def _write_failure(store, row: dict, run_dir: Path, exc: BaseException, t0: float) -> None:
    """A ``failed`` row: one-line error + where the traceback is (never masks the original error)."""
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    tb_path = run_dir / f"error-{stamp}.log"
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        tb_path.write_text("".join(traceback.format_exception(exc)))
        where = f" (traceback: {tb_path})"
    except OSError:
        where = ""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    failed = dict(row)
    failed.update({"status": "failed", "error": f"{type(exc).__name__}: {message}{where}",
                   "finished_at": _now(), "wall_seconds": time.monotonic() - t0})
    try:
        store.write(failed)
    except Exception as write_exc:  # noqa: BLE001 - report, but raise the original error
        log.error("could not write the failed row of %s: %s", row.get("run_id"), write_exc)


__all__ = ["base_row", "existing_row", "run", "sample_cost_for", "slurm_job_id", "validate", "versions"]
