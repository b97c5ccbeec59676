"""The executors a sweep submits to: resources, the local executor's slots and GPUs, the sbatch script.

GPUs are mocked where noted (``CUDA_VISIBLE_DEVICES`` names GPUs this machine does not have; the jobs
never touch them); everything else is real: real submitit executors, real processes, real sbatch text.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from budget.errors import ConfigError
from runners.executors import (
    ExecutorOptions,
    ResourceOverrides,
    Resources,
    build_executor,
    check_executor,
    check_shape,
    local_job_alive,
    local_slots,
)
from tests._sweep_fixtures import record_slot, require_backend


def test_overrides_apply_over_resources_and_defaults():
    s = Resources.from_dict({"gpus_per_node": 2, "time_min": 30, "mem_gb": 16}).override(
        ResourceOverrides(time_min=10, partition="gpu"))
    assert (s.gpus_per_node, s.time_min, s.mem_gb, s.partition, s.nodes) == (2, 10, 16.0, "gpu", 1)
    assert s.tasks_per_node == 2  # one process per GPU
    assert Resources().tasks_per_node == 1
    assert Resources().override(None) == Resources().override(ResourceOverrides()) == Resources()
    assert ResourceOverrides(time_min=5).merged(ResourceOverrides(mem_gb=2)).to_dict() == {"mem_gb": 2, "time_min": 5}


def test_check_shape_names_what_the_backend_cannot_do(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")  # mocked: two GPUs
    assert check_shape("local", Resources(gpus_per_node=2)) == []
    assert "has 2 GPU(s)" in check_shape("local", Resources(gpus_per_node=4))[0]
    assert "needs --executor slurm" in check_shape("local", Resources(nodes=2))[0]
    assert "debug runs one process" in check_shape("debug", Resources(gpus_per_node=2))[0]
    for bad in (float("nan"), float("inf"), 0.0, -1.0):  # checked when made, grid file or command line
        for make in (Resources, ResourceOverrides):
            with pytest.raises(ConfigError, match="mem_gb must be a positive number"):
                make(mem_gb=bad)
    with pytest.raises(ConfigError, match="unknown executor 'pbs'; valid choices: debug, local, slurm"):
        check_executor("pbs", [Resources()])


def test_resources_validation():
    assert Resources().gpus_per_node == 0 and Resources().tasks_per_node == 1
    with pytest.raises(ConfigError, match="resources nodes must be ≥ 1, got 0"):
        Resources(nodes=0)
    with pytest.raises(ConfigError, match="x.yaml: unknown resources key 'gpus' .*did you mean 'gpu'"):
        Resources.from_dict({"gpus": 1}, where="x.yaml")
    with pytest.raises(ConfigError, match="partition must be a non-empty string"):
        Resources(partition="")


def test_resources_memory_fractions_and_gpu_names():
    assert Resources(mem_gb=0.5).mem_gb == 0.5 and Resources(mem_gb=8.0).mem_gb == 8
    assert Resources(gpu="H100-SXM").gpu == "H100-SXM"
    with pytest.raises(ConfigError, match="mem_gb must be a positive number of GiB"):
        Resources(mem_gb=0)
    with pytest.raises(ConfigError, match="unknown resources gpu 'H10'"):
        Resources(gpu="H10")


def test_local_slots_give_each_concurrent_job_its_own_gpus(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")  # mocked: four GPUs
    assert local_slots(Resources(gpus_per_node=1), None) == ["0", "1", "2", "3"]
    assert local_slots(Resources(gpus_per_node=2), None) == ["0,1", "2,3"]
    assert local_slots(Resources(gpus_per_node=1), 2) == ["0", "1"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert local_slots(Resources(cpus_per_task=1), 3) == ["", "", ""]


def test_local_executor_caps_concurrency_and_assigns_one_gpu_per_job(tmp_path, monkeypatch):
    """Four real local jobs, two slots: never more than two at once, each with its own (mocked) GPU,
    an explicit time limit (not submitit's 2-minute default) and --max-retries wired to submitit."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")  # mocked GPUs: the jobs only read the variable
    from submitit.core.utils import DelayedSubmission

    shape = Resources(gpus_per_node=1, cpus_per_task=1, time_min=7)
    ex = build_executor("local", tmp_path / "jobs", shape, ExecutorOptions(kind="local", max_retries=5))
    assert ex.parameters["timeout_min"] == 7
    with ex.batch():
        jobs = [ex.submit(record_slot, str(tmp_path), i, 1.5) for i in range(4)]
    recs = [j.result() for j in jobs]
    assert sorted(r["index"] for r in recs) == [0, 1, 2, 3]
    assert {r["gpus"] for r in recs} <= {"0", "1"}
    assert _assert_no_gpu_shared(recs) == 2
    for j in jobs:
        delayed = DelayedSubmission.load(j.paths.submitted_pickle)
        assert delayed._timeout_countdown == 5
        assert (tmp_path / "jobs" / f"{j.job_id}_started").exists()
        assert not local_job_alive(tmp_path / "jobs", j.job_id)


def _assert_no_gpu_shared(recs: list[dict]) -> int:
    """No GPU held by two jobs at once; return the peak number of concurrent jobs."""
    events = sorted([(r["start"], 1, r["gpus"]) for r in recs] + [(r["end"], -1, r["gpus"]) for r in recs])
    running, peak, holders = 0, 0, set()
    for _, delta, gpus in events:
        ids = set(gpus.split(","))
        if delta > 0:
            assert not ids & holders, f"GPU(s) {sorted(ids & holders)} given to two concurrent jobs"
            holders |= ids
        else:
            holders -= ids
        running += delta
        peak = max(peak, running)
    return peak


def test_local_jobs_of_different_gpu_counts_never_share_a_gpu(tmp_path, monkeypatch):
    """One sweep, two shapes (1 and 2 GPUs) on a (mocked) 2-GPU machine: a 2-GPU job waits until both
    GPUs are free, and the 1-GPU jobs run side by side on different GPUs."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")  # mocked GPUs: the jobs only read the variable
    jobs_dir = tmp_path / "jobs"
    one = build_executor("local", jobs_dir, Resources(gpus_per_node=1, cpus_per_task=1, time_min=5),
                         ExecutorOptions(kind="local"))  # fmt: skip
    two = build_executor("local", jobs_dir, Resources(gpus_per_node=2, cpus_per_task=1, time_min=5),
                         ExecutorOptions(kind="local"))  # fmt: skip
    two.update_parameters(tasks_per_node=1)  # one process is enough to read the variable
    jobs = [one.submit(record_slot, str(tmp_path), 0, 1.5), two.submit(record_slot, str(tmp_path), 1, 1.0),
            one.submit(record_slot, str(tmp_path), 2, 1.5), two.submit(record_slot, str(tmp_path), 3, 1.0)]
    recs = [j.result() for j in jobs]
    assert {r["gpus"] for r in recs if r["index"] in (1, 3)} == {"0,1"}
    assert {r["gpus"] for r in recs if r["index"] in (0, 2)} <= {"0", "1"}
    assert _assert_no_gpu_shared(recs) <= 2


def test_local_job_alive_ignores_unrelated_processes(tmp_path):
    assert not local_job_alive(tmp_path, str(os.getpid()))  # alive, but not a submitit job of this folder
    assert not local_job_alive(tmp_path, "not-a-pid")


def test_local_job_alive_tells_sibling_sweeps_apart(tmp_path, monkeypatch):
    """A job of ``.../jobs2`` is not a job of ``.../jobs`` (a prefix), and a relative folder names the same
    job as its absolute path. The process is a real shell whose command line has the shape submitit's
    local controller has (``<setup> && python -m submitit.local._local FOLDER``); it only sleeps."""
    import shlex
    import subprocess
    import sys

    jobs, sibling = tmp_path / "jobs", tmp_path / "jobs2"
    script = "sleep 30 && " + shlex.join([sys.executable, "-m", "submitit.local._local", str(sibling)])
    proc = subprocess.Popen(["/bin/sh", "-c", script])
    try:
        time.sleep(0.2)
        assert local_job_alive(sibling, str(proc.pid))
        assert not local_job_alive(jobs, str(proc.pid))
        monkeypatch.chdir(tmp_path)
        assert local_job_alive(Path("jobs2"), str(proc.pid))
    finally:
        proc.kill()
        proc.wait()
    assert not local_job_alive(sibling, str(proc.pid))


@pytest.mark.slurm
def test_sbatch_script_for_a_multi_gpu_array(tmp_path):
    """The sbatch text of a 2-node × 4-GPU shape (GPUs mocked: the script is only generated)."""
    require_backend("slurm")
    from submitit.slurm.slurm import _make_sbatch_string

    shape = Resources(gpus_per_node=4, nodes=2, cpus_per_task=8, mem_gb=64, time_min=240, partition="debug",
                  account="lab", qos="high")  # fmt: skip
    ex = build_executor("slurm", tmp_path, shape, ExecutorOptions(kind="slurm", array_parallelism=3, hold=True,
                                                                   max_retries=4))  # fmt: skip
    assert ex.max_num_timeout == 4
    text = _make_sbatch_string(command="python -m x", folder=tmp_path, map_count=10, **ex.parameters)
    lines = set(text.splitlines())
    for expected in ("#SBATCH --array=0-9%3", "#SBATCH --nodes=2", "#SBATCH --ntasks-per-node=4",
                     "#SBATCH --gpus-per-node=4", "#SBATCH --cpus-per-task=8", "#SBATCH --time=240",
                     "#SBATCH --mem=65536MB", "#SBATCH --partition=debug", "#SBATCH --account=lab",
                     "#SBATCH --qos=high", "#SBATCH --hold", "#SBATCH --signal=USR2@120"):  # fmt: skip
        assert expected in lines, (expected, text)


@pytest.mark.slurm
def test_held_slurm_array_records_retries_and_cancels(tmp_path, monkeypatch):
    """A real held array on the local cluster: --max-retries reaches the submitted pickles; cancel ends it."""
    require_backend("slurm")
    import submitit
    from submitit.core.utils import DelayedSubmission

    from runners.executors import cancel_job

    monkeypatch.setattr(submitit.SlurmJob, "_results_timeout_s", 1)
    ex = build_executor("slurm", tmp_path, Resources(cpus_per_task=1, mem_gb=1, time_min=5),
                        ExecutorOptions(kind="slurm", hold=True, max_retries=2))  # fmt: skip
    with ex.batch():
        jobs = [ex.submit(record_slot, str(tmp_path), i, 0.1) for i in range(3)]
    assert len({j.job_id.split("_")[0] for j in jobs}) == 1
    try:
        for j in jobs:
            assert DelayedSubmission.load(j.paths.submitted_pickle)._timeout_countdown == 2
            deadline = time.monotonic() + 30  # sacct shows a new job once slurmdbd has it
            while not j.get_info(mode="force").get("State"):
                assert time.monotonic() < deadline
                time.sleep(0.3)
            assert j.get_info(mode="force")["State"] == "PENDING"  # held
    finally:
        for j in jobs:
            cancel_job("slurm", tmp_path, j.job_id)
    for j in jobs:
        deadline = time.monotonic() + 30
        while j.get_info(mode="force").get("State", "").split(" ")[0] != "CANCELLED":
            assert time.monotonic() < deadline
            time.sleep(0.5)
    assert not list(Path(tmp_path).glob("slot-*.json"))  # held jobs never ran
    json.dumps([j.job_id for j in jobs])
