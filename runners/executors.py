"""submitit executors for the three back-ends of a sweep: ``debug``, ``local``, ``slurm``.

The back-end is a name, not a code path: :func:`build_executor` returns a plain submitit executor
configured from a run's :class:`runners.grid.Resources` and the sweep's :class:`ExecutorOptions`, and the
sweep submits the runner itself (``runners.job.RunJob``) to it.

* ``debug`` — :class:`submitit.DebugExecutor`: jobs run one after another inside the submitting process
  (``clipbudget submit`` returns when they are done). No requeue, no cancel, one device.
* ``local`` — :class:`submitit.LocalExecutor`: one process tree per job on this machine. submitit's local
  executor starts every job at once and kills it after ``timeout_min`` (its default: 2 minutes), so each job
  gets an explicit ``timeout_min`` and waits for a free *slot* before starting (a ``flock`` on
  ``jobs/slots/<i>.lock``, see :func:`local_slot_setup`); with GPUs, a job claims a free group of
  ``gpus_per_node`` GPUs and sees only them through ``CUDA_VISIBLE_DEVICES`` (one GPU per concurrent
  job by default), whatever the GPU counts of the sweep's other jobs.
* ``slurm`` — :class:`submitit.SlurmExecutor`: one job array per resource shape, at most
  ``array_parallelism`` tasks at once (``#SBATCH --array=0-N%P``), ``tasks_per_node = gpus_per_node``.

Requeues: submitit's ``max_num_timeout`` bounds how often a checkpointable job is requeued after a
timeout; for jobs shorter than 50 minutes submitit counts *every* preemption/timeout signal as a
timeout (it compares the run time with ``min(0.8 × limit, limit − 10 min)``), so ``--max-retries`` bounds
all requeues of such jobs.

Example::

    ex = build_executor("local", "/tmp/sweep/jobs", resources, ExecutorOptions(kind="local"))
    job = ex.submit(RunJob(cfg, "/tmp/sweep"))
"""

from __future__ import annotations

import logging
import math
import os
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from budget.errors import ConfigError

logger = logging.getLogger(__name__)

#: The back-end names ``clipbudget submit --executor`` accepts.
EXECUTORS: tuple[str, ...] = ("debug", "local", "slurm")

@dataclass(frozen=True)
class Shape:
    """The resources one job asks for (one job array per distinct shape).

    ``time_min`` is the wall-clock limit in minutes; ``mem_gb`` is per node, in GiB (None: the
    scheduler's default); ``gpus_per_node`` 0 means a CPU job.
    """

    gpus_per_node: int = 0
    nodes: int = 1
    cpus_per_task: int = 2
    mem_gb: float | None = None
    time_min: int = 60
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None

    @property
    def tasks_per_node(self) -> int:
        """One process per GPU (the runner sets up torch.distributed from submitit's environment)."""
        return max(1, self.gpus_per_node)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class ExecutorOptions:
    """Sweep-wide executor settings (the ``submit`` flags that are not per-run resources).

    ``array_parallelism``: most tasks of one array running at once (slurm), or most jobs running at
    once (local; default: one per GPU group, else ``nproc // cpus_per_task``). ``max_retries``: submitit's
    ``max_num_timeout``. ``hold``: submit SLURM jobs held (``sbatch --hold``; release with ``scontrol
    release``) — used by the submission benchmark.
    """

    kind: str = "local"
    array_parallelism: int | None = None
    max_retries: int = 3
    hold: bool = False
    overrides: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "array_parallelism": self.array_parallelism,
            "max_retries": self.max_retries,
            "hold": self.hold,
            "overrides": dict(self.overrides),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ExecutorOptions:
        return cls(
            kind=d["kind"],
            array_parallelism=d.get("array_parallelism"),
            max_retries=int(d.get("max_retries", 3)),
            hold=bool(d.get("hold", False)),
            overrides=dict(d.get("overrides") or {}),
        )


