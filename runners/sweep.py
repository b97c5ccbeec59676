"""Sweeps: submit a grid to a submitit back-end, then track, cancel, resubmit and collect it.

All state lives in the sweep folder (docs/architecture.md, "Sweep folder layout")::

    SWEEP/
      manifest.json   grid path + hash, sweep_id, run_id → config, shape, planned FLOPs/GPU-hours, attempts
      grid.yaml       the grid as first submitted
      jobs/           submitit folder (%j_submitted.pkl, %j_%t_log.out/err, %j_%t_result.pkl)
      results/        ResultStore: one parquet row per finished attempt, written by the jobs themselves
      runs/<run_id>/  checkpoints and run log, written by the runner

Every path derives from the folder and the ids in the manifest, so any process re-attaches to the jobs:
``status``, ``cancel``, ``resubmit`` and ``collect`` work from a new shell after ``submit`` has exited.
The manifest is written atomically (temp file, fsync, rename) under an ``fcntl`` lock; jobs never touch
it, they only add result rows.

Truth, in order: a ``completed`` result row; a cancellation recorded by :func:`cancel` (or SLURM's
``CANCELLED``); the scheduler's view of the newest attempt (``sacct`` through submitit's watcher, the
local job's process, the debug submitter); a ``failed`` row newer than that attempt; finally the job's
submitit result file (a job that died before the runner could write its row).

Run states (:data:`STATES`): ``pending``, ``running``, ``requeued`` (preempted or timed out and waiting to
restart from its checkpoint), ``completed``, ``failed``, ``cancelled``, and ``unknown`` (the scheduler no
longer knows the job and no row exists — or could not be asked: when ``sacct`` fails, the run's
``scheduler_state`` is :data:`SCHEDULER_UNREACHABLE`, the sweep is not ``done`` and ``resubmit``
refuses, since the job may still be running).

Example::

    report = submit("grid.yaml", "sweeps/s1", executor="slurm", partition="gpu", array_parallelism=8)
    st = status("sweeps/s1"); st.counts          # {'pending': 6}
    collect("sweeps/s1").table                   # one row per completed run
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import hashlib
import json
import logging
import math
import os
import re
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from budget.errors import ConfigError
from results.atomic import atomic_open, write_atomic
from runners.executors import (
    EXECUTORS,
    ExecutorOptions,
    Shape,
    build_executor,
    check_executor,
    shape_of,
)

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
STATES: tuple[str, ...] = ("pending", "running", "requeued", "completed", "failed", "cancelled", "unknown")
ACTIVE_STATES = frozenset({"pending", "running", "requeued"})

#: SLURM job states (sacct) → run state. Anything else that is not listed counts as ``failed``.
_SLURM_ACTIVE = {
    "PENDING": "pending",
    "CONFIGURING": "running",
    "RUNNING": "running",
    "COMPLETING": "running",
    "SUSPENDED": "running",
    "RESIZING": "running",
    "SIGNALING": "running",
    "STAGE_OUT": "running",
    "REQUEUED": "requeued",
    "REQUEUE_HOLD": "requeued",
    "REQUEUE_FED": "requeued",
    "REQUEUED_HOLD": "requeued",
}
#: How long a just-submitted SLURM job may be missing from sacct before it counts as ``unknown`` (s).
_SACCT_GRACE_S = 120.0
_REQUEUE_RE = re.compile(r"Requeued job ")

JobFactory = Callable[..., Any]


# ----------------------------------------------------------------------------------------------- paths


@dataclass(frozen=True)
class SweepPaths:
    """Every path of a sweep folder, derived from its root."""

    root: Path

    @classmethod
    def of(cls, sweep_dir: str | os.PathLike[str]) -> SweepPaths:
        """The paths of ``sweep_dir``, made absolute (jobs, manifests and other shells see the same folder)."""
        return cls(Path(sweep_dir).expanduser().resolve())

    @property
    def manifest(self) -> Path:
        return self.root / MANIFEST

    @property
    def grid_copy(self) -> Path:
        return self.root / "grid.yaml"

    @property
    def jobs(self) -> Path:
        return self.root / "jobs"

    @property
    def results(self) -> Path:
        return self.root / "results"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    @property
    def lock(self) -> Path:
        return self.root / ".manifest.lock"

    def run_dir(self, run_id: str) -> Path:
        return self.runs / run_id

    def job_log(self, job_id: str, stream: str = "err") -> Path:
        """submitit's log of task 0 of ``job_id`` (``stream``: ``out`` or ``err``)."""
        return self.jobs / f"{job_id}_0_log.{stream}"

    def job_result(self, job_id: str) -> Path:
        return self.jobs / f"{job_id}_0_result.pkl"


def _now() -> tuple[str, float]:
    t = time.time()
    return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).isoformat(timespec="microseconds"), t


def _parse_iso(value: Any) -> float | None:
    if not value or not isinstance(value, str):
        return None
    try:
        d = _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if d.tzinfo is None:
        d = d.replace(tzinfo=_dt.timezone.utc)
    return d.timestamp()


# -------------------------------------------------------------------------------------------- manifest


