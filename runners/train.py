"""The training loop: one :class:`runners.config.RunConfig` → exactly ``samples_seen`` samples of training.

Read it top to bottom (:func:`train`): set up (seed, model, strategy, optimizer, data), resume from the newest
checkpoint if there is one, then for each global batch: learning rate for the step, forward + loss (+
gradient accumulation), backward, clip, step, log, checkpoint. The four strategies differ only by what
:func:`runners.strategies.build_strategy` returns (transform, SLIP views + head, loss, FLIP patch dropout).

* Optimizer: AdamW (β1 0.9, β2 0.98, ε 1e-6 by default; the fused kernel where torch has one), no weight
  decay on gains, biases and ``logit_scale`` (as open_clip's ``main.py``); cosine schedule with linear warm-up
  (open_clip ``cosine_lr``).
* Precision: ``auto`` = bf16 autocast on CUDA, fp32 on CPU; ``amp_bf16``/``amp`` autocast; ``bf16``/``fp16``
  (``pure_*``) cast the weights.
* Gradient accumulation: ``grad_accum_steps`` micro-batches per step with open_clip's feature caching
  (features of the other micro-batches are recomputed without gradients), so the contrastive loss still
  sees the whole global batch: same gradient as one big batch.
* Distributed: DDP, one process per GPU (gloo on CPU); features are gathered across ranks with gradients.
* Checkpoints (:mod:`runners.checkpoint`): every ``checkpoint_every_steps`` (0 = about every 10 % of the run,
  and at least every :data:`CHECKPOINT_EVERY_S` seconds), at the end, and on SIGTERM/SIGINT/SIGUSR1/SIGUSR2
  (the step in flight finishes, a checkpoint is written, then :class:`TrainingInterrupted` is raised; a
  handler that was installed before, such as submitit's requeue handler, is called after the save). Under
  submitit a SIGTERM only saves a checkpoint and training goes on: SLURM sends SIGTERM first on preemption
  and submitit's requeue signal (USR2) follows, so stopping on SIGTERM would end the job without a requeue.
  Resume restores model, optimizer, schedule position, data position and RNG states: an interrupted run
  continues the same loss curve (exactly, for strategies whose data transforms are deterministic).

Example::

    result = train(cfg, "sweep/runs/<run_id>", device="cpu")
    result.final_loss, result.steps, result.samples_trained, result.final_path
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from budget.errors import ConfigError
from runners import checkpoint as ckpt
from runners.distributed import DistEnv, all_gather_object, any_flags

log = logging.getLogger(__name__)

#: Automatic checkpoints: every ~10 % of the steps, and at least this often (seconds of wall time).
CHECKPOINT_EVERY_S = 300.0
#: Automatic checkpoints at the 10 % marks are skipped when the last one is younger than this (seconds).
MIN_AUTO_CHECKPOINT_S = 30.0
#: Training checkpoints kept on disk.
KEEP_CHECKPOINTS = 2
#: Signals that save a checkpoint and stop the run.
STOP_SIGNALS = tuple(getattr(signal, n) for n in ("SIGTERM", "SIGINT", "SIGUSR1", "SIGUSR2") if hasattr(signal, n))
CHECKPOINT_VERSION = 1


class TrainingInterrupted(BaseException):  # noqa: N818 - not an error: the run stopped on request
    """Training stopped on a signal (or ``stop_after_steps``) after saving a checkpoint; rerun to resume.

    A ``BaseException`` so that ``except Exception`` handlers (which write failed rows) let it through.
    """

    def __init__(self, signum: int | None, step: int, path: Path):
        name = signal.Signals(signum).name if signum else "stop request"
        super().__init__(f"training stopped by {name} at step {step}; checkpoint {path} (rerun to resume)")
        self.signum, self.step, self.path = signum, step, path


@dataclass
class TrainResult:
    """What a finished training run reports (counts of samples; seconds)."""

    steps: int  # optimizer steps of the whole run
    samples_trained: int  # global samples trained on (= samples_seen at the end)
    final_loss: float
    losses: list[float]  # loss per step (global mean), from step 1
    resumed_from_step: int
    skipped: int  # corrupt samples skipped by the loader
    unique_samples: int
    pool_size: int
    epochs: float
    wall_seconds: float  # training wall time of this attempt
    train_seconds_total: float  # training wall time summed over attempts
    final_path: Path | None  # open_clip-loadable weights (rank 0)
    image_size: int
    context_length: int
    extras: dict = field(default_factory=dict)


# --- pure pieces -----------------------------------------------------------------------------------


def cosine_lr(step: int, base_lr: float, warmup_steps: int, total_steps: int) -> float:
    """Learning rate of optimizer step ``step`` (0-based): linear warm-up, then cosine decay to 0.

    As open_clip's ``cosine_lr``: ``base_lr · (step + 1) / warmup`` during warm-up, then
    ``0.5 · (1 + cos(π · e / es)) · base_lr`` with ``e = step − warmup``, ``es = total − warmup``.

    >>> cosine_lr(0, 1.0, 10, 100), cosine_lr(9, 1.0, 10, 100), round(cosine_lr(55, 1.0, 10, 100), 3)
    (0.1, 1.0, 0.5)
    """
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    e, es = step - warmup_steps, max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * e / es)) * base_lr


def param_groups(module: torch.nn.Module, weight_decay: float) -> list[dict]:
    """AdamW groups: decay on weight matrices only (not gains, biases, norms, logit_scale), as open_clip."""

    def exclude(n: str, p: torch.nn.Parameter) -> bool:
        return p.ndim < 2 or "bn" in n or "ln" in n or "bias" in n or "logit_scale" in n

    named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
    return [
        {"params": [p for n, p in named if exclude(n, p)], "weight_decay": 0.0},
        {"params": [p for n, p in named if not exclude(n, p)], "weight_decay": weight_decay},
    ]


def build_optimizer(module: torch.nn.Module, cfg) -> torch.optim.AdamW:
    """AdamW over :func:`param_groups` with ``cfg``'s lr, betas, eps, weight decay (``module`` on its device).

    The fused kernel where this torch has one for the device (CUDA; CPU from torch 2.4: ~3× faster optimizer
    steps here, measured), else the default (foreach): the same update rule either way.
    """
    kw = dict(lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps)
    try:
        return torch.optim.AdamW(param_groups(module, cfg.weight_decay), fused=True, **kw)
    except (RuntimeError, ValueError, TypeError):  # no fused kernel for this device/dtype in this torch
        return torch.optim.AdamW(param_groups(module, cfg.weight_decay), **kw)


def resolve_precision(precision: str, device_type: str) -> tuple[str, torch.dtype | None]:
    """``(weights precision for open_clip, autocast dtype or None)`` of a RunConfig precision."""
    p = precision
    if p == "auto":
        p = "amp_bf16" if device_type == "cuda" else "fp32"
    if p in ("fp16", "pure_fp16", "amp") and device_type != "cuda":
        raise ConfigError(f"precision {precision!r} needs a CUDA device (this run is on {device_type}); "
                          "use fp32, amp_bf16 or auto")
    if p == "fp32":
        return "fp32", None
    if p == "amp_bf16":
        return "fp32", torch.bfloat16
    if p == "amp":
        return "fp32", torch.float16
    if p in ("bf16", "pure_bf16"):
        return "pure_bf16", None
    if p in ("fp16", "pure_fp16"):
        return "pure_fp16", None
    raise ConfigError(f"unknown precision {precision!r}")


def resolve_device(device: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cuda`` without a GPU is a one-line ConfigError."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise ConfigError(f"unknown device {device!r} (valid: cpu, cuda, auto)")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available here (use --device cpu)")
    return torch.device(device)


def _per_sample(v: Any, n: int) -> bool:
    return isinstance(v, torch.Tensor) and v.ndim > 0 and v.shape[0] == n


def _split(x: torch.Tensor | None, k: int) -> list:
    return [None] * k if x is None else list(torch.tensor_split(x, k))


# --- stop requests ---------------------------------------------------------------------------------


class _StopRequests:
    """Turns stop signals into a flag the loop checks between steps; restores (and chains) old handlers."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.frame = None
        self.checkpoint_requested = False  # save at the next step boundary, then carry on
        self.previous: dict[int, Any] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for s in STOP_SIGNALS:
            try:
                self.previous[s] = signal.signal(s, self._handle)
            except (ValueError, OSError):
                pass

    def _handle(self, signum, frame) -> None:
        if self.signum is not None and signum == signal.SIGINT:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        prev = self.previous.get(signum)
        if signum == signal.SIGTERM and getattr(prev, "__name__", "") == "bypass" and \
                "submitit" in getattr(prev, "__module__", ""):
            # Under submitit, SLURM's SIGTERM comes first on preemption and USR2 follows (the requeue signal);
            # submitit ignores SIGTERM for that reason. Save a checkpoint now (a SIGKILL may follow instead)
            # but keep training until USR2 arrives.
            log.warning("received SIGTERM under submitit: saving a checkpoint, then waiting for the requeue signal")
            self.checkpoint_requested = True
            return
        log.warning("received %s: finishing the current step, then saving a checkpoint", signal.Signals(signum).name)
        self.signum, self.frame = signum, frame

    def restore(self) -> None:
        for s, h in self.previous.items():
            with contextlib.suppress(ValueError, OSError, TypeError):
                signal.signal(s, h)
        self.previous_restored = dict(self.previous)
        self.previous = {}

    def chain(self) -> None:
        """Call the handler that was installed before ours (e.g. submitit's requeue-on-USR2)."""
        prev = getattr(self, "previous_restored", {}).get(self.signum)
        if callable(prev) and prev not in (signal.default_int_handler,):
            prev(self.signum, self.frame)