def shape_of(resources: Any, overrides: dict[str, Any] | None = None) -> Shape:
    """The :class:`Shape` of a grid ``Resources`` object (or mapping), with command-line overrides applied.

    >>> shape_of({"gpus_per_node": 2, "time_min": 30}, {"time_min": 10}).time_min
    10
    """
    values: dict[str, Any] = {}
    for name in Shape.__dataclass_fields__:
        if isinstance(resources, dict):
            value = resources.get(name)
        else:
            value = getattr(resources, name, None)
        if value is not None:
            values[name] = value
    for name, value in (overrides or {}).items():
        if value is not None:
            values[name] = value
    for name in ("gpus_per_node", "nodes", "cpus_per_task", "time_min"):
        if name in values:
            values[name] = int(values[name])
    if values.get("mem_gb") is not None:
        values["mem_gb"] = float(values["mem_gb"])
    return Shape(**values)


def check_shape(kind: str, shape: Shape) -> list[str]:
    """Problems with running ``shape`` on back-end ``kind`` (empty when fine); no side effects."""
    problems = []
    if shape.nodes < 1 or shape.cpus_per_task < 1 or shape.gpus_per_node < 0 or shape.time_min < 1:
        problems.append(
            f"invalid resources {shape.to_dict()}: nodes, cpus_per_task and time_min must be >= 1, "
            "gpus_per_node >= 0"
        )
    if shape.mem_gb is not None and not (math.isfinite(shape.mem_gb) and shape.mem_gb > 0):
        problems.append(f"invalid resources: mem_gb must be a positive number of GiB (got {shape.mem_gb})")
    if kind in ("debug", "local") and shape.nodes > 1:
        problems.append(f"nodes={shape.nodes} needs --executor slurm ({kind} runs on this machine only)")
    if kind == "debug" and shape.gpus_per_node > 1:
        problems.append(f"gpus_per_node={shape.gpus_per_node} needs --executor local or slurm (debug runs one process)")
    if kind == "local" and shape.gpus_per_node > 0:
        gpus = visible_gpus()
        if len(gpus) < shape.gpus_per_node:
            problems.append(
                f"gpus_per_node={shape.gpus_per_node} but this machine has {len(gpus)} GPU(s) "
                f"(visible: {list(gpus) or 'none'})"
            )
    return problems


def check_executor(kind: str, shapes: list[Shape]) -> None:
    """Raise :class:`ConfigError` if back-end ``kind`` cannot run ``shapes`` (unknown name, no SLURM,
    unknown partition, too many GPUs...). Reads ``sinfo`` for slurm; changes nothing.
    """
    if kind not in EXECUTORS:
        raise ConfigError(f"unknown executor {kind!r}; valid choices: {', '.join(EXECUTORS)}")
    problems = [p for s in shapes for p in check_shape(kind, s)]
    if kind != "slurm":
        for s in shapes:
            for name in ("partition", "account", "qos", "constraint"):
                if getattr(s, name) is not None:
                    problems.append(f"--{name} {getattr(s, name)!r} applies to --executor slurm only (got {kind})")
    else:
        if shutil.which("sbatch") is None or shutil.which("srun") is None:
            raise ConfigError("executor 'slurm' needs SLURM's sbatch and srun on PATH; neither found (try --executor local)")
        wanted = {s.partition for s in shapes if s.partition is not None}
        if wanted:
            available = slurm_partitions()
            for name in sorted(wanted - set(available)):
                problems.append(f"unknown partition {name!r}; valid choices: {', '.join(available) or 'none'}")
    if problems:
        # one line: the first problem, with a count of the others
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise ConfigError(problems[0] + more)