def load_manifest(sweep_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of ``sweep_dir``; :class:`ConfigError` if the folder is not a clipbudget sweep."""
    paths = SweepPaths.of(sweep_dir)
    if not paths.root.is_dir():
        raise ConfigError(f"not a sweep folder: {paths.root} does not exist or is not a folder")
    try:
        text = paths.manifest.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"not a sweep folder: {paths.root} has no {MANIFEST} (create one with clipbudget submit)") from None
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"corrupt sweep manifest {paths.manifest}: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("clipbudget_sweep") != MANIFEST_VERSION:
        raise ConfigError(
            f"not a sweep folder: {paths.manifest} is not a clipbudget sweep manifest (version {MANIFEST_VERSION})"
        )
    return manifest


def _write_manifest(paths: SweepPaths, manifest: dict[str, Any]) -> None:
    """Write the manifest atomically: temp file in the folder, fsync, rename, fsync the folder."""
    manifest["updated_at"] = _now()[0]
    write_atomic(paths.manifest, json.dumps(manifest, indent=1, sort_keys=False) + "\n")


@contextlib.contextmanager
def _locked(paths: SweepPaths) -> Iterator[None]:
    """Exclusive lock for read-modify-write of the manifest (other CLI processes wait)."""
    paths.root.mkdir(parents=True, exist_ok=True)
    with open(paths.lock, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class PlannedRun:
    """One run of a grid as the sweep will submit it: config, resources, planned cost."""

    run_id: str
    config: Any  # runners.config.RunConfig
    shape: Shape
    planned_train_flops: float  #: training FLOPs (≈ 3 × forward × samples_seen), paper convention
    planned_gpu_hours: float  #: GPU-hours for planned_train_flops on ``gpu`` at ``mfu``
    gpu: str


def planned_cost(cfg: Any, gpu: str = "A100", mfu: float = 0.4) -> tuple[float, float]:
    """(training FLOPs, GPU-hours) planned for one run: ``sample_cost(...).train_gflops × 1e9 ×
    samples_seen`` and :func:`budget.hardware.gpu_hours` of that on ``gpu`` at ``mfu``."""
    from budget.flops import sample_cost
    from budget.hardware import gpu_hours

    cost = sample_cost(
        cfg.model,
        cfg.strategy,
        image_size=cfg.image_size,
        context_length=cfg.context_length,
        flip_mask_ratio=cfg.flip_mask_ratio if cfg.flip_mask_ratio is not None else 0.5,
    )
    flops = float(cost.train_gflops) * 1e9 * float(cfg.samples_seen)
    return flops, float(gpu_hours(flops, gpu=gpu, mfu=mfu))


def plan_grid(grid: Any, overrides: dict[str, Any] | None = None) -> list[PlannedRun]:
    """The runs of a loaded grid with their shapes (``overrides`` = command-line resources) and costs."""
    resources = list(getattr(grid, "resources", ()) or ())
    planned = []
    for i, cfg in enumerate(grid.runs):
        res = resources[i] if i < len(resources) else (resources[0] if len(resources) == 1 else None)
        shape = shape_of(res or {}, overrides)
        gpu = getattr(res, "gpu", None) or "A100"
        mfu = getattr(res, "mfu", None) or 0.4
        flops, hours = planned_cost(cfg, gpu=gpu, mfu=mfu)
        planned.append(PlannedRun(cfg.run_id, cfg, shape, flops, hours, gpu))
    return planned


# ------------------------------------------------------------------------------------------- submitting


@dataclass(frozen=True)
class SubmitReport:
    """What :func:`submit` / :func:`resubmit` did."""

    sweep_dir: Path
    sweep_id: str
    executor: str
    submitted: list[tuple[str, str]] = field(default_factory=list)  #: (run_id, job_id)
    skipped: dict[str, list[str]] = field(default_factory=dict)  #: reason → run_ids
    arrays: list[str] = field(default_factory=list)  #: one job (array) id per resource shape
    planned_train_flops: float = 0.0  #: of the submitted runs
    planned_gpu_hours: float = 0.0
    dry_run: bool = False
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "sweep_dir": str(self.sweep_dir),
            "sweep_id": self.sweep_id,
            "executor": self.executor,
            "submitted": [{"run_id": r, "job_id": j} for r, j in self.submitted],
            "skipped": self.skipped,
            "arrays": self.arrays,
            "planned_train_flops": self.planned_train_flops,
            "planned_gpu_hours": self.planned_gpu_hours,
            "dry_run": self.dry_run,
            "seconds": self.seconds,
        }


def _default_job_factory(cfg: Any, out_dir: str, device: str, sweep_id: str) -> Any:
    from runners.job import RunJob

    return RunJob(cfg, out_dir, device=device, sweep_id=sweep_id)


def _check_common(array_parallelism: int | None, max_retries: int) -> None:
    if array_parallelism is not None and array_parallelism < 1:
        raise ConfigError(f"--array-parallelism must be >= 1, got {array_parallelism}")
    if max_retries < 0:
        raise ConfigError(f"--max-retries must be >= 0, got {max_retries}")


def submit(
    grid_path: str | os.PathLike[str],
    sweep_dir: str | os.PathLike[str],
    *,
    executor: str = "local",
    partition: str | None = None,
    account: str | None = None,
    qos: str | None = None,
    time_min: int | None = None,
    gpus_per_node: int | None = None,
    nodes: int | None = None,
    cpus_per_task: int | None = None,
    mem_gb: float | None = None,
    array_parallelism: int | None = None,
    max_retries: int = 3,
    hold: bool = False,
    dry_run: bool = False,
    device: str = "auto",
    job_factory: JobFactory | None = None,
) -> SubmitReport:
    """Submit every run of the grid at ``grid_path`` that has neither a completed result nor a job yet.

    Non-blocking for ``local`` and ``slurm`` (returns once the jobs are queued); ``debug`` runs the jobs
    in this process before returning. Everything is validated first (grid, executor, partition,
    resources, sweep folder ownership); on any error nothing is submitted and the folder is unchanged.
    ``dry_run`` validates and reports what would be submitted, writing nothing. ``hold`` (slurm) queues
    the jobs held. ``job_factory(cfg, out_dir, device, sweep_id)`` builds the submitted callable
    (default: :class:`runners.job.RunJob`).
    """
    t0 = time.perf_counter()
    if executor not in EXECUTORS:
        raise ConfigError(f"unknown executor {executor!r}; valid choices: {', '.join(EXECUTORS)}")
    _check_common(array_parallelism, max_retries)
    if hold and executor != "slurm":
        raise ConfigError(f"--hold applies to --executor slurm only (got {executor})")
    from runners.grid import load_grid

    grid_path = Path(grid_path)
    grid = load_grid(grid_path)
    paths = SweepPaths.of(sweep_dir)
    manifest = _existing_manifest_for(paths, grid.sweep_id, grid_path)
    overrides = {
        "partition": partition,
        "account": account,
        "qos": qos,
        "time_min": time_min,
        "gpus_per_node": gpus_per_node,
        "nodes": nodes,
        "cpus_per_task": cpus_per_task,
        "mem_gb": mem_gb,
    }
    planned = plan_grid(grid, overrides)
    check_executor(executor, sorted({p.shape for p in planned}, key=repr))
    options = ExecutorOptions(
        kind=executor,
        array_parallelism=array_parallelism,
        max_retries=max_retries,
        hold=hold,
        overrides={k: v for k, v in overrides.items() if v is not None},
    )
    completed = _completed_ids(paths)
    attempted = {rid for rid, r in (manifest or {}).get("runs", {}).items() if r.get("attempts")}
    skipped: dict[str, list[str]] = {}
    todo: list[PlannedRun] = []
    for p in planned:
        if p.run_id in completed:
            skipped.setdefault("completed", []).append(p.run_id)
        elif p.run_id in attempted:
            skipped.setdefault("already submitted (see status; resubmit --failed/--cancelled)", []).append(p.run_id)
        else:
            todo.append(p)
    if dry_run:
        return SubmitReport(
            paths.root, grid.sweep_id, executor, [(p.run_id, "") for p in todo], skipped, [],
            sum(p.planned_train_flops for p in todo), sum(p.planned_gpu_hours for p in todo), True,
            time.perf_counter() - t0,
        )  # fmt: skip

    # Build the callables before writing anything: an import or pickling problem changes nothing.
    factory = job_factory or _default_job_factory
    callables = {p.run_id: factory(p.config, str(paths.root), device, grid.sweep_id) for p in todo}
    root_existed = paths.root.exists()
    had_content = root_existed and any(paths.root.iterdir())
    try:
        with _locked(paths):
            manifest = _existing_manifest_for(paths, grid.sweep_id, grid_path)  # re-read under the lock
            if manifest is None:
                manifest = _new_manifest(paths, grid, grid_path, options, planned)
            else:
                attempted = {rid for rid, r in manifest["runs"].items() if r.get("attempts")}
                todo = [p for p in todo if p.run_id not in attempted]
            manifest["executor"] = options.to_dict()
            submitted, arrays = _submit_runs(paths, manifest, todo, options, "submit", callables)
    except BaseException:
        # Nothing reached the scheduler and the folder is ours: leave no trace of this call.
        if not had_content and not _any_attempt(paths):
            if root_existed:  # an empty folder the user made: empty it again
                for child in paths.root.iterdir():
                    if child.is_dir():
                        shutil.rmtree(child, ignore_errors=True)
                    else:
                        child.unlink(missing_ok=True)
            else:
                shutil.rmtree(paths.root, ignore_errors=True)
        raise
    if executor == "debug":
        _run_debug_jobs(paths, manifest, submitted)
    report = SubmitReport(
        paths.root, manifest["sweep_id"], executor, submitted, skipped, arrays,
        sum(p.planned_train_flops for p in todo), sum(p.planned_gpu_hours for p in todo), False,
        time.perf_counter() - t0,
    )  # fmt: skip
    logger.info("submitted %d run(s) to %s in %.2fs", len(submitted), executor, report.seconds)
    return report


def _any_attempt(paths: SweepPaths) -> bool:
    try:
        return any(r["attempts"] for r in load_manifest(paths.root)["runs"].values())
    except ConfigError:
        return False


def _completed_ids(paths: SweepPaths) -> set[str]:
    from results.store import ResultStore

    return ResultStore(paths.results).completed_run_ids()


def _existing_manifest_for(paths: SweepPaths, sweep_id: str, grid_path: Path) -> dict[str, Any] | None:
    """The manifest of an existing sweep of the same grid, None for a new/empty folder; ConfigError otherwise."""
    if paths.root.exists() and not paths.root.is_dir():
        raise ConfigError(f"--sweep-dir {paths.root} is a file, not a folder")
    if not paths.root.exists() or not any(p.name != paths.lock.name for p in paths.root.iterdir()):
        return None
    if not paths.manifest.exists():
        raise ConfigError(
            f"--sweep-dir {paths.root} is not empty and not a clipbudget sweep (no {MANIFEST}); use a new folder"
        )
    manifest = load_manifest(paths.root)
    if manifest.get("sweep_id") != sweep_id:
        raise ConfigError(
            f"sweep folder {paths.root} belongs to another grid (sweep_id {manifest.get('sweep_id')}, "
            f"{grid_path} has {sweep_id}); use a new --sweep-dir"
        )
    return manifest


def _new_manifest(
    paths: SweepPaths, grid: Any, grid_path: Path, options: ExecutorOptions, planned: list[PlannedRun]
) -> dict[str, Any]:
    at, _ = _now()
    for d in (paths.jobs, paths.results, paths.runs):
        d.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(grid_path, paths.grid_copy)
    manifest = {
        "clipbudget_sweep": MANIFEST_VERSION,
        "sweep_id": grid.sweep_id,
        "sweep_name": getattr(grid, "sweep_name", None),
        "grid": {"path": str(grid_path.resolve()), "sha256": _sha256(grid_path), "copy": paths.grid_copy.name},
        "executor": options.to_dict(),
        "created_at": at,
        "updated_at": at,
        "submissions": [],
        "runs": {
            p.run_id: {
                "index": i,
                "config": p.config.to_dict(),
                "shape": p.shape.to_dict(),
                "gpu": p.gpu,
                "planned_train_flops": p.planned_train_flops,
                "planned_gpu_hours": p.planned_gpu_hours,
                "attempts": [],
            }
            for i, p in enumerate(planned)
        },
    }
    _write_manifest(paths, manifest)
    return manifest


def _submit_runs(
    paths: SweepPaths,
    manifest: dict[str, Any],
    todo: list[PlannedRun],
    options: ExecutorOptions,
    reason: str,
    callables: dict[str, Any],
) -> tuple[list[tuple[str, str]], list[str]]:
    """Submit ``todo`` as one batch (= one SLURM array) per shape; record each attempt as it lands.

    ``callables``: run_id → the object to submit. A scheduler that refuses a submission (sbatch error)
    raises :class:`ConfigError` with its message; the shapes submitted before stay recorded.
    """
    groups: dict[Shape, list[PlannedRun]] = {}
    for p in todo:
        groups.setdefault(p.shape, []).append(p)
    submitted: list[tuple[str, str]] = []
    arrays: list[str] = []
    name = f"clipbudget-{manifest.get('sweep_name') or manifest['sweep_id'][:8]}"
    for shape, runs in groups.items():
        ex = build_executor(options.kind, paths.jobs, shape, options, name=name)
        jobs = _submit_batch(ex, [callables[p.run_id] for p in runs])
        at, ts = _now()
        for p, job in zip(runs, jobs):
            attempt = {
                "job_id": str(job.job_id),
                "executor": options.kind,
                "submitted_at": at,
                "submitted_ts": ts,
                "reason": reason,
                "cancelled_at": None,
            }
            if options.kind == "debug":
                attempt["pid"] = os.getpid()
            manifest["runs"][p.run_id]["shape"] = shape.to_dict()
            manifest["runs"][p.run_id]["attempts"].append(attempt)
            submitted.append((p.run_id, str(job.job_id)))
            if options.kind == "debug":
                _DEBUG_JOBS[str(job.job_id)] = job
        array = str(jobs[0].job_id).split("_")[0] if jobs and options.kind == "slurm" else ""
        arrays.append(array)
        manifest["submissions"].append(
            {"at": at, "kind": reason, "executor": options.kind, "shape": shape.to_dict(),
             "job": array, "n_runs": len(runs)}
        )  # fmt: skip
        _write_manifest(paths, manifest)
    return submitted, arrays


@contextlib.contextmanager
def _child_output_to(log: Path) -> Iterator[None]:
    """Point this process's stdout/stderr file descriptors at ``log`` while child processes are started.

    submitit's local controller inherits them and lives as long as the jobs: without this, a
    ``clipbudget submit … | tee`` (or CI capturing output) would wait for the whole sweep to end.
    """
    import sys

    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    log.parent.mkdir(parents=True, exist_ok=True)
    saved = [os.dup(1), os.dup(2)]
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for f in (*saved, fd):
            os.close(f)


def _submit_batch(ex: Any, callables: list[Any]) -> list[Any]:
    """``ex.submit`` every callable inside ``ex.batch()`` (one SLURM array); sbatch errors → ConfigError."""
    import io

    import submitit
    from submitit.core.utils import FailedJobError

    buf = io.StringIO()
    local = isinstance(ex, submitit.LocalExecutor)
    try:
        # submitit prints sbatch's stderr itself; keep it for the one-line message
        with (_child_output_to(Path(ex.folder) / "local-controller.log") if local else contextlib.nullcontext()), \
                contextlib.redirect_stderr(buf), ex.batch():
            jobs = [ex.submit(c) for c in callables]
    except FailedJobError as exc:
        text = (str(exc).strip() or buf.getvalue().strip() or "no message").splitlines()[0]
        raise ConfigError(f"the scheduler refused the jobs: {text}") from exc
    return jobs


# submitted DebugJob objects of this process, by job id (debug jobs only exist in their submitter)
_DEBUG_JOBS: dict[str, Any] = {}


def _mark_attempt(paths: SweepPaths, run_id: str, job_id: str, key: str) -> None:
    """Set ``key`` = now on the attempt ``job_id`` of ``run_id`` in the manifest (under the lock)."""
    with _locked(paths):
        manifest = load_manifest(paths.root)
        for a in reversed(manifest["runs"][run_id]["attempts"]):
            if a["job_id"] == job_id:
                a[key] = _now()[0]
                break
        _write_manifest(paths, manifest)


def _run_debug_jobs(paths: SweepPaths, manifest: dict[str, Any], submitted: list[tuple[str, str]]) -> None:
    """Run debug jobs in this process, one after another; a failing job does not stop the others.

    Like submitit's ``DebugJob.results()`` (environment, log files) but without its post-mortem
    debugger, which would wait for a terminal.
    """
    for run_id, job_id in submitted:
        job = _DEBUG_JOBS.pop(job_id, None)
        if job is None:
            continue
        saved = dict(os.environ)
        os.environ.update(job.environ)
        root = logging.getLogger()
        job.paths.stdout.parent.mkdir(parents=True, exist_ok=True)
        handlers = [logging.FileHandler(job.paths.stdout), logging.FileHandler(job.paths.stderr)]
        handlers[0].setLevel(logging.DEBUG)
        handlers[1].setLevel(logging.WARNING)
        for h in handlers:
            root.addHandler(h)
        try:
            error = job.exception()  # runs the job (once); returns instead of raising
            if error is not None:
                logger.warning("debug run %s failed: %s", run_id, str(error).strip().splitlines()[-1:])
                import traceback

                with open(job.paths.stderr, "a", encoding="utf-8") as fh:
                    fh.write("".join(traceback.format_exception(error)))
        finally:
            for h in handlers:
                root.removeHandler(h)
                h.close()
            os.environ.clear()
            os.environ.update(saved)
            _mark_attempt(paths, run_id, job_id, "ended_at")


# --------------------------------------------------------------------------------------------- status


@dataclass(frozen=True)
class RunStatus:
    """The state of one run of a sweep (see the module docstring for how it is decided)."""

    run_id: str
    state: str
    model: str
    strategy: str
    samples_seen: int
    job_id: str | None
    executor: str | None
    attempts: int
    requeues: int
    submitted_at: str | None
    elapsed_s: float | None  #: running: time since start; finished: the attempt's wall time
    error: str | None
    log_path: str | None
    planned_train_flops: float
    planned_gpu_hours: float
    spent_train_flops: float
    spent_gpu_hours: float  #: GPU-hours of the result rows (wall hours × GPUs), all attempts
    scheduler_state: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class Ledger:
    """The sweep's budget: planned vs spent vs remaining, in training FLOPs and GPU-hours.

    ``planned``: every run of the grid. ``spent_train_flops``: the training FLOPs of completed runs.
    ``spent_gpu_hours``: GPU-hours the result rows record (wall hours × GPUs, completed and failed
    attempts). ``remaining``: the planned cost of the runs not completed yet.
    """

    planned_train_flops: float
    spent_train_flops: float
    remaining_train_flops: float
    planned_gpu_hours: float
    spent_gpu_hours: float
    remaining_gpu_hours: float
    wall_hours: float  #: wall-clock hours of all finished attempts plus running ones so far

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class SweepStatus:
    sweep_dir: Path
    sweep_id: str
    sweep_name: str | None
    executor: str | None
    runs: list[RunStatus]
    ledger: Ledger
    checked_at: str

    @property
    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.runs:
            out[r.state] = out.get(r.state, 0) + 1
        return out

    @property
    def done(self) -> bool:
        """True when no run is pending, running or requeued (or possibly so: SLURM did not answer)."""
        return all(r.state not in ACTIVE_STATES and r.scheduler_state != SCHEDULER_UNREACHABLE for r in self.runs)

    def by_id(self) -> dict[str, RunStatus]:
        return {r.run_id: r for r in self.runs}

    def to_dict(self) -> dict[str, Any]:
        return {
            "sweep_dir": str(self.sweep_dir),
            "sweep_id": self.sweep_id,
            "sweep_name": self.sweep_name,
            "executor": self.executor,
            "checked_at": self.checked_at,
            "counts": self.counts,
            "done": self.done,
            "ledger": self.ledger.to_dict(),
            "runs": [r.to_dict() for r in self.runs],
        }


@dataclass(frozen=True)
class _JobView:
    """What the back-end says about one attempt's job."""

    state: str | None  #: a run state from ACTIVE_STATES, or "cancelled"/"failed"/"finished", or None (unknown)
    raw: str | None = None  #: the scheduler's own word (sacct state, process state)
    elapsed_s: float | None = None
    note: str | None = None  #: why the scheduler could not be asked (raw == SCHEDULER_UNREACHABLE)


#: ``RunStatus.scheduler_state`` of a run whose job SLURM could not be asked about (sacct failed).
SCHEDULER_UNREACHABLE = "SACCT_FAILED"


def _rows_by_run(paths: SweepPaths) -> dict[str, list[dict[str, Any]]]:
    """Every result row of the sweep grouped by run_id (oldest first); reads parquet only if rows exist."""
    from results.store import ResultStore

    store = ResultStore(paths.results)
    if not store.files():
        return {}
    df = store.read(latest=False)
    out: dict[str, list[dict[str, Any]]] = {}
    for rec in df.to_dict(orient="records"):
        clean = {k: (None if _isna(v) else v) for k, v in rec.items()}
        out.setdefault(clean["run_id"], []).append(clean)
    for rows in out.values():
        rows.sort(key=lambda r: _parse_iso(r.get("finished_at")) or 0.0)
    return out


def _isna(v: Any) -> bool:
    """None, NaN or pandas' NA/NaT."""
    if v is None or type(v).__name__ in ("NAType", "NaTType"):
        return True
    try:
        return bool(math.isnan(v))
    except (TypeError, ValueError):
        return False


def _count_requeues(paths: SweepPaths, job_id: str) -> int:
    try:
        text = paths.job_log(job_id, "out").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return 0
    return len(_REQUEUE_RE.findall(text))


def _result_pickle_error(paths: SweepPaths, job_id: str) -> str | None:
    """The error a submitit job recorded in its result file (``("error", traceback)``), if any."""
    p = paths.job_result(job_id)
    if not p.exists():
        return None
    try:
        import pickle

        with open(p, "rb") as fh:
            outcome, payload = pickle.load(fh)
    except Exception as exc:  # noqa: BLE001 - a broken result file is itself the error
        return f"unreadable submitit result file {p}: {exc}"
    if outcome == "error":
        lines = [line for line in str(payload).strip().splitlines() if line.strip()]
        return lines[-1] if lines else "job failed"
    return None


def _slurm_views(attempts: dict[str, dict[str, Any]]) -> dict[str, _JobView]:
    """sacct (through submitit's SLURM watcher, one call for all jobs) → view per job id."""
    from runners.executors import SacctWatcher

    if not attempts:
        return {}
    watcher = SacctWatcher()
    for job_id in attempts:
        watcher.register_job(job_id)
    watcher.update()
    if watcher.error:
        logger.warning("cannot ask SLURM about %d job(s): %s", len(attempts), watcher.error)
        return {j: _JobView(None, SCHEDULER_UNREACHABLE, note=watcher.error) for j in attempts}
    views = {}
    for job_id in attempts:
        info = watcher.get_info(job_id, mode="cache")
        raw = (info.get("State") or "").split(" ")[0].upper() or None
        elapsed = None
        try:
            elapsed = float(info["ElapsedRaw"]) if info.get("ElapsedRaw") else None
        except ValueError:
            pass
        if raw is None:
            views[job_id] = _JobView(None, None, None)
        elif raw in _SLURM_ACTIVE:
            views[job_id] = _JobView(_SLURM_ACTIVE[raw], raw, elapsed)
        elif raw == "CANCELLED":
            views[job_id] = _JobView("cancelled", raw, elapsed)
        elif raw == "COMPLETED":
            views[job_id] = _JobView("finished", raw, elapsed)
        else:  # FAILED, TIMEOUT, NODE_FAIL, OUT_OF_MEMORY, PREEMPTED (not requeued), BOOT_FAIL, DEADLINE
            views[job_id] = _JobView("failed", raw, elapsed)
    return views


def _local_views(paths: SweepPaths, attempts: dict[str, dict[str, Any]]) -> dict[str, _JobView]:
    from runners.executors import local_job_alive

    views = {}
    now = time.time()
    for job_id in attempts:
        alive = local_job_alive(paths.jobs, job_id)
        started = paths.jobs / f"{job_id}_started"
        if alive:
            try:
                t = float(started.read_text().strip())
                views[job_id] = _JobView("running", "RUNNING", now - t)
            except (OSError, ValueError):
                views[job_id] = _JobView("pending", "WAITING_FOR_SLOT")
        else:
            views[job_id] = _JobView("finished", "EXITED")
    return views


def _debug_views(attempts: dict[str, dict[str, Any]], paths: SweepPaths) -> dict[str, _JobView]:
    from runners.executors import pid_alive

    views = {}
    for job_id, a in attempts.items():
        pid = a.get("pid")
        alive = not a.get("ended_at") and bool(pid) and (pid == os.getpid() or pid_alive(int(pid)))
        if alive:
            views[job_id] = _JobView("running" if paths.job_log(job_id, "out").exists() else "pending", "IN_PROCESS")
        else:
            views[job_id] = _JobView("finished", "ENDED" if a.get("ended_at") else "SUBMITTER_EXITED")
    return views


def status(sweep_dir: str | os.PathLike[str]) -> SweepStatus:
    """The state of every run of the sweep and its budget ledger; works from any process.

    Changes nothing but the results folder's read cache (the store's snapshot, when many rows are new).
    """
    paths = SweepPaths.of(sweep_dir)
    manifest = load_manifest(paths.root)
    from results.store import ResultStore

    # Ask the scheduler first, read the rows second: a job writes its row before it ends, so a job the
    # scheduler reports finished has its row on disk by the time the rows are read.
    completed_before = ResultStore(paths.results).completed_run_ids()
    latest: dict[str, dict[str, Any]] = {}
    by_kind: dict[str, dict[str, dict[str, Any]]] = {}
    for run_id, r in manifest["runs"].items():
        if r["attempts"]:
            a = r["attempts"][-1]
            latest[run_id] = a
            if run_id not in completed_before:
                by_kind.setdefault(a["executor"], {})[a["job_id"]] = a
    views: dict[str, _JobView] = {}
    views.update(_slurm_views(by_kind.get("slurm", {})))
    views.update(_local_views(paths, by_kind.get("local", {})))
    views.update(_debug_views(by_kind.get("debug", {}), paths))
    rows = _rows_by_run(paths)

    now = time.time()
    out = []
    wall_s = 0.0
    for run_id, r in sorted(manifest["runs"].items(), key=lambda kv: kv[1].get("index", 0)):
        cfg = r["config"]
        run_rows = rows.get(run_id, [])
        a = latest.get(run_id)
        job_id = a["job_id"] if a else None
        view = views.get(job_id) if job_id else None
        state, error, elapsed = _decide(paths, a, view, run_rows, now)
        requeues = _count_requeues(paths, job_id) if job_id and a["executor"] != "debug" else 0
        if state == "pending" and requeues:
            state = "requeued"
        completed_rows = [x for x in run_rows if x["status"] == "completed"]
        spent_flops = 0.0
        if completed_rows:
            spent_flops = float(completed_rows[-1].get("train_flops") or r["planned_train_flops"])
        spent_hours = 0.0
        for x in run_rows:
            if x.get("gpu_hours") is not None:
                spent_hours += float(x["gpu_hours"])
            if x.get("wall_seconds") is not None:
                wall_s += float(x["wall_seconds"])
        if state == "running" and elapsed:
            wall_s += elapsed
        log_path = str(paths.job_log(job_id, "err")) if job_id else None
        out.append(
            RunStatus(
                run_id=run_id,
                state=state,
                model=cfg.get("model", ""),
                strategy=cfg.get("strategy", ""),
                samples_seen=int(cfg.get("samples_seen", 0)),
                job_id=job_id,
                executor=a["executor"] if a else None,
                attempts=len(r["attempts"]),
                requeues=requeues,
                submitted_at=a["submitted_at"] if a else None,
                elapsed_s=elapsed,
                error=error,
                log_path=log_path,
                planned_train_flops=float(r["planned_train_flops"]),
                planned_gpu_hours=float(r["planned_gpu_hours"]),
                spent_train_flops=spent_flops,
                spent_gpu_hours=spent_hours,
                scheduler_state=view.raw if view else None,
            )
        )
    planned_f = sum(x.planned_train_flops for x in out)
    planned_h = sum(x.planned_gpu_hours for x in out)
    done = [x for x in out if x.state == "completed"]
    ledger = Ledger(
        planned_train_flops=planned_f,
        spent_train_flops=sum(x.spent_train_flops for x in out),
        remaining_train_flops=planned_f - sum(x.planned_train_flops for x in done),
        planned_gpu_hours=planned_h,
        spent_gpu_hours=sum(x.spent_gpu_hours for x in out),
        remaining_gpu_hours=planned_h - sum(x.planned_gpu_hours for x in done),
        wall_hours=wall_s / 3600.0,
    )
    return SweepStatus(
        paths.root, manifest["sweep_id"], manifest.get("sweep_name"),
        (manifest.get("executor") or {}).get("kind"), out, ledger, _now()[0],
    )  # fmt: skip


def _decide(
    paths: SweepPaths,
    attempt: dict[str, Any] | None,
    view: _JobView | None,
    rows: list[dict[str, Any]],
    now: float,
) -> tuple[str, str | None, float | None]:
    """(state, error, elapsed seconds) of one run."""
    completed = [x for x in rows if x["status"] == "completed"]
    if completed:
        row = completed[-1]
        return "completed", None, row.get("wall_seconds")
    if attempt is None:
        return "unknown", "never submitted (clipbudget submit was interrupted?)", None
    submitted_ts = float(attempt.get("submitted_ts") or 0.0)
    failed_rows = [x for x in rows if x["status"] == "failed" and (_parse_iso(x.get("finished_at")) or now) >= submitted_ts - 5]
    if attempt.get("cancelled_at"):
        return "cancelled", f"cancelled at {attempt['cancelled_at']}", view.elapsed_s if view else None
    if view is not None and view.state == "cancelled":
        return "cancelled", f"cancelled by the scheduler ({view.raw})", view.elapsed_s
    if view is not None and view.state in ACTIVE_STATES:
        return view.state, None, view.elapsed_s
    if failed_rows:
        row = failed_rows[-1]
        return "failed", row.get("error") or "failed", row.get("wall_seconds")
    job_id = attempt["job_id"]
    if view is not None and view.raw == SCHEDULER_UNREACHABLE:
        return "unknown", f"cannot ask SLURM about job {job_id} ({view.note}); it may still be running", None
    pickled = _result_pickle_error(paths, job_id)
    if view is None or view.state is None:
        if now - submitted_ts < _SACCT_GRACE_S and attempt["executor"] == "slurm":
            return "pending", None, None  # sacct has not seen the new job yet
        if pickled:
            return "failed", pickled, None
        return "unknown", f"the scheduler does not know job {job_id} and no result row exists", None
    if pickled:
        return "failed", pickled, view.elapsed_s
    return "failed", f"job {job_id} ended ({view.raw}) without a result row; see {paths.job_log(job_id, 'err')}", view.elapsed_s


# ---------------------------------------------------------------------------------------------- cancel


@dataclass(frozen=True)
class CancelReport:
    cancelled: list[tuple[str, str]]  #: (run_id, job_id)
    not_active: dict[str, str]  #: run_id → its state (nothing to cancel)
    errors: dict[str, str] = field(default_factory=dict)  #: run_id → why cancelling failed

    def to_dict(self) -> dict[str, Any]:
        return {
            "cancelled": [{"run_id": r, "job_id": j} for r, j in self.cancelled],
            "not_active": self.not_active,
            "errors": self.errors,
        }


def resolve_run_ids(manifest: dict[str, Any], run_ids: Iterable[str]) -> list[str]:
    """Full run ids for ``run_ids`` (unique prefixes allowed); ConfigError naming the first unknown one."""
    known = list(manifest["runs"])
    out = []
    for q in run_ids:
        matches = [r for r in known if r.startswith(q)]
        if len(matches) != 1:
            what = "ambiguous" if matches else "unknown"
            raise ConfigError(
                f"{what} run id {q!r}; this sweep has {len(known)} runs (list them with clipbudget status)"
            )
        out.append(matches[0])
    return out


def cancel(sweep_dir: str | os.PathLike[str], run_ids: Sequence[str] = ()) -> CancelReport:
    """Cancel the active jobs of ``run_ids`` (all runs when empty) and record the cancellation.

    SLURM: ``scancel`` through submitit's ``SlurmJob.cancel``. Local: SIGINT to the job's submitit
    controller, which stops its tasks (SIGINT, then SIGKILL); a job still waiting for a slot gets SIGTERM.
    Debug jobs run inside ``submit`` and are never active afterwards.
    """
    from runners.executors import cancel_jobs

    paths = SweepPaths.of(sweep_dir)
    manifest = load_manifest(paths.root)
    targets = resolve_run_ids(manifest, run_ids) if run_ids else list(manifest["runs"])
    with _locked(paths):  # one lock from reading the states to recording the cancellation
        st = status(paths.root).by_id()
        cancelled, not_active, errors = [], {}, {}
        by_kind: dict[str, list[tuple[str, str]]] = {}
        for run_id in targets:
            s = st[run_id]
            if s.state not in ACTIVE_STATES or not s.job_id:
                not_active[run_id] = s.state
                continue
            by_kind.setdefault(s.executor or "", []).append((run_id, s.job_id))
        for kind, pairs in by_kind.items():
            failed = cancel_jobs(kind, paths.jobs, [j for _, j in pairs])
            for run_id, job_id in pairs:
                if job_id in failed:
                    errors[run_id] = failed[job_id]
                else:
                    cancelled.append((run_id, job_id))
        if cancelled:
            manifest = load_manifest(paths.root)
            at, _ = _now()
            for run_id, job_id in cancelled:
                for a in reversed(manifest["runs"][run_id]["attempts"]):
                    if a["job_id"] == job_id:
                        a["cancelled_at"] = at
                        break
            _write_manifest(paths, manifest)
    return CancelReport(cancelled, not_active, errors)


# -------------------------------------------------------------------------------------------- resubmit


def resubmit(
    sweep_dir: str | os.PathLike[str],
    *,
    failed: bool = True,
    cancelled: bool = True,
    run_ids: Sequence[str] = (),
    executor: str | None = None,
    time_min: int | None = None,
    gpus_per_node: int | None = None,
    nodes: int | None = None,
    cpus_per_task: int | None = None,
    mem_gb: float | None = None,
    partition: str | None = None,
    account: str | None = None,
    qos: str | None = None,
    array_parallelism: int | None = None,
    max_retries: int | None = None,
    device: str = "auto",
    job_factory: JobFactory | None = None,
) -> SubmitReport:
    """Submit again the runs that ended ``failed`` (includes ``unknown``) and/or ``cancelled``.

    Uses the executor and options of the sweep's last submission unless overridden. Each resubmitted run
    resumes from its checkpoints in ``runs/<run_id>/`` (the runner's job). ``run_ids`` narrows the
    selection. Completed and active runs are never resubmitted.
    """
    t0 = time.perf_counter()
    paths = SweepPaths.of(sweep_dir)
    load_manifest(paths.root)  # not a sweep: say so before taking the lock
    # One lock from reading the states to recording the new jobs: two resubmits at once cannot both
    # submit the same failed run, and a cancel cannot interleave.
    with _locked(paths):
        manifest = load_manifest(paths.root)
        old = ExecutorOptions.from_dict(manifest.get("executor") or {"kind": "local"})
        kind = executor or old.kind
        if kind not in EXECUTORS:
            raise ConfigError(f"unknown executor {kind!r}; valid choices: {', '.join(EXECUTORS)}")
        _check_common(array_parallelism, max_retries if max_retries is not None else old.max_retries)
        selected = set(resolve_run_ids(manifest, run_ids)) if run_ids else set(manifest["runs"])
        wanted = ({"failed", "unknown"} if failed else set()) | ({"cancelled"} if cancelled else set())
        st = status(paths.root)
        overrides = {
            "time_min": time_min, "gpus_per_node": gpus_per_node, "nodes": nodes, "cpus_per_task": cpus_per_task,
            "mem_gb": mem_gb, "partition": partition, "account": account, "qos": qos,
        }  # fmt: skip
        overrides = {k: v for k, v in overrides.items() if v is not None}
        options = ExecutorOptions(
            kind=kind,
            array_parallelism=array_parallelism if array_parallelism is not None else old.array_parallelism,
            max_retries=max_retries if max_retries is not None else old.max_retries,
            hold=False,
            overrides={**old.overrides, **overrides},
        )
        from runners.config import RunConfig

        todo: list[PlannedRun] = []
        skipped: dict[str, list[str]] = {}
        for s in st.runs:
            if s.run_id not in selected:
                continue
            if s.state not in wanted:
                skipped.setdefault(s.state, []).append(s.run_id)
                continue
            if s.scheduler_state == SCHEDULER_UNREACHABLE:
                raise ConfigError(f"nothing resubmitted: run {s.run_id} may still be running, {s.error}; try again later")
            r = manifest["runs"][s.run_id]
            cfg = RunConfig.from_dict(r["config"], where=f"{paths.manifest}: run {s.run_id}", check_model=False)
            shape = shape_of(r["shape"], overrides)
            todo.append(PlannedRun(s.run_id, cfg, shape, r["planned_train_flops"], r["planned_gpu_hours"], r.get("gpu", "A100")))
        check_executor(kind, sorted({p.shape for p in todo}, key=repr))
        factory = job_factory or _default_job_factory
        callables = {p.run_id: factory(p.config, str(paths.root), device, manifest["sweep_id"]) for p in todo}
        manifest["executor"] = options.to_dict()
        submitted, arrays = _submit_runs(paths, manifest, todo, options, "resubmit", callables)
    if kind == "debug":
        _run_debug_jobs(paths, manifest, submitted)
    return SubmitReport(
        paths.root, manifest["sweep_id"], kind, submitted, skipped, arrays,
        sum(p.planned_train_flops for p in todo), sum(p.planned_gpu_hours for p in todo), False,
        time.perf_counter() - t0,
    )  # fmt: skip


# --------------------------------------------------------------------------------------------- collect


@dataclass(frozen=True)
class Missing:
    """A run without a completed row, and why."""

    run_id: str
    state: str
    reason: str
    log_path: str | None

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class CollectReport:
    table: Any  #: pandas.DataFrame, one completed row per run
    output: Path | None  #: where the table was written
    missing: list[Missing]
    n_runs: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": len(self.table),
            "runs": self.n_runs,
            "output": str(self.output) if self.output else None,
            "missing": [m.to_dict() for m in self.missing],
        }


