"""The contract every back-end keeps (:class:`Backend`), what it says about a job (:class:`JobView`),
the sweep-wide options (:class:`ExecutorOptions`), and readers of the files submitit writes.

A back-end is one module of this package (``debug``, ``local``, ``slurm``) holding one object that
builds a plain submitit executor for a :class:`~runners.executors.resources.Resources`, submits a batch
to it, and re-attaches to its jobs from any process by folder + job id: views, cancel, interrupt. The
sweep picks it by name from :data:`runners.executors.BACKENDS`; no code outside the back-end's module
asks which back-end it is.

submitit's files, all derived from the jobs folder and the job id (``submitit.core.utils.JobPaths``):
``%j_submitted.pkl``, ``%j_%t_log.out``/``.err`` and ``%j_%t_result.pkl`` (``("success", value)`` or
``("error", traceback)``). Task 0's files speak for the job.
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from budget.errors import ConfigError
from runners.executors.resources import ResourceOverrides, Resources

#: ``JobView.raw`` of a job the scheduler could not be asked about (``sacct`` failed): "cannot tell".
SCHEDULER_UNREACHABLE = "SACCT_FAILED"

_REQUEUE_RE = re.compile(r"Requeued job ")


@dataclass(frozen=True)
class ExecutorOptions:
    """Sweep-wide executor settings (the ``submit`` flags that are not per-run resources).

    ``array_parallelism``: most tasks of one array running at once (slurm), or most jobs running at
    once (local; default: one per GPU group, else ``nproc // cpus_per_task``). ``max_retries``: submitit's
    ``max_num_timeout``. ``hold``: submit SLURM jobs held (``sbatch --hold``; release with ``scontrol
    release``) — used by the submission benchmark. ``overrides``: the command line's resources, recorded.
    """

    kind: str = "local"
    array_parallelism: int | None = None
    max_retries: int = 3
    hold: bool = False
    overrides: ResourceOverrides = field(default_factory=ResourceOverrides)

    def __post_init__(self) -> None:
        if self.array_parallelism is not None and self.array_parallelism < 1:
            raise ConfigError(f"--array-parallelism must be >= 1, got {self.array_parallelism}")
        if self.max_retries < 0:
            raise ConfigError(f"--max-retries must be >= 0, got {self.max_retries}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "array_parallelism": self.array_parallelism,
            "max_retries": self.max_retries,
            "hold": self.hold,
            "overrides": self.overrides.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ExecutorOptions:
        return cls(
            kind=d["kind"],
            array_parallelism=d.get("array_parallelism"),
            max_retries=int(d.get("max_retries", 3)),
            hold=bool(d.get("hold", False)),
            overrides=ResourceOverrides.from_dict(d.get("overrides")),
        )


@dataclass(frozen=True)
class JobView:
    """What the back-end says about one attempt's job."""

    state: str | None  #: pending/running/requeued, or "cancelled"/"failed"/"finished", or None (unknown)
    raw: str | None = None  #: the scheduler's own word (sacct state, process state)
    elapsed_s: float | None = None
    note: str | None = None  #: why the scheduler could not be asked (raw == SCHEDULER_UNREACHABLE)


class Backend(Protocol):
    """One back-end. Every method works from any process, given the jobs folder and job ids.

    Contract: :meth:`problems` and :meth:`check_environment` change nothing; :meth:`build` trusts its
    inputs (check first); :meth:`submit` returns one submitit job per callable, in order, or raises
    :class:`ConfigError` with the scheduler's one-line refusal; :meth:`views` makes at most one call to
    the scheduler for all jobs; :meth:`cancel` returns job_id → error for the jobs it could not cancel.
    """

    name: str
    #: Seconds a just-submitted job may be unknown to the scheduler before it counts as ``unknown``.
    unseen_grace_s: float
    #: Whether submitit may requeue its jobs (then ``Requeued job`` lines in the log count requeues).
    requeues: bool
    #: Whether jobs can be queued held (``submit --hold``).
    holds: bool

    def problems(self, res: Resources) -> list[str]: ...
    def check_environment(self, shapes: Sequence[Resources]) -> list[str]: ...
    def build(self, folder: Path, res: Resources, options: ExecutorOptions, *, name: str) -> Any: ...
    def submit(self, executor: Any, callables: list[Any]) -> list[Any]: ...
    def attempt_fields(self, job: Any) -> dict[str, Any]: ...
    def array_id(self, jobs: list[Any]) -> str: ...
    def run_submitted(self, job_ids: Sequence[str]) -> None: ...
    def views(self, folder: Path, attempts: dict[str, dict[str, Any]]) -> dict[str, JobView]: ...
    def cancel(self, folder: Path, job_ids: list[str]) -> dict[str, str]: ...
    def cancel_one(self, folder: Path, job_id: str) -> None: ...
    def interrupt(self, folder: Path, job_id: str, *, timeout: bool = False) -> None: ...


# ------------------------------------------------------------------------ shared by the back-ends


def this_machine_problems(kind: str, res: Resources, *, gpu_problems: Sequence[str] = ()) -> list[str]:
    """What back-end ``kind``, which runs jobs on this machine only, cannot honour in ``res``: more than
    one node, ``gpu_problems`` (the back-end's own), and the SLURM-only fields."""
    out = [f"nodes={res.nodes} needs --executor slurm ({kind} runs on this machine only)"] if res.nodes > 1 else []
    out += gpu_problems
    out += [
        f"--{name} {getattr(res, name)!r} applies to --executor slurm only (got {kind})"
        for name in ("partition", "account", "qos", "constraint")
        if getattr(res, name) is not None
    ]
    return out


def signal_delay_s(time_min: int) -> int:
    """Seconds before the time limit at which submitit's timeout signal comes: 10 % of the limit,
    between 5 s and 120 s (submitit's default 90 s would signal a 1-minute job at once)."""
    return int(min(120, max(5, 0.1 * time_min * 60)))


def submit_batch(ex: Any, callables: list[Any], *, output: Any = None) -> list[Any]:
    """``ex.submit`` every callable inside ``ex.batch()`` (one SLURM array); sbatch errors → ConfigError.

    ``output``: a context manager held while submitting (the local back-end points child output at a log).
    """
    from submitit.core.utils import FailedJobError

    buf = io.StringIO()
    try:
        # submitit prints sbatch's stderr itself; keep it for the one-line message
        with output or contextlib.nullcontext(), contextlib.redirect_stderr(buf), ex.batch():
            jobs = [ex.submit(c) for c in callables]
    except FailedJobError as exc:
        text = (str(exc).strip() or buf.getvalue().strip() or "no message").splitlines()[0]
        raise ConfigError(f"the scheduler refused the jobs: {text}") from exc
    return jobs


def cancel_each(cancel_one: Callable[[Path, str], None], folder: Path, job_ids: list[str]) -> dict[str, str]:
    """Call ``cancel_one`` per job; return job_id → one-line error for those that failed."""
    errors: dict[str, str] = {}
    for job_id in job_ids:
        try:
            cancel_one(folder, job_id)
        except Exception as exc:  # noqa: BLE001 - report per job
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            errors[job_id] = msg
    return errors


def pid_alive(pid: int) -> bool:
    """True if process ``pid`` exists and is not a zombie (Linux /proc)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


# ------------------------------------------------------------------------ readers of submitit's files


def job_log(folder: str | os.PathLike[str], job_id: str, stream: str = "err") -> Path:
    """submitit's log of task 0 of ``job_id`` (``stream``: ``out`` or ``err``)."""
    return Path(folder) / f"{job_id}_0_log.{stream}"


def job_result(folder: str | os.PathLike[str], job_id: str) -> Path:
    """submitit's result file of task 0 of ``job_id``."""
    return Path(folder) / f"{job_id}_0_result.pkl"


def count_requeues(folder: str | os.PathLike[str], job_id: str) -> int:
    """How often submitit requeued ``job_id`` (its ``Requeued job`` lines in task 0's stdout log)."""
    try:
        text = job_log(folder, job_id, "out").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return 0
    return len(_REQUEUE_RE.findall(text))


def result_error(folder: str | os.PathLike[str], job_id: str) -> str | None:
    """The error a submitit job recorded in its result file (``("error", traceback)``), if any."""
    p = job_result(folder, job_id)
    if not p.exists():
        return None
    try:
        with open(p, "rb") as fh:
            outcome, payload = pickle.load(fh)
    except Exception as exc:  # noqa: BLE001 - a broken result file is itself the error
        return f"unreadable submitit result file {p}: {exc}"
    if outcome == "error":
        lines = [line for line in str(payload).strip().splitlines() if line.strip()]
        return lines[-1] if lines else "job failed"
    return None


__all__ = [
    "SCHEDULER_UNREACHABLE",
    "Backend",
    "ExecutorOptions",
    "JobView",
    "cancel_each",
    "count_requeues",
    "job_log",
    "job_result",
    "pid_alive",
    "result_error",
    "signal_delay_s",
    "submit_batch",
    "this_machine_problems",
]
