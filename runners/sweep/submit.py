"""Submit a grid, or resubmit its failed/cancelled runs, to a back-end; record every attempt in the manifest.

Everything is validated first (grid, executor, resources, partition, sweep folder ownership); on any
error nothing is submitted and the folder is unchanged. Runs are submitted as one batch (= one SLURM
array) per job shape. ``debug`` runs the jobs in this process before returning.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from budget.errors import ConfigError
from runners.executors import (
    BACKENDS,
    ExecutorOptions,
    ResourceOverrides,
    Resources,
    check_executor,
    get_backend,
)
from runners.sweep.folder import (
    SweepPaths,
    any_attempt,
    completed_ids,
    existing_manifest_for,
    load_manifest,
    locked,
    new_manifest,
    now,
    remove_traces,
    resolve_run_ids,
    write_manifest,
)
from runners.sweep.ledger import PlannedRun, plan_runs
from runners.sweep.states import SCHEDULER_UNREACHABLE, status

logger = logging.getLogger(__name__)

#: ``job_factory(cfg, out_dir, device, sweep_id)`` builds the callable submitted for one run.
JobFactory = Callable[..., Any]


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


def _report(paths: SweepPaths, sweep_id: str, kind: str, submitted: list[tuple[str, str]],
            skipped: dict[str, list[str]], arrays: list[str], todo: list[PlannedRun], t0: float,
            dry_run: bool = False) -> SubmitReport:  # fmt: skip
    return SubmitReport(
        paths.root, sweep_id, kind, submitted, skipped, arrays,
        sum(p.planned_train_flops for p in todo), sum(p.planned_gpu_hours for p in todo), dry_run,
        time.perf_counter() - t0,
    )  # fmt: skip


def submit(
    grid_path: str | os.PathLike[str],
    sweep_dir: str | os.PathLike[str],
    *,
    executor: str = "local",
    resources: ResourceOverrides | None = None,
    array_parallelism: int | None = None,
    max_retries: int = 3,
    hold: bool = False,
    dry_run: bool = False,
    device: str = "auto",
    job_factory: JobFactory | None = None,
) -> SubmitReport:
    """Submit every run of the grid at ``grid_path`` that has neither a completed result nor a job yet.

    Non-blocking for ``local`` and ``slurm`` (returns once the jobs are queued); ``debug`` runs the jobs
    in this process before returning. ``resources``: the command line's overrides of the grid's
    resources, for every run. ``dry_run`` validates and reports what would be submitted, writing nothing.
    ``hold`` (slurm) queues the jobs held. ``job_factory(cfg, out_dir, device, sweep_id)`` builds the
    submitted callable (default: :class:`runners.job.RunJob`).

    Example::

        report = submit("grid.yaml", "sweeps/s1", executor="slurm",
                        resources=ResourceOverrides(partition="gpu"), array_parallelism=8)
    """
    t0 = time.perf_counter()
    backend = get_backend(executor)
    options = ExecutorOptions(executor, array_parallelism, max_retries, hold, resources or ResourceOverrides())
    if hold and not backend.holds:
        holding = ", ".join(name for name, b in BACKENDS.items() if b.holds)
        raise ConfigError(f"--hold applies to --executor {holding} only (got {executor})")
    from runners.gridfile import load_grid

    grid_path = Path(grid_path)
    grid = load_grid(grid_path)
    paths = SweepPaths.of(sweep_dir)
    manifest = existing_manifest_for(paths, grid.sweep_id, grid_path)
    planned = plan_runs(grid, options.overrides)
    check_executor(executor, _shapes(planned))
    completed = completed_ids(paths)
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
        return _report(paths, grid.sweep_id, executor, [(p.run_id, "") for p in todo], skipped, [], todo, t0, True)

    # Build the callables before writing anything: an import or pickling problem changes nothing.
    factory = job_factory or _default_job_factory
    callables = {p.run_id: factory(p.config, str(paths.root), device, grid.sweep_id) for p in todo}
    root_existed = paths.root.exists()
    had_content = root_existed and any(paths.root.iterdir())
    try:
        with locked(paths):
            manifest = existing_manifest_for(paths, grid.sweep_id, grid_path)  # re-read under the lock
            if manifest is None:
                runs = {p.run_id: p.manifest_record(i) for i, p in enumerate(planned)}
                manifest = new_manifest(paths, grid, grid_path, options.to_dict(), runs)
            else:
                attempted = {rid for rid, r in manifest["runs"].items() if r.get("attempts")}
                todo = [p for p in todo if p.run_id not in attempted]
            manifest["executor"] = options.to_dict()
            submitted, arrays = _submit_runs(paths, manifest, todo, options, "submit", callables)
    except BaseException:
        # Nothing reached the scheduler and the folder is ours: leave no trace of this call.
        if not had_content and not any_attempt(paths):
            remove_traces(paths, root_existed=root_existed)
        raise
    backend.run_submitted([j for _, j in submitted])
    report = _report(paths, manifest["sweep_id"], executor, submitted, skipped, arrays, todo, t0)
    logger.info("submitted %d run(s) to %s in %.2fs", len(submitted), executor, report.seconds)
    return report


def _shapes(planned: Sequence[PlannedRun]) -> list[Resources]:
    """The distinct job shapes of ``planned`` (one executor, one SLURM array each)."""
    return sorted({p.resources.job_shape for p in planned}, key=repr)


def _submit_runs(
    paths: SweepPaths,
    manifest: dict[str, Any],
    todo: list[PlannedRun],
    options: ExecutorOptions,
    reason: str,
    callables: dict[str, Any],
) -> tuple[list[tuple[str, str]], list[str]]:
    """Submit ``todo`` as one batch (= one SLURM array) per job shape; record each attempt as it lands.

    ``callables``: run_id → the object to submit. A scheduler that refuses a submission (sbatch error)
    raises :class:`ConfigError` with its message; the shapes submitted before stay recorded.
    """
    backend = get_backend(options.kind)
    groups: dict[Resources, list[PlannedRun]] = {}
    for p in todo:
        groups.setdefault(p.resources.job_shape, []).append(p)
    submitted: list[tuple[str, str]] = []
    arrays: list[str] = []
    name = f"clipbudget-{manifest.get('sweep_name') or manifest['sweep_id'][:8]}"
    for shape, runs in groups.items():
        ex = backend.build(paths.jobs, shape, options, name=name)
        jobs = backend.submit(ex, [callables[p.run_id] for p in runs])
        at, ts = now()
        for p, job in zip(runs, jobs):
            attempt = {
                "job_id": str(job.job_id),
                "executor": options.kind,
                "submitted_at": at,
                "submitted_ts": ts,
                "reason": reason,
                "cancelled_at": None,
                **backend.attempt_fields(job),
            }
            manifest["runs"][p.run_id]["shape"] = p.resources.to_dict()
            manifest["runs"][p.run_id]["attempts"].append(attempt)
            submitted.append((p.run_id, str(job.job_id)))
        array = backend.array_id(jobs)
        arrays.append(array)
        manifest["submissions"].append(
            {"at": at, "kind": reason, "executor": options.kind, "shape": shape.to_dict(),
             "job": array, "n_runs": len(runs)}
        )  # fmt: skip
        write_manifest(paths, manifest)
    return submitted, arrays


def resubmit(
    sweep_dir: str | os.PathLike[str],
    *,
    failed: bool = True,
    cancelled: bool = True,
    run_ids: Sequence[str] = (),
    executor: str | None = None,
    resources: ResourceOverrides | None = None,
    array_parallelism: int | None = None,
    max_retries: int | None = None,
    device: str = "auto",
    job_factory: JobFactory | None = None,
) -> SubmitReport:
    """Submit again the runs that ended ``failed`` (includes ``unknown``) and/or ``cancelled``.

    Uses the executor and options of the sweep's last submission unless overridden (``resources``
    overrides each run's recorded resources). Each resubmitted run resumes from its checkpoints in
    ``runs/<run_id>/`` (the runner's job). ``run_ids`` narrows the selection. Completed and active runs
    are never resubmitted.
    """
    t0 = time.perf_counter()
    paths = SweepPaths.of(sweep_dir)
    load_manifest(paths.root)  # not a sweep: say so before taking the lock
    # One lock from reading the states to recording the new jobs: two resubmits at once cannot both
    # submit the same failed run, and a cancel cannot interleave.
    with locked(paths):
        manifest = load_manifest(paths.root)
        old = ExecutorOptions.from_dict(manifest.get("executor") or {"kind": "local"})
        kind = executor or old.kind
        backend = get_backend(kind)
        options = ExecutorOptions(
            kind=kind,
            array_parallelism=array_parallelism if array_parallelism is not None else old.array_parallelism,
            max_retries=max_retries if max_retries is not None else old.max_retries,
            hold=False,
            overrides=old.overrides.merged(resources),
        )
        selected = set(resolve_run_ids(manifest, run_ids)) if run_ids else set(manifest["runs"])
        wanted = ({"failed", "unknown"} if failed else set()) | ({"cancelled"} if cancelled else set())
        todo, skipped = _resubmittable(paths, manifest, selected, wanted, resources)
        check_executor(kind, _shapes(todo))
        factory = job_factory or _default_job_factory
        callables = {p.run_id: factory(p.config, str(paths.root), device, manifest["sweep_id"]) for p in todo}
        manifest["executor"] = options.to_dict()
        submitted, arrays = _submit_runs(paths, manifest, todo, options, "resubmit", callables)
    backend.run_submitted([j for _, j in submitted])
    return _report(paths, manifest["sweep_id"], kind, submitted, skipped, arrays, todo, t0)


def _resubmittable(paths: SweepPaths, manifest: dict[str, Any], selected: set[str], wanted: set[str],
                   resources: ResourceOverrides | None) -> tuple[list[PlannedRun], dict[str, list[str]]]:  # fmt: skip
    """(runs to submit again, state → run_ids left alone) among ``selected``; ConfigError if SLURM could
    not say whether a wanted run is still running."""
    from budget.hardware import DEFAULT_GPU
    from runners.config import RunConfig

    todo: list[PlannedRun] = []
    skipped: dict[str, list[str]] = {}
    for s in status(paths.root).runs:
        if s.run_id not in selected:
            continue
        if s.state not in wanted:
            skipped.setdefault(s.state, []).append(s.run_id)
            continue
        if s.scheduler_state == SCHEDULER_UNREACHABLE:
            raise ConfigError(f"nothing resubmitted: run {s.run_id} may still be running, {s.error}; try again later")
        r = manifest["runs"][s.run_id]
        cfg = RunConfig.from_dict(r["config"], where=f"{paths.manifest}: run {s.run_id}", check_model=False)
        recorded = Resources.from_dict({k: v for k, v in r["shape"].items() if v is not None})
        todo.append(PlannedRun(s.run_id, cfg, recorded.override(resources), r["planned_train_flops"],
                               r["planned_gpu_hours"], r.get("gpu", DEFAULT_GPU)))  # fmt: skip
    return todo, skipped


__all__ = ["JobFactory", "SubmitReport", "resubmit", "submit"]