def slurm_partitions() -> list[str]:
    """Partition names from ``sinfo`` (without the ``*`` that marks the default)."""
    try:
        out = subprocess.run(
            ["sinfo", "-h", "-o", "%P"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise ConfigError(f"cannot list SLURM partitions with sinfo: {exc}") from exc
    return sorted({line.strip().rstrip("*") for line in out.splitlines() if line.strip()})


def visible_gpus() -> tuple[str, ...]:
    """GPU ids this machine may use, without importing torch: ``CUDA_VISIBLE_DEVICES`` if set, else
    ``nvidia-smi -L`` (none if it is absent)."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return tuple(x.strip() for x in env.split(",") if x.strip() and x.strip() != "-1")
    if shutil.which("nvidia-smi") is None:
        return ()
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    return tuple(str(i) for i, line in enumerate(out.splitlines()) if line.startswith("GPU "))


def local_slots(shape: Shape, array_parallelism: int | None) -> list[str]:
    """The slots of the local executor for ``shape``: one entry per concurrent job, holding the
    ``CUDA_VISIBLE_DEVICES`` value of that slot ("" for CPU jobs)."""
    if shape.gpus_per_node > 0:
        gpus = visible_gpus()
        groups = [
            ",".join(gpus[i : i + shape.gpus_per_node])
            for i in range(0, len(gpus) - shape.gpus_per_node + 1, shape.gpus_per_node)
        ]
        n = len(groups) if array_parallelism is None else min(len(groups), array_parallelism)
        return groups[: max(1, n)]
    n = array_parallelism or max(1, (os.cpu_count() or 1) // shape.cpus_per_task)
    return [""] * max(1, n)


def local_slot_setup(folder: Path, slots: list[str]) -> list[str]:
    """Shell set-up (submitit ``setup``) that makes a local job wait for a free slot.

    CPU jobs: the job's shell loops over ``folder/slots/<i>.lock`` until ``flock -n`` gets one; the lock
    stays held by the shell and its controller until the job ends. GPU jobs: slots are groups of GPUs
    (``"0,1"``), and jobs of different shapes (1 GPU, 2 GPUs...) may share a sweep, so a job claims each
    GPU of a free group: under the short lock ``folder/slots/gpus.lock`` it reads
    ``folder/slots/gpu-<id>.owner`` (the job id, i.e. the shell's pid, of the GPU's holder) and claims
    a group none of whose owners is alive (a zombie, which a long-lived submitting process may leave
    unreaped, is not). A claim ends when its job's process does.

    The job then exports the slot's ``CUDA_VISIBLE_DEVICES`` and writes ``folder/<job id>_started``
    (the start time, seconds since the epoch), which ``status`` reads to tell pending from running.
    """
    lock_dir = folder / "slots"
    lock_dir.mkdir(parents=True, exist_ok=True)
    q = shlex.quote
    d = q(str(lock_dir))
    indices = " ".join(str(i) for i in range(len(slots)))
    if not any(slots):
        wait = (
            f"for _cb_i in {indices}; do exec 9>>{d}/$_cb_i.lock; "
            "if flock -n 9; then _cb_slot=$_cb_i; break; fi; done; "
        )
        export = ""
    else:
        groups = " ".join(f"{i}) _cb_g={q(g.replace(',', ' '))} ;;" for i, g in enumerate(slots))
        wait = (
            f"exec 9>>{d}/gpus.lock; flock 9; "
            f"for _cb_i in {indices}; do case $_cb_i in {groups} esac; _cb_free=1; "
            f"for _cb_d in $_cb_g; do _cb_o=$(cat {d}/gpu-$_cb_d.owner 2>/dev/null); "
            "if [ -n \"$_cb_o\" ] && [ \"$_cb_o\" != $$ ] && [ -e /proc/$_cb_o/stat ] && "
            "[ \"$(sed 's/.*) //' /proc/$_cb_o/stat | cut -c1)\" != Z ]; then _cb_free=; fi; done; "
            "if [ -n \"$_cb_free\" ]; then "
            f"for _cb_d in $_cb_g; do echo $$ > {d}/gpu-$_cb_d.owner; done; _cb_slot=$_cb_i; break; fi; done; "
            "flock -u 9; exec 9>&-; "
        )
        export = "export CUDA_VISIBLE_DEVICES=$(echo $_cb_g | tr ' ' ','); "
    script = (
        "{ _cb_slot=; while [ -z \"$_cb_slot\" ]; do "
        + wait
        + "[ -n \"$_cb_slot\" ] || sleep 1; done; "
        + export
        + f"date +%s.%N > {q(str(folder))}/$$_started; }}"
    )
    return [script]


def _signal_delay_s(time_min: int) -> int:
    """Seconds before the time limit at which submitit's timeout signal comes: 10 % of the limit,
    between 5 s and 120 s (submitit's default 90 s would signal a 1-minute job at once)."""
    return int(min(120, max(5, 0.1 * time_min * 60)))


def build_executor(kind: str, folder: str | Path, shape: Shape, options: ExecutorOptions, *, name: str = "clipbudget"):
    """A submitit executor of back-end ``kind`` writing to ``folder``, configured for ``shape``.

    Call :func:`check_executor` first: this function trusts its inputs.
    """
    import submitit

    folder = Path(folder)
    if kind == "debug":
        return submitit.DebugExecutor(folder)
    if kind == "local":
        ex = submitit.LocalExecutor(folder, max_num_timeout=options.max_retries)
        slots = local_slots(shape, options.array_parallelism)
        params: dict[str, Any] = {
            "timeout_min": shape.time_min,
            "signal_delay_s": _signal_delay_s(shape.time_min),
            "tasks_per_node": shape.tasks_per_node,
            "setup": local_slot_setup(folder, slots),
        }
        if shape.gpus_per_node:
            # the slot's CUDA_VISIBLE_DEVICES (set by the set-up) wins; submitit only needs the count
            params["gpus_per_node"] = shape.gpus_per_node
        ex.update_parameters(**params)
        return ex
    if kind == "slurm":
        ex = submitit.SlurmExecutor(folder, max_num_timeout=options.max_retries)
        params = {
            "job_name": name,
            "time": shape.time_min,
            "nodes": shape.nodes,
            "ntasks_per_node": shape.tasks_per_node,
            "cpus_per_task": shape.cpus_per_task,
            "signal_delay_s": _signal_delay_s(shape.time_min),
            "stderr_to_stdout": False,
        }
        if shape.gpus_per_node:
            params["gpus_per_node"] = shape.gpus_per_node
        if shape.mem_gb is not None:
            params["mem"] = f"{int(shape.mem_gb * 1024)}MB"
        for key in ("partition", "account", "qos", "constraint"):
            if getattr(shape, key) is not None:
                params[key] = getattr(shape, key)
        if options.array_parallelism is not None:
            params["array_parallelism"] = options.array_parallelism
        if options.hold:
            params["additional_parameters"] = {"hold": True}
        ex.update_parameters(**params)
        return ex
    raise ConfigError(f"unknown executor {kind!r}; valid choices: {', '.join(EXECUTORS)}")


# ------------------------------------------------------------------------------ re-attaching to jobs


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


def _argv(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            raw = fh.read()
    except OSError:
        return []
    return [a.decode("utf-8", "replace") for a in raw.split(b"\0")[:-1]]


def _cmdline(pid: int) -> str:
    return " ".join(_argv(pid))


def pid_alive(pid: int) -> bool:
    """True if process ``pid`` exists and is not a zombie (Linux /proc)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _children(pid: int) -> list[int]:
    """Child pids of ``pid`` (from /proc/<pid>/task/*/children, else a scan of /proc)."""
    kids: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children", encoding="utf-8") as fh:
                kids.extend(int(x) for x in fh.read().split())
        return kids
    except OSError:
        pass
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", encoding="utf-8") as fh:
                    if int(fh.read().rsplit(")", 1)[1].split()[1]) == pid:
                        kids.append(int(name))
            except (OSError, IndexError, ValueError):
                continue
    return kids


def local_job_alive(folder: str | Path, job_id: str) -> bool:
    """True if the local job ``job_id`` (the pid of its shell) still runs — checked against its command
    line, which ends with ``-m submitit.local._local FOLDER`` for exactly this ``folder`` (absolute, as
    submitit writes it), so neither a recycled pid nor another sweep's job counts."""
    try:
        pid = int(job_id)
    except ValueError:
        return False
    if not pid_alive(pid):
        return False
    args = _argv(pid)
    folder = str(Path(folder).expanduser().absolute())
    if args[-2:] == ["submitit.local._local", folder]:  # started without a shell
        return True
    return bool(args) and args[-1].endswith("submitit.local._local " + shlex.quote(folder))


def _local_processes(folder: Path, job_id: str) -> tuple[list[int], list[int]]:
    """(controller pids, task pids) of a live local job."""
    if not local_job_alive(folder, job_id):
        return [], []
    shell = int(job_id)
    controllers = [k for k in _children(shell) if "submitit.local._local" in _cmdline(k)]
    if not controllers and "-m submitit.local._local" in _cmdline(shell):
        controllers = [shell]  # started without a shell
    tasks = [t for c in controllers for t in _children(c) if "submitit.core._submit" in _cmdline(t)]
    return controllers, tasks


def cancel_job(kind: str, folder: str | Path, job_id: str) -> None:
    """Cancel one job from any process: ``scancel`` (slurm, via submitit), or signals (local)."""
    import signal

    folder = Path(folder)
    if kind == "slurm":
        import submitit

        submitit.SlurmJob(folder, job_id).cancel(check=True)
    elif kind == "local":
        controllers, _ = _local_processes(folder, job_id)
        if controllers:
            for c in controllers:  # the controller stops its tasks (SIGINT, then SIGKILL after 1 s)
                os.kill(c, signal.SIGINT)
        elif local_job_alive(folder, job_id):
            os.kill(int(job_id), signal.SIGTERM)  # still waiting for a slot
        else:
            raise RuntimeError(f"local job {job_id} is no longer running")
    else:
        raise ConfigError(f"{kind} jobs cannot be cancelled (they run inside clipbudget submit)")


def cancel_jobs(kind: str, folder: str | Path, job_ids: list[str]) -> dict[str, str]:
    """Cancel many jobs; return job_id → error for those that could not be cancelled.

    SLURM: one ``scancel ID ...`` call per 200 ids (the command submitit's ``Job.cancel`` runs, batched);
    if it fails, each id is retried alone through ``SlurmJob.cancel`` to say which one failed.
    """
    errors: dict[str, str] = {}
    if kind == "slurm" and len(job_ids) > 1:
        for i in range(0, len(job_ids), 200):
            chunk = job_ids[i : i + 200]
            proc = subprocess.run(["scancel", *chunk], capture_output=True, text=True, check=False)
            if proc.returncode != 0:  # say which ones failed
                for j in chunk:
                    errors.update(cancel_jobs(kind, folder, [j]))
        return errors
    for job_id in job_ids:
        try:
            cancel_job(kind, folder, job_id)
        except Exception as exc:  # noqa: BLE001 - report per job
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            errors[job_id] = msg
    return errors


def interrupt_job(kind: str, folder: str | Path, job_id: str, *, timeout: bool = False) -> None:
    """Send the preemption signal to a running job, as the scheduler would (for tests and drills).

    slurm: submitit's ``SlurmJob._interrupt(timeout)``: preemption is ``scancel --signal TERM`` then
    ``USR2``; ``timeout=True`` sends only ``USR2`` (what ``--signal=USR2@N`` sends before the time limit).
    The job checkpoints and requeues itself (``scontrol requeue``). local: ``USR2`` to the job's tasks — what submitit's
    local controller sends at the time limit; the task checkpoints and exits with code 144 and the
    controller restarts it. debug: no preemption path exists (jobs run in-process).
    """
    folder = Path(folder)
    if kind == "slurm":
        import submitit

        submitit.SlurmJob(folder, job_id)._interrupt(timeout=timeout)
    elif kind == "local":
        from submitit.core.job_environment import JobEnvironment

        _, tasks = _local_processes(folder, job_id)
        if not tasks:
            raise RuntimeError(f"local job {job_id} has no running task to interrupt")
        for t in tasks:
            os.kill(t, JobEnvironment._usr_sig())
    else:
        raise ConfigError(f"{kind} jobs have no preemption path (they run inside clipbudget submit)")