# --- the loop --------------------------------------------------------------------------------------


def train(
    cfg,
    run_dir: str | os.PathLike,
    *,
    device: str | torch.device = "auto",
    env: DistEnv | None = None,
    stop_after_steps: int | None = None,
    log_every_s: float = 10.0,
) -> TrainResult:
    """Train ``cfg`` to its last step (resuming from ``run_dir/checkpoints`` if possible).

    ``stop_after_steps`` (tests, or a time-boxed job) saves a checkpoint after that global step and raises
    :class:`TrainingInterrupted`, exactly as a SIGTERM would. Returns on every rank; only rank 0 writes.
    """
    from runners.data.loader import build_train_loader
    from runners.models import build_model
    from runners.strategies import TrainModule, build_strategy

    t_start = time.monotonic()
    env = env or DistEnv()
    dev = resolve_device(str(device)) if not isinstance(device, torch.device) else device
    if dev.type == "cuda" and env.distributed:
        dev = torch.device("cuda", env.local_rank)
    run_dir = Path(run_dir)
    ckpt_dir = run_dir / "checkpoints"
    if cfg.batch_size % env.world_size:
        raise ConfigError(f"batch_size {cfg.batch_size} is not divisible by the {env.world_size} ranks")
    rank_batch = cfg.batch_size // env.world_size
    accum = cfg.grad_accum_steps
    weights_precision, amp_dtype = resolve_precision(cfg.precision, dev.type)

    # --- model, strategy, optimizer (same seed on every rank: same initial weights)
    torch.manual_seed(cfg.seed)
    import random

    import numpy as np

    random.seed(cfg.seed)
    np.random.seed(cfg.seed % 2**32)
    built = build_model(
        cfg.model, image_size=cfg.image_size, context_length=cfg.context_length,
        patch_dropout=float(cfg.flip_mask_ratio or 0.0) if cfg.strategy == "flip" else 0.0,
        grad_checkpointing=cfg.grad_checkpointing, precision=weights_precision, device="cpu",
    )
    strategy = build_strategy(cfg, embed_dim=_embed_dim(cfg.model), image_size=built.image_size, mean=built.mean, std=built.std,
                              rank=env.rank, world_size=env.world_size)
    module = TrainModule(built.model, strategy.head).to(dev)
    if weights_precision == "pure_bf16":
        module = module.to(torch.bfloat16)
    elif weights_precision == "pure_fp16":
        module = module.to(torch.float16)
    if env.distributed and strategy.head is not None and dev.type == "cuda":
        module = torch.nn.SyncBatchNorm.convert_sync_batchnorm(module)
    optimizer = build_optimizer(module, cfg)
    scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None
    model: torch.nn.Module = module
    if env.distributed:
        from torch.nn.parallel import DistributedDataParallel as DDP

        model = DDP(module, device_ids=[dev.index] if dev.type == "cuda" else None)
    loss_fn = strategy.loss.to(dev)

    # --- data: exactly samples_seen samples over all ranks
    loader = build_train_loader(
        cfg, image_transform=strategy.train_transform, tokenizer=built.tokenizer,
        extra_views_transform=strategy.extra_views_transform, rank=env.rank, world_size=env.world_size,
        batch_size=rank_batch,
    )
    total_steps = loader.steps
    every = cfg.checkpoint_every_steps or max(1, math.ceil(total_steps / 10))
    min_interval = 0.0 if cfg.checkpoint_every_steps else MIN_AUTO_CHECKPOINT_S

    # --- resume
    start_step, losses, prior_seconds, rng_to_restore = 0, [], 0.0, None
    found = ckpt.latest_checkpoint(ckpt_dir)
    if found is not None:
        path, state = found
        if state.get("run_id") != cfg.run_id:
            raise ConfigError(f"checkpoint {path} belongs to run {state.get('run_id')!r}, not {cfg.run_id!r}")
        module.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        loader.load_state_dict(state["data"])
        start_step = int(state["step"])
        losses = list(state.get("losses", []))
        prior_seconds = float(state.get("train_seconds", 0.0))
        rngs = state.get("rng") or []
        rng_to_restore = rngs[env.rank] if env.rank < len(rngs) else None
        log.info("resuming %s from step %d/%d (%s)", cfg.run_id, start_step, total_steps, path)

    stops = _StopRequests()
    stops.install()
    model.train()
    device_type = dev.type
    autocast = (lambda: torch.autocast(device_type, dtype=amp_dtype)) if amp_dtype else contextlib.nullcontext
    step = start_step
    last_ckpt_t = time.monotonic()
    last_log_t, last_log_step, t_loop = time.monotonic(), step, time.monotonic()
    pending: list[torch.Tensor] = []

    def save(step: int) -> Path:
        losses.extend(float(x) for x in pending)
        pending.clear()
        rngs = all_gather_object(env, ckpt.rng_state())
        path = ckpt_dir / ckpt.step_name(step)
        if env.is_main:
            state = {
                "version": CHECKPOINT_VERSION, "run_id": cfg.run_id, "step": step, "total_steps": total_steps,
                "model": module.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": {"kind": "cosine", "step": step, "base_lr": cfg.lr, "warmup_steps": cfg.warmup_steps,
                              "total_steps": total_steps},
                "scaler": scaler.state_dict() if scaler is not None else None,
                "data": loader.state_dict(), "rng": rngs, "losses": losses,
                "train_seconds": prior_seconds + time.monotonic() - t_start, "config_json": cfg.to_json(),
            }
            ckpt.save_atomic(state, path)
            ckpt.prune(ckpt_dir, KEEP_CHECKPOINTS)
            log.info("checkpoint: step %d/%d → %s", step, total_steps, path)
        return path

    try:
        batches = iter(loader)
        first = next(batches, None)  # starts the workers (consumes one RNG draw, as in an uninterrupted run)
        if rng_to_restore is not None:
            ckpt.set_rng_state(rng_to_restore)
        while first is not None:
            images, tokens, views = first
            first = None
            lr = cosine_lr(step, cfg.lr, cfg.warmup_steps, total_steps)
            images = images.to(dev, non_blocking=True)
            tokens = tokens.to(dev, non_blocking=True)
            views = views.to(dev, non_blocking=True) if views is not None else None
            loss = train_step(model, loss_fn, optimizer, images, tokens, views, lr=lr, accum=accum,
                              autocast=autocast, scaler=scaler, grad_clip_norm=cfg.grad_clip_norm,
                              distributed=env.distributed)
            step += 1

            loss_d = loss.float()
            if env.distributed:
                torch.distributed.all_reduce(loss_d, op=torch.distributed.ReduceOp.AVG
                                             if env.backend == "nccl" else torch.distributed.ReduceOp.SUM)
                if env.backend != "nccl":
                    loss_d /= env.world_size
            pending.append(loss_d)

            now = time.monotonic()
            if env.is_main and (now - last_log_t >= log_every_s or step == total_steps or step == start_step + 1):
                rate = (step - last_log_step) * cfg.batch_size / max(now - last_log_t, 1e-9)
                log.info("step %d/%d  loss %.4f  lr %.3g  %.0f samples/s", step, total_steps, float(loss_d), lr, rate)
                last_log_t, last_log_step = now, step
            age = now - last_ckpt_t
            stop, due = any_flags(env, stops.signum is not None, stops.checkpoint_requested
                                  or age >= CHECKPOINT_EVERY_S or (step % every == 0 and age >= min_interval))
            user_stop = stop_after_steps is not None and step >= stop_after_steps and step < total_steps
            if step < total_steps and (stop or user_stop or due):
                path = save(step)
                last_ckpt_t = time.monotonic()
                stops.checkpoint_requested = False
                if stop or user_stop:
                    stops.restore()
                    if stop:
                        stops.chain()  # submitit's handler requeues the job (and exits) here
                    raise TrainingInterrupted(stops.signum if stop else None, step, path)
            first = next(batches, None)
    finally:
        stops.restore()

    # --- the end: a last training checkpoint (so a rerun skips training) and open_clip-loadable weights
    wall = time.monotonic() - t_start
    losses.extend(float(x) for x in pending)
    pending.clear()
    final_path = run_dir / "final.pt"
    if step > start_step or not final_path.exists():
        save(step)
        if env.is_main:
            ckpt.save_atomic({"state_dict": module.clip.state_dict(),
                              "clipbudget": {"model": cfg.model, "run_id": cfg.run_id, "step": step,
                                             "image_size": built.image_size, "context_length": built.context_length,
                                             "config_json": cfg.to_json()}}, final_path)
    loop_s = time.monotonic() - t_loop
    if step > start_step:
        log.info("trained %d steps in %.1f s (%.0f samples/s)", step - start_step, loop_s,
                 (loader.samples_consumed - min(start_step * loader.global_batch_size, loader.samples_seen))
                 / max(loop_s, 1e-9))
    return TrainResult(
        steps=total_steps, samples_trained=loader.samples_consumed,
        final_loss=losses[-1] if losses else float("nan"), losses=losses, resumed_from_step=start_step,
        skipped=loader.skipped, unique_samples=loader.unique_samples, pool_size=loader.pool_size,
        epochs=loader.epochs, wall_seconds=wall, train_seconds_total=prior_seconds + wall,
        final_path=final_path if env.is_main else None, image_size=built.image_size,
        context_length=built.context_length,
    )