def collect(sweep_dir: str | os.PathLike[str], *, into: str | os.PathLike[str] | None = None) -> CollectReport:
    """Gather the completed rows of the sweep into one table and say what is missing and why.

    ``into``: a ``.parquet``/``.csv`` file (the table, written atomically) or a results-store folder (each
    completed row not already there is added, so collecting twice adds nothing). Default:
    ``SWEEP/results.parquet``.
    """
    from results.store import ResultStore

    paths = SweepPaths.of(sweep_dir)
    manifest = load_manifest(paths.root)
    st = status(paths.root)
    df = ResultStore(paths.results).read(latest=True)
    if len(df):
        df = df[(df["status"] == "completed") & (df["run_id"].isin(list(manifest["runs"])))].reset_index(drop=True)
    missing = []
    for s in st.runs:
        if s.state == "completed":
            continue
        if s.state == "failed":
            reason = f"failed: {s.error}"
        elif s.state in ACTIVE_STATES:
            reason = f"{s.state} (job {s.job_id}); collect again when it has finished"
        elif s.state == "cancelled":
            reason = f"{s.error or 'cancelled'}; clipbudget resubmit --cancelled"
        else:
            reason = s.error or s.state
        missing.append(Missing(s.run_id, s.state, reason, s.log_path))
    target = Path(into) if into is not None else paths.root / "results.parquet"
    if target.suffix in (".parquet", ".csv"):
        with atomic_open(target, "wb") as fh:
            if target.suffix == ".parquet":
                df.to_parquet(fh, index=False)
            else:
                df.to_csv(fh, index=False)
    else:
        store = ResultStore(target)
        have = store.completed_run_ids()
        for rec in df.to_dict(orient="records"):
            if rec["run_id"] not in have:
                store.write({k: (None if _isna(v) else v) for k, v in rec.items()})
    return CollectReport(df, target, missing, len(manifest["runs"]))


# ----------------------------------------------------------------------------------------------- watch


def wait(
    sweep_dir: str | os.PathLike[str],
    *,
    timeout_s: float = 600.0,
    poll_s: float = 1.0,
    until: Callable[[SweepStatus], bool] | None = None,
) -> SweepStatus:
    """Poll :func:`status` until every run is final (or ``until(status)`` holds); TimeoutError after
    ``timeout_s`` seconds."""
    deadline = time.monotonic() + timeout_s
    while True:
        st = status(sweep_dir)
        if (until(st) if until is not None else st.done):
            return st
        if time.monotonic() > deadline:
            raise TimeoutError(f"sweep {sweep_dir} not done after {timeout_s:.0f}s: {st.counts}")
        time.sleep(poll_s)


__all__ = [
    "ACTIVE_STATES",
    "SCHEDULER_UNREACHABLE",
    "STATES",
    "CancelReport",
    "CollectReport",
    "Ledger",
    "RunStatus",
    "SubmitReport",
    "SweepPaths",
    "SweepStatus",
    "cancel",
    "collect",
    "load_manifest",
    "planned_cost",
    "resubmit",
    "status",
    "submit",
    "wait",
]
