"""Run states: what :func:`status` says about every run of a sweep, from any process.

Truth, in order: a ``completed`` result row; a cancellation recorded by ``cancel`` (or SLURM's
``CANCELLED``); the back-end's view of the newest attempt (``sacct`` through submitit's watcher, the
local job's process, the debug submitter); a ``failed`` row newer than that attempt; finally the job's
submitit result file (a job that died before the runner could write its row).

Run states (:data:`STATES`): ``pending``, ``running``, ``requeued`` (preempted or timed out and waiting to
restart from its checkpoint), ``completed``, ``failed``, ``cancelled``, and ``unknown`` (the scheduler no
longer knows the job and no row exists — or could not be asked: when ``sacct`` fails, the run's
``scheduler_state`` is :data:`SCHEDULER_UNREACHABLE`, the sweep is not ``done`` and ``resubmit``
refuses, since the job may still be running).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runners.executors import SCHEDULER_UNREACHABLE, JobView, count_requeues, get_backend, result_error
from runners.sweep.folder import SweepPaths, completed_ids, load_manifest, now, parse_iso, rows_by_run
from runners.sweep.ledger import Ledger, spent

STATES: tuple[str, ...] = ("pending", "running", "requeued", "completed", "failed", "cancelled", "unknown")
ACTIVE_STATES = frozenset({"pending", "running", "requeued"})


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


def status(sweep_dir: str | os.PathLike[str]) -> SweepStatus:
    """The state of every run of the sweep and its budget ledger; works from any process.

    Changes nothing but the results folder's read cache (the store's snapshot, when many rows are new).
    """
    paths = SweepPaths.of(sweep_dir)
    manifest = load_manifest(paths.root)
    # Ask the scheduler first, read the rows second: a job writes its row before it ends, so a job the
    # scheduler reports finished has its row on disk by the time the rows are read.
    completed_before = completed_ids(paths)
    latest: dict[str, dict[str, Any]] = {}
    by_kind: dict[str, dict[str, dict[str, Any]]] = {}
    for run_id, r in manifest["runs"].items():
        if r["attempts"]:
            a = r["attempts"][-1]
            latest[run_id] = a
            if run_id not in completed_before:
                by_kind.setdefault(a["executor"], {})[a["job_id"]] = a
    views: dict[str, JobView] = {}
    for kind, attempts in by_kind.items():
        views.update(get_backend(kind).views(paths.jobs, attempts))
    rows = rows_by_run(paths)

    t_now = time.time()
    out = []
    wall_s = 0.0
    for run_id, r in sorted(manifest["runs"].items(), key=lambda kv: kv[1].get("index", 0)):
        cfg = r["config"]
        run_rows = rows.get(run_id, [])
        a = latest.get(run_id)
        job_id = a["job_id"] if a else None
        view = views.get(job_id) if job_id else None
        state, error, elapsed = _decide(paths, a, view, run_rows, t_now)
        requeues = count_requeues(paths.jobs, job_id) if job_id and get_backend(a["executor"]).requeues else 0
        if state == "pending" and requeues:
            state = "requeued"
        spent_flops, spent_hours, run_wall_s = spent(run_rows, r["planned_train_flops"])
        wall_s += run_wall_s + (elapsed if state == "running" and elapsed else 0.0)
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
                log_path=str(paths.job_log(job_id, "err")) if job_id else None,
                planned_train_flops=float(r["planned_train_flops"]),
                planned_gpu_hours=float(r["planned_gpu_hours"]),
                spent_train_flops=spent_flops,
                spent_gpu_hours=spent_hours,
                scheduler_state=view.raw if view else None,
            )
        )
    return SweepStatus(
        paths.root, manifest["sweep_id"], manifest.get("sweep_name"),
        (manifest.get("executor") or {}).get("kind"), out, Ledger.of(out, wall_s), now()[0],
    )  # fmt: skip


def _decide(
    paths: SweepPaths,
    attempt: dict[str, Any] | None,
    view: JobView | None,
    rows: list[dict[str, Any]],
    t_now: float,
) -> tuple[str, str | None, float | None]:
    """(state, error, elapsed seconds) of one run."""
    completed = [x for x in rows if x["status"] == "completed"]
    if completed:
        row = completed[-1]
        return "completed", None, row.get("wall_seconds")
    if attempt is None:
        return "unknown", "never submitted (clipbudget submit was interrupted?)", None
    submitted_ts = float(attempt.get("submitted_ts") or 0.0)
    failed_rows = [
        x for x in rows if x["status"] == "failed" and (parse_iso(x.get("finished_at")) or t_now) >= submitted_ts - 5
    ]
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
    pickled = result_error(paths.jobs, job_id)
    if view is None or view.state is None:
        if t_now - submitted_ts < get_backend(attempt["executor"]).unseen_grace_s:
            return "pending", None, None  # the scheduler has not seen the new job yet
        if pickled:
            return "failed", pickled, None
        return "unknown", f"the scheduler does not know job {job_id} and no result row exists", None
    if pickled:
        return "failed", pickled, view.elapsed_s
    return "failed", f"job {job_id} ended ({view.raw}) without a result row; see {paths.job_log(job_id, 'err')}", view.elapsed_s


__all__ = ["ACTIVE_STATES", "SCHEDULER_UNREACHABLE", "STATES", "RunStatus", "SweepStatus", "status"]
