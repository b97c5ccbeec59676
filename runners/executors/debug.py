"""The ``debug`` back-end: :class:`submitit.DebugExecutor`, jobs run one after another inside the
submitting process (``clipbudget submit`` returns when they are done). No requeue, no cancel, one device.

Like submitit's ``DebugJob.results()`` (environment, log files) but without its post-mortem debugger,
which would wait for a terminal; a failing job does not stop the others. Each job that has run leaves
``jobs/<job_id>_ended``, so any process tells a finished debug job from one still running in its
submitter (whose pid the attempt records).
"""

from __future__ import annotations

import logging
import os
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from budget.errors import ConfigError
from runners.executors.base import (
    ExecutorOptions,
    JobView,
    cancel_each,
    job_log,
    pid_alive,
    submit_batch,
    this_machine_problems,
)
from runners.executors.resources import Resources

logger = logging.getLogger(__name__)

# submitted DebugJob objects of this process, by job id (debug jobs only exist in their submitter)
_PENDING: dict[str, Any] = {}


def _ended_marker(folder: str | os.PathLike[str], job_id: str) -> Path:
    return Path(folder) / f"{job_id}_ended"


def _run_in_process(job: Any) -> None:
    """Run one DebugJob here with its environment and submitit's log files; never raises its error."""
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
            logger.warning("debug job %s failed: %s", job.job_id, str(error).strip().splitlines()[-1:])
            with open(job.paths.stderr, "a", encoding="utf-8") as fh:
                fh.write("".join(traceback.format_exception(error)))
    finally:
        for h in handlers:
            root.removeHandler(h)
            h.close()
        os.environ.clear()
        os.environ.update(saved)
        _ended_marker(job.paths.folder, job.job_id).write_text(f"{time.time()}\n")


class DebugBackend:
    """In-process jobs (see the module docstring)."""

    name = "debug"
    unseen_grace_s = 0.0
    requeues = False
    holds = False

    def problems(self, res: Resources) -> list[str]:
        gpus = (
            [f"gpus_per_node={res.gpus_per_node} needs --executor local or slurm (debug runs one process)"]
            if res.gpus_per_node > 1 else []
        )  # fmt: skip
        return this_machine_problems(self.name, res, gpu_problems=gpus)

    def check_environment(self, shapes: Sequence[Resources]) -> list[str]:
        return []

    def build(self, folder: Path, res: Resources, options: ExecutorOptions, *, name: str = "clipbudget") -> Any:
        import submitit

        return submitit.DebugExecutor(Path(folder))

    def submit(self, executor: Any, callables: list[Any]) -> list[Any]:
        jobs = submit_batch(executor, callables)
        _PENDING.update({str(j.job_id): j for j in jobs})
        return jobs

    def attempt_fields(self, job: Any) -> dict[str, Any]:
        return {"pid": os.getpid()}

    def array_id(self, jobs: list[Any]) -> str:
        return ""

    def run_submitted(self, job_ids: Sequence[str]) -> None:
        """Run the jobs submitted by this process, one after another."""
        for job_id in job_ids:
            job = _PENDING.pop(job_id, None)
            if job is not None:
                _run_in_process(job)

    def views(self, folder: Path, attempts: dict[str, dict[str, Any]]) -> dict[str, JobView]:
        views = {}
        for job_id, a in attempts.items():
            ended = bool(a.get("ended_at")) or _ended_marker(folder, job_id).exists()
            pid = a.get("pid")
            if not ended and pid and (pid == os.getpid() or pid_alive(int(pid))):
                views[job_id] = JobView("running" if job_log(folder, job_id, "out").exists() else "pending", "IN_PROCESS")
            else:
                views[job_id] = JobView("finished", "ENDED" if ended else "SUBMITTER_EXITED")
        return views

    def cancel_one(self, folder: Path, job_id: str) -> None:
        raise ConfigError("debug jobs cannot be cancelled (they run inside clipbudget submit)")

    def cancel(self, folder: Path, job_ids: list[str]) -> dict[str, str]:
        return cancel_each(self.cancel_one, folder, job_ids)

    def interrupt(self, folder: Path, job_id: str, *, timeout: bool = False) -> None:
        raise ConfigError("debug jobs have no preemption path (they run inside clipbudget submit)")


BACKEND = DebugBackend()

__all__ = ["BACKEND", "DebugBackend"]