def train_step(model: torch.nn.Module, loss_fn: torch.nn.Module, optimizer: torch.optim.Optimizer,
               images: torch.Tensor, tokens: torch.Tensor, views: torch.Tensor | None = None, *, lr: float,
               accum: int = 1, autocast=contextlib.nullcontext, scaler=None, grad_clip_norm: float | None = None,
               distributed: bool = False) -> torch.Tensor:
    """One optimizer step on one (rank-local) batch already on the device; returns the loss, detached.

    Sets the learning rate ``lr``; forward + loss (``accum > 1``: open_clip's feature caching over
    micro-batches, so the contrastive loss sees the whole batch); backward; gradient clipping; optimizer
    (and GradScaler) step; ``zero_grad``; clamps the logit scale to ln 100 as open_clip does. ``model`` is the
    :class:`runners.strategies.TrainModule` (or its DDP wrapper). The loop of :func:`train` calls this for
    every step; the throughput and MFU benchmarks time exactly this.
    """
    module = model.module if hasattr(model, "module") and isinstance(model.module, torch.nn.Module) else model
    for g in optimizer.param_groups:
        g["lr"] = lr
    if accum == 1:
        with autocast():
            out = model(images, tokens, views)
            loss = loss_fn(out)["loss"]
        _backward(loss, scaler)
    else:
        chunks = list(zip(_split(images, accum), _split(tokens, accum), _split(views, accum)))
        with torch.no_grad(), autocast():
            cached = [model(*c) for c in chunks]
        for j, c in enumerate(chunks):
            sync = model.no_sync() if (distributed and j < accum - 1) else contextlib.nullcontext()
            with sync:
                with autocast():
                    out_j = model(*c)
                    n_j = c[0].shape[0]
                    merged = {k: (torch.cat([cached[i][k] if i != j else v for i in range(accum)])
                                  if _per_sample(v, n_j) else v) for k, v in out_j.items()}
                    loss = loss_fn(merged)["loss"]
                _backward(loss, scaler)
    if grad_clip_norm:
        if scaler is not None:
            scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(module.parameters(), grad_clip_norm)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    with torch.no_grad():  # open_clip clamps the temperature to 100
        module.clip.logit_scale.clamp_(0, math.log(100))
    return loss.detach()


def _backward(loss: torch.Tensor, scaler) -> None:
    if scaler is not None:
        scaler.scale(loss).backward()
    else:
        loss.backward()


def _embed_dim(model: str) -> int:
    from budget.catalog import get_model

    return int(get_model(model).embed_dim)


__all__ = ["CHECKPOINT_EVERY_S", "TrainResult", "TrainingInterrupted", "build_optimizer", "cosine_lr", "param_groups",
           "resolve_device", "resolve_precision", "train", "train_step"]
