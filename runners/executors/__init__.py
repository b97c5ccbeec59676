"""submitit executors for the three back-ends of a sweep: ``debug``, ``local``, ``slurm``.

The back-end is a name, not a code path: :data:`BACKENDS` maps each name to the object of its module
(:mod:`.debug`, :mod:`.local`, :mod:`.slurm`), which keeps the contract of
:class:`~runners.executors.base.Backend`: it builds a plain submitit executor for a run's
:class:`~runners.executors.resources.Resources` and the sweep's :class:`ExecutorOptions`, submits the
runner itself (``runners.job.RunJob``) to it, and re-attaches to its jobs (views, cancel, interrupt).

* ``debug`` — :class:`submitit.DebugExecutor`: jobs run one after another inside the submitting process.
* ``local`` — :class:`submitit.LocalExecutor`: one process tree per job on this machine, with slots.
* ``slurm`` — :class:`submitit.SlurmExecutor`: one job array per resource shape.

Example::

    ex = build_executor("local", "/tmp/sweep/jobs", Resources(cpus_per_task=1), ExecutorOptions(kind="local"))
    job = ex.submit(RunJob(cfg, "/tmp/sweep"))
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from budget.errors import ConfigError
from runners.executors import debug, local, slurm
from runners.executors.base import (
    SCHEDULER_UNREACHABLE,
    Backend,
    ExecutorOptions,
    JobView,
    count_requeues,
    job_log,
    job_result,
    pid_alive,
    result_error,
)
from runners.executors.local import local_job_alive, local_slot_setup, local_slots, visible_gpus
from runners.executors.resources import RESOURCE_FIELDS, ResourceOverrides, Resources, check_resources_dict
from runners.executors.slurm import slurm_partitions

#: Back-end name → back-end object: the one place that knows which back-ends exist.
BACKENDS: dict[str, Backend] = {b.name: b for b in (debug.BACKEND, local.BACKEND, slurm.BACKEND)}
#: The back-end names ``clipbudget submit --executor`` accepts.
EXECUTORS: tuple[str, ...] = tuple(BACKENDS)


def get_backend(kind: str) -> Backend:
    """The back-end called ``kind``; :class:`ConfigError` naming the valid ones otherwise."""
    try:
        return BACKENDS[kind]
    except KeyError:
        raise ConfigError(f"unknown executor {kind!r}; valid choices: {', '.join(EXECUTORS)}") from None


def check_shape(kind: str, res: Resources) -> list[str]:
    """Problems with running ``res`` on back-end ``kind`` (empty when fine); no side effects."""
    return get_backend(kind).problems(res)


def check_executor(kind: str, shapes: Sequence[Resources]) -> None:
    """Raise :class:`ConfigError` if back-end ``kind`` cannot run ``shapes`` (unknown name, no SLURM,
    unknown partition, too many GPUs...). Reads ``sinfo`` for slurm; changes nothing.
    """
    backend = get_backend(kind)
    problems = [p for s in shapes for p in backend.problems(s)]
    problems += backend.check_environment(shapes)
    if problems:
        # one line: the first problem, with a count of the others
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise ConfigError(problems[0] + more)


def build_executor(kind: str, folder: str | Path, res: Resources, options: ExecutorOptions, *,
                   name: str = "clipbudget") -> Any:  # fmt: skip
    """A submitit executor of back-end ``kind`` writing to ``folder``, configured for ``res``.

    Call :func:`check_executor` first: this function trusts its inputs.
    """
    return get_backend(kind).build(Path(folder), res, options, name=name)


def cancel_job(kind: str, folder: str | Path, job_id: str) -> None:
    """Cancel one job from any process: ``scancel`` (slurm, via submitit), or signals (local)."""
    get_backend(kind).cancel_one(Path(folder), job_id)


def cancel_jobs(kind: str, folder: str | Path, job_ids: list[str]) -> dict[str, str]:
    """Cancel many jobs; return job_id → error for those that could not be cancelled."""
    return get_backend(kind).cancel(Path(folder), list(job_ids))


def interrupt_job(kind: str, folder: str | Path, job_id: str, *, timeout: bool = False) -> None:
    """Send the preemption signal to a running job, as the scheduler would (for tests and drills).

    slurm: ``scancel --signal TERM`` then ``USR2`` (``timeout=True``: only ``USR2``); the job checkpoints
    and requeues itself. local: ``USR2`` to the job's tasks. debug: no preemption path exists.
    """
    get_backend(kind).interrupt(Path(folder), job_id, timeout=timeout)


def __getattr__(name: str):  # lazy: submitit is only imported when a watcher is needed
    if name == "SacctWatcher":
        return slurm.SacctWatcher
    raise AttributeError(name)


__all__ = [
    "BACKENDS",
    "EXECUTORS",
    "RESOURCE_FIELDS",
    "SCHEDULER_UNREACHABLE",
    "Backend",
    "ExecutorOptions",
    "JobView",
    "ResourceOverrides",
    "Resources",
    "build_executor",
    "cancel_job",
    "cancel_jobs",
    "check_executor",
    "check_resources_dict",
    "check_shape",
    "count_requeues",
    "get_backend",
    "interrupt_job",
    "job_log",
    "job_result",
    "local_job_alive",
    "local_slot_setup",
    "local_slots",
    "pid_alive",
    "result_error",
    "slurm_partitions",
    "visible_gpus",
]
