"""The ``slurm`` back-end: :class:`submitit.SlurmExecutor`, one job array per resource shape.

At most ``array_parallelism`` tasks of an array run at once (``#SBATCH --array=0-N%P``);
``tasks_per_node = gpus_per_node``. Requeues: submitit's ``max_num_timeout`` bounds how often a
checkpointable job is requeued after a timeout; for jobs shorter than 50 minutes submitit counts *every*
preemption/timeout signal as a timeout (it compares the run time with ``min(0.8 × limit, limit − 10
min)``), so ``--max-retries`` bounds all requeues of such jobs.

Views come from one ``sacct`` call for all jobs (:class:`SacctWatcher`); when ``sacct`` fails, every job
is :data:`~runners.executors.base.SCHEDULER_UNREACHABLE` ("cannot tell"), never "unknown and over".
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from budget.errors import ConfigError
from runners.executors.base import (
    SCHEDULER_UNREACHABLE,
    ExecutorOptions,
    JobView,
    cancel_each,
    signal_delay_s,
    submit_batch,
)
from runners.executors.resources import Resources

logger = logging.getLogger(__name__)

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


def slurm_partitions() -> list[str]:
    """Partition names from ``sinfo`` (without the ``*`` that marks the default)."""
    try:
        out = subprocess.run(
            ["sinfo", "-h", "-o", "%P"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise ConfigError(f"cannot list SLURM partitions with sinfo: {exc}") from exc
    return sorted({line.strip().rstrip("*") for line in out.splitlines() if line.strip()})


def _sacct_watcher_class():
    from submitit.slurm.slurm import SlurmInfoWatcher

    class SacctWatcher(SlurmInfoWatcher):
        """submitit's sacct watcher, also asking for ``ElapsedRaw`` (seconds) — one sacct call for all jobs.

        Unlike submitit's, it keeps sacct's failure in :attr:`error` (submitit logs a warning and reports
        every job as unknown), so a caller can tell "SLURM does not know the job" from "SLURM did not answer".
        """

        error: str | None = None

        def _make_command(self) -> list[str] | None:
            command = super()._make_command()
            if command is None:
                return None
            command[2] = "JobID,State,NodeList,ElapsedRaw"
            return command

        def update(self) -> None:  # submitit's, keeping the error (and without its finished-job set)
            command = self._make_command()
            if command is None:
                return
            self._num_calls += 1
            try:
                proc = subprocess.run(command, capture_output=True, timeout=60, check=False)
            except (OSError, subprocess.SubprocessError) as exc:
                self.error = f"{command[0]}: {exc}"
            else:
                if proc.returncode != 0:
                    why = proc.stderr.decode("utf-8", "replace").strip().splitlines()
                    self.error = f"{command[0]} exited {proc.returncode}" + (f": {why[-1]}" if why else "")
                else:
                    self.error = None
                    self._info_dict.update(self.read_info(proc.stdout))
            self._last_status_check = time.time()

    return SacctWatcher


def __getattr__(name: str):  # lazy: submitit is only imported when a watcher is needed
    if name == "SacctWatcher":
        return _sacct_watcher_class()
    raise AttributeError(name)


def _view(info: dict[str, Any]) -> JobView:
    raw = (info.get("State") or "").split(" ")[0].upper() or None
    elapsed = None
    try:
        elapsed = float(info["ElapsedRaw"]) if info.get("ElapsedRaw") else None
    except ValueError:
        pass
    if raw is None:
        return JobView(None, None, None)
    if raw in _SLURM_ACTIVE:
        return JobView(_SLURM_ACTIVE[raw], raw, elapsed)
    if raw == "CANCELLED":
        return JobView("cancelled", raw, elapsed)
    if raw == "COMPLETED":
        return JobView("finished", raw, elapsed)
    return JobView("failed", raw, elapsed)  # FAILED, TIMEOUT, NODE_FAIL, OUT_OF_MEMORY, PREEMPTED, ...


class SlurmBackend:
    """A SLURM cluster through ``sbatch``/``sacct``/``scancel`` (see the module docstring)."""

    name = "slurm"
    #: How long a just-submitted job may be missing from sacct before it counts as ``unknown`` (s).
    unseen_grace_s = 120.0
    requeues = True
    holds = True

    def problems(self, res: Resources) -> list[str]:
        return []

    def check_environment(self, shapes: Sequence[Resources]) -> list[str]:
        """Raise if SLURM's tools are missing; the unknown partitions ``shapes`` name (reads ``sinfo``)."""
        if shutil.which("sbatch") is None or shutil.which("srun") is None:
            raise ConfigError("executor 'slurm' needs SLURM's sbatch and srun on PATH; neither found (try --executor local)")
        wanted = {s.partition for s in shapes if s.partition is not None}
        if not wanted:
            return []
        available = slurm_partitions()
        return [
            f"unknown partition {name!r}; valid choices: {', '.join(available) or 'none'}"
            for name in sorted(wanted - set(available))
        ]

    def build(self, folder: Path, res: Resources, options: ExecutorOptions, *, name: str = "clipbudget") -> Any:
        import submitit

        ex = submitit.SlurmExecutor(Path(folder), max_num_timeout=options.max_retries)
        params: dict[str, Any] = {
            "job_name": name,
            "time": res.time_min,
            "nodes": res.nodes,
            "ntasks_per_node": res.tasks_per_node,
            "cpus_per_task": res.cpus_per_task,
            "signal_delay_s": signal_delay_s(res.time_min),
            "stderr_to_stdout": False,
        }
        if res.gpus_per_node:
            params["gpus_per_node"] = res.gpus_per_node
        if res.mem_gb is not None:
            params["mem"] = f"{int(res.mem_gb * 1024)}MB"
        for key in ("partition", "account", "qos", "constraint"):
            if getattr(res, key) is not None:
                params[key] = getattr(res, key)
        if options.array_parallelism is not None:
            params["array_parallelism"] = options.array_parallelism
        if options.hold:
            params["additional_parameters"] = {"hold": True}
        ex.update_parameters(**params)
        return ex

    def submit(self, executor: Any, callables: list[Any]) -> list[Any]:
        return submit_batch(executor, callables)

    def attempt_fields(self, job: Any) -> dict[str, Any]:
        return {}

    def array_id(self, jobs: list[Any]) -> str:
        return str(jobs[0].job_id).split("_")[0] if jobs else ""

    def run_submitted(self, job_ids: Sequence[str]) -> None:
        """Nothing to do: the cluster runs the jobs."""

    def views(self, folder: Path, attempts: dict[str, dict[str, Any]]) -> dict[str, JobView]:
        """sacct (through submitit's SLURM watcher, one call for all jobs) → view per job id."""
        if not attempts:
            return {}
        watcher = _sacct_watcher_class()()
        for job_id in attempts:
            watcher.register_job(job_id)
        watcher.update()
        if watcher.error:
            logger.warning("cannot ask SLURM about %d job(s): %s", len(attempts), watcher.error)
            return {j: JobView(None, SCHEDULER_UNREACHABLE, note=watcher.error) for j in attempts}
        return {job_id: _view(watcher.get_info(job_id, mode="cache")) for job_id in attempts}

    def cancel_one(self, folder: Path, job_id: str) -> None:
        """``scancel`` through submitit's ``SlurmJob.cancel``."""
        import submitit

        submitit.SlurmJob(Path(folder), job_id).cancel(check=True)

    def cancel(self, folder: Path, job_ids: list[str]) -> dict[str, str]:
        """One ``scancel ID ...`` call per 200 ids (the command submitit's ``Job.cancel`` runs, batched);
        if it fails, each id is retried alone through ``SlurmJob.cancel`` to say which one failed."""
        if len(job_ids) <= 1:
            return cancel_each(self.cancel_one, folder, job_ids)
        errors: dict[str, str] = {}
        for i in range(0, len(job_ids), 200):
            chunk = job_ids[i : i + 200]
            proc = subprocess.run(["scancel", *chunk], capture_output=True, text=True, check=False)
            if proc.returncode != 0:  # say which ones failed
                errors.update(cancel_each(self.cancel_one, folder, chunk))
        return errors

    def interrupt(self, folder: Path, job_id: str, *, timeout: bool = False) -> None:
        """submitit's ``SlurmJob._interrupt(timeout)``: preemption is ``scancel --signal TERM`` then ``USR2``;
        ``timeout=True`` sends only ``USR2`` (what ``--signal=USR2@N`` sends before the time limit). The job
        checkpoints and requeues itself (``scontrol requeue``)."""
        import submitit

        submitit.SlurmJob(Path(folder), job_id)._interrupt(timeout=timeout)


BACKEND = SlurmBackend()

__all__ = ["BACKEND", "SlurmBackend", "slurm_partitions"]
