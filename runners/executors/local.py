"""The ``local`` back-end: :class:`submitit.LocalExecutor`, one process tree per job on this machine.

submitit's local executor starts every job at once and kills it after ``timeout_min`` (its default:
2 minutes), so each job gets an explicit ``timeout_min`` and waits for a free *slot* before starting (a
``flock`` on ``jobs/slots/<i>.lock``, see :func:`local_slot_setup`); with GPUs, a job claims a free group
of ``gpus_per_node`` GPUs and sees only them through ``CUDA_VISIBLE_DEVICES`` (one GPU per concurrent
job by default), whatever the GPU counts of the sweep's other jobs.

A job's id is the pid of its shell; any process re-attaches to it through ``/proc`` (checked against the
job's command line, so neither a recycled pid nor another sweep's job counts). Cancel: SIGINT to the
job's submitit controller, which stops its tasks (SIGINT, then SIGKILL); a job still waiting for a slot
gets SIGTERM. Interrupt: USR2 to the tasks, what the controller sends at the time limit.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from runners.executors.base import (
    ExecutorOptions,
    JobView,
    cancel_each,
    pid_alive,
    signal_delay_s,
    submit_batch,
    this_machine_problems,
)
from runners.executors.resources import Resources


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


def local_slots(res: Resources, array_parallelism: int | None) -> list[str]:
    """The slots of the local executor for ``res``: one entry per concurrent job, holding the
    ``CUDA_VISIBLE_DEVICES`` value of that slot ("" for CPU jobs)."""
    if res.gpus_per_node > 0:
        gpus = visible_gpus()
        groups = [
            ",".join(gpus[i : i + res.gpus_per_node])
            for i in range(0, len(gpus) - res.gpus_per_node + 1, res.gpus_per_node)
        ]
        n = len(groups) if array_parallelism is None else min(len(groups), array_parallelism)
        return groups[: max(1, n)]
    n = array_parallelism or max(1, (os.cpu_count() or 1) // res.cpus_per_task)
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


@contextlib.contextmanager
def _child_output_to(log: Path) -> Iterator[None]:
    """Point this process's stdout/stderr file descriptors at ``log`` while child processes are started.

    submitit's local controller inherits them and lives as long as the jobs: without this, a
    ``clipbudget submit … | tee`` (or CI capturing output) would wait for the whole sweep to end.
    """
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


# ------------------------------------------------------------------------------ the job's processes


def _argv(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            raw = fh.read()
    except OSError:
        return []
    return [a.decode("utf-8", "replace") for a in raw.split(b"\0")[:-1]]


def _cmdline(pid: int) -> str:
    return " ".join(_argv(pid))


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


# ------------------------------------------------------------------------------------- the back-end


class LocalBackend:
    """Subprocesses on this machine (see the module docstring)."""

    name = "local"
    unseen_grace_s = 0.0
    requeues = True
    holds = False

    def problems(self, res: Resources) -> list[str]:
        gpus = visible_gpus() if res.gpus_per_node > 0 else ()
        short = [
            f"gpus_per_node={res.gpus_per_node} but this machine has {len(gpus)} GPU(s) "
            f"(visible: {list(gpus) or 'none'})"
        ] if len(gpus) < res.gpus_per_node else []  # fmt: skip
        return this_machine_problems(self.name, res, gpu_problems=short)

    def check_environment(self, shapes: Sequence[Resources]) -> list[str]:
        return []

    def build(self, folder: Path, res: Resources, options: ExecutorOptions, *, name: str = "clipbudget") -> Any:
        import submitit

        folder = Path(folder)
        ex = submitit.LocalExecutor(folder, max_num_timeout=options.max_retries)
        params: dict[str, Any] = {
            "timeout_min": res.time_min,
            "signal_delay_s": signal_delay_s(res.time_min),
            "tasks_per_node": res.tasks_per_node,
            "setup": local_slot_setup(folder, local_slots(res, options.array_parallelism)),
        }
        if res.gpus_per_node:
            # the slot's CUDA_VISIBLE_DEVICES (set by the set-up) wins; submitit only needs the count
            params["gpus_per_node"] = res.gpus_per_node
        ex.update_parameters(**params)
        return ex

    def submit(self, executor: Any, callables: list[Any]) -> list[Any]:
        return submit_batch(executor, callables, output=_child_output_to(Path(executor.folder) / "local-controller.log"))

    def attempt_fields(self, job: Any) -> dict[str, Any]:
        return {}

    def array_id(self, jobs: list[Any]) -> str:
        return ""

    def run_submitted(self, job_ids: Sequence[str]) -> None:
        """Nothing to do: the jobs run on their own."""

    def views(self, folder: Path, attempts: dict[str, dict[str, Any]]) -> dict[str, JobView]:
        views = {}
        now = time.time()
        for job_id in attempts:
            if not local_job_alive(folder, job_id):
                views[job_id] = JobView("finished", "EXITED")
                continue
            try:
                t = float((Path(folder) / f"{job_id}_started").read_text().strip())
                views[job_id] = JobView("running", "RUNNING", now - t)
            except (OSError, ValueError):
                views[job_id] = JobView("pending", "WAITING_FOR_SLOT")
        return views

    def cancel_one(self, folder: Path, job_id: str) -> None:
        controllers, _ = _local_processes(Path(folder), job_id)
        if controllers:
            for c in controllers:  # the controller stops its tasks (SIGINT, then SIGKILL after 1 s)
                os.kill(c, signal.SIGINT)
        elif local_job_alive(folder, job_id):
            os.kill(int(job_id), signal.SIGTERM)  # still waiting for a slot
        else:
            raise RuntimeError(f"local job {job_id} is no longer running")

    def cancel(self, folder: Path, job_ids: list[str]) -> dict[str, str]:
        return cancel_each(self.cancel_one, folder, job_ids)

    def interrupt(self, folder: Path, job_id: str, *, timeout: bool = False) -> None:
        """USR2 to the job's tasks — what submitit's local controller sends at the time limit; the task
        checkpoints and exits with code 144 and the controller restarts it."""
        from submitit.core.job_environment import JobEnvironment

        _, tasks = _local_processes(Path(folder), job_id)
        if not tasks:
            raise RuntimeError(f"local job {job_id} has no running task to interrupt")
        for t in tasks:
            os.kill(t, JobEnvironment._usr_sig())


BACKEND = LocalBackend()

__all__ = ["BACKEND", "LocalBackend", "local_job_alive", "local_slot_setup", "local_slots", "visible_gpus"]
