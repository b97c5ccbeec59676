"""Bad input to submit/status/cancel/resubmit: one-line error, exit 2, nothing submitted, folder unchanged.

"Unchanged" is checked with a digest of every path and byte under the sweep folder. The existing sweep
used here is real: one tiny run with corrupt data, submitted with the debug executor (it fails in a
second, in-process, through the real runner).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests._data_fixtures import build_demo_data
from tests._sweep_fixtures import (
    TINY_RUN,
    cli_inproc,
    corrupt_shards,
    folder_digest,
    require_backend,
    slurm_job_count,
    write_grid,
)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    shards, evalset = build_demo_data(tmp_path_factory.mktemp("err-data"), n_train=600, n_eval=100)
    return shards, evalset


@pytest.fixture(scope="module")
def existing(data, tmp_path_factory):
    """(grid, sweep_dir) of a real finished sweep (debug executor, one run that fails on corrupt data)."""
    _, evalset = data
    root = tmp_path_factory.mktemp("existing")
    bad = corrupt_shards(root)
    grid = write_grid(root / "grid.yaml", [{**TINY_RUN, "seed": 3, "train_data": str(bad)}],
                      defaults={"eval_data": str(evalset)})  # fmt: skip
    from runners.sweep import status, submit

    submit(grid, root / "sweep", executor="debug")
    assert status(root / "sweep").counts == {"failed": 1}
    return grid, root / "sweep"


@pytest.fixture
def sweep_copy(existing, tmp_path):
    grid, sweep = existing
    dst = tmp_path / "sweep"
    shutil.copytree(sweep, dst)
    # the manifest names the folder only through paths derived at run time; a copy is a full sweep
    return grid, dst


@pytest.fixture
def good_grid(data, tmp_path):
    shards, evalset = data
    return write_grid(tmp_path / "good.yaml", [{**TINY_RUN, "seed": s} for s in (0, 1)],
                      defaults={"train_data": str(shards), "eval_data": str(evalset)})  # fmt: skip


def _one_line_exit_2(code: int, out: str, err: str, *needles: str) -> str:
    assert code == 2, (code, out, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def test_unknown_executor_creates_nothing(capsys, good_grid, tmp_path):
    target = tmp_path / "new-sweep"
    r = cli_inproc(capsys, "submit", str(good_grid), "--sweep-dir", str(target), "--executor", "kubernetes")
    _one_line_exit_2(*r, "unknown executor 'kubernetes'", "debug, local, slurm")
    assert not target.exists()


def test_unknown_executor_leaves_an_existing_sweep_unchanged(capsys, sweep_copy):
    grid, sweep = sweep_copy
    before = folder_digest(sweep)
    r = cli_inproc(capsys, "submit", str(grid), "--sweep-dir", str(sweep), "--executor", "lsf")
    _one_line_exit_2(*r, "unknown executor")
    assert folder_digest(sweep) == before


@pytest.mark.slurm
def test_unknown_partition_submits_nothing(capsys, good_grid, sweep_copy, tmp_path):
    require_backend("slurm")
    jobs_before = slurm_job_count(good_grid)
    r = cli_inproc(capsys, "submit", str(good_grid), "--sweep-dir", str(tmp_path / "s"), "--executor", "slurm",
                   "--partition", "nosuchpart")  # fmt: skip
    _one_line_exit_2(*r, "unknown partition 'nosuchpart'", "valid choices")
    assert not (tmp_path / "s").exists()
    grid, sweep = sweep_copy
    before, other_before = folder_digest(sweep), slurm_job_count(grid)
    r = cli_inproc(capsys, "submit", str(grid), "--sweep-dir", str(sweep), "--executor", "slurm",
                   "--partition", "nosuchpart")  # fmt: skip
    _one_line_exit_2(*r, "unknown partition")
    assert folder_digest(sweep) == before
    assert slurm_job_count(good_grid) == jobs_before and slurm_job_count(grid) == other_before


@pytest.mark.slurm
def test_scheduler_refusal_leaves_no_sweep_behind(capsys, good_grid, tmp_path):
    """sbatch rejects more memory than the node has: one-line error, exit 2, no folder, no job."""
    require_backend("slurm")
    jobs_before = slurm_job_count(good_grid)
    target = tmp_path / "s"
    r = cli_inproc(capsys, "submit", str(good_grid), "--sweep-dir", str(target), "--executor", "slurm",
                   "--mem-gb", "100000")  # fmt: skip
    _one_line_exit_2(*r, "the scheduler refused the jobs")
    assert not target.exists()
    assert slurm_job_count(good_grid) == jobs_before


def test_scheduler_flags_need_slurm(capsys, good_grid, tmp_path):
    r = cli_inproc(capsys, "submit", str(good_grid), "--sweep-dir", str(tmp_path / "s"), "--executor", "local",
                   "--partition", "gpu")  # fmt: skip
    _one_line_exit_2(*r, "--partition 'gpu' applies to --executor slurm only")
    r = cli_inproc(capsys, "submit", str(good_grid), "--sweep-dir", str(tmp_path / "s"), "--executor", "local",
                   "--hold")  # fmt: skip
    _one_line_exit_2(*r, "--hold applies to --executor slurm only")
    assert not (tmp_path / "s").exists()


def test_resources_the_backend_cannot_give(capsys, good_grid, tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # a machine without GPUs, whatever this one has
    r = cli_inproc(capsys, "submit", str(good_grid), "--sweep-dir", str(tmp_path / "s"), "--executor", "local",
                   "--gpus-per-node", "1")  # fmt: skip
    _one_line_exit_2(*r, "gpus_per_node=1 but this machine has 0 GPU(s)")
    r = cli_inproc(capsys, "submit", str(good_grid), "--sweep-dir", str(tmp_path / "s"), "--executor", "debug",
                   "--nodes", "2")  # fmt: skip
    _one_line_exit_2(*r, "nodes=2 needs --executor slurm")
    r = cli_inproc(capsys, "submit", str(good_grid), "--sweep-dir", str(tmp_path / "s"), "--executor", "local",
                   "--array-parallelism", "0")  # fmt: skip
    _one_line_exit_2(*r, "--array-parallelism")
    r = cli_inproc(capsys, "submit", str(good_grid), "--sweep-dir", str(tmp_path / "s"), "--executor", "local",
                   "--max-retries", "-1")  # fmt: skip
    _one_line_exit_2(*r, "--max-retries must be >= 0")
    for bad in ("nan", "-4", "0"):
        r = cli_inproc(capsys, "submit", str(good_grid), "--sweep-dir", str(tmp_path / "s"), "--executor", "local",
                       "--mem-gb", bad)  # fmt: skip
        _one_line_exit_2(*r, "mem_gb must be a positive number of GiB")
    assert not (tmp_path / "s").exists()


def test_duplicate_config_in_grid(capsys, data, sweep_copy, tmp_path):
    shards, evalset = data
    grid = write_grid(tmp_path / "dup.yaml", [{**TINY_RUN, "seed": 1}, {**TINY_RUN, "seed": 1}],
                      defaults={"train_data": str(shards), "eval_data": str(evalset)})  # fmt: skip
    r = cli_inproc(capsys, "submit", str(grid), "--sweep-dir", str(tmp_path / "s"), "--executor", "local")
    line = _one_line_exit_2(*r, "dup.yaml")
    assert "duplicate" in line.lower()
    assert not (tmp_path / "s").exists()
    _, sweep = sweep_copy
    before = folder_digest(sweep)
    r = cli_inproc(capsys, "submit", str(grid), "--sweep-dir", str(sweep), "--executor", "local")
    _one_line_exit_2(*r, "duplicate")
    assert folder_digest(sweep) == before


def test_invalid_config_is_located_by_line(capsys, data, tmp_path):
    shards, evalset = data
    grid = write_grid(tmp_path / "bad.yaml", [{**TINY_RUN, "seed": 1}, {**TINY_RUN, "strategy": "clop"}],
                      defaults={"train_data": str(shards), "eval_data": str(evalset)})  # fmt: skip
    r = cli_inproc(capsys, "submit", str(grid), "--sweep-dir", str(tmp_path / "s"), "--executor", "debug")
    line = _one_line_exit_2(*r, "bad.yaml:", "clop")
    assert any(c.isdigit() for c in line.split("bad.yaml:")[1][:4])  # FILE:LINE
    assert not (tmp_path / "s").exists()


def test_sweep_folder_of_another_grid(capsys, good_grid, sweep_copy):
    _, sweep = sweep_copy
    before = folder_digest(sweep)
    r = cli_inproc(capsys, "submit", str(good_grid), "--sweep-dir", str(sweep), "--executor", "local")
    _one_line_exit_2(*r, "belongs to another grid")
    assert folder_digest(sweep) == before


def test_submit_into_a_folder_that_is_not_a_sweep(capsys, good_grid, tmp_path):
    d = tmp_path / "busy"
    d.mkdir()
    (d / "notes.txt").write_text("mine\n")
    before = folder_digest(d)
    r = cli_inproc(capsys, "submit", str(good_grid), "--sweep-dir", str(d), "--executor", "local")
    _one_line_exit_2(*r, "not a clipbudget sweep")
    assert folder_digest(d) == before


def test_status_cancel_resubmit_collect_on_a_folder_that_is_not_a_sweep(capsys, tmp_path):
    d = tmp_path / "plain"
    d.mkdir()
    (d / "x.txt").write_text("x")
    before = folder_digest(d)
    for verb in ("status", "cancel", "resubmit", "collect"):
        r = cli_inproc(capsys, verb, str(d))
        _one_line_exit_2(*r, "not a sweep folder")
        r = cli_inproc(capsys, verb, str(tmp_path / "missing"))
        _one_line_exit_2(*r, "not a sweep folder")
    assert folder_digest(d) == before and not (tmp_path / "missing").exists()


def test_unknown_run_id_for_cancel_and_resubmit(capsys, sweep_copy):
    _, sweep = sweep_copy
    before = folder_digest(sweep)
    _one_line_exit_2(*cli_inproc(capsys, "cancel", str(sweep), "ffffffffffffffff"), "unknown run id")
    _one_line_exit_2(*cli_inproc(capsys, "resubmit", str(sweep), "fffff"), "unknown run id")
    assert folder_digest(sweep) == before


def test_dry_run_writes_nothing(capsys, good_grid, tmp_path):
    code, out, err = cli_inproc(capsys, "submit", str(good_grid), "--sweep-dir", str(tmp_path / "s"),
                                "--executor", "local", "--dry-run", "--format", "json")  # fmt: skip
    assert code == 0, err
    report = json.loads(out)
    assert report["dry_run"] is True and len(report["submitted"]) == 2
    assert report["planned_train_flops"] > 0
    assert not (tmp_path / "s").exists()


def test_status_of_the_existing_sweep_is_read_only(capsys, sweep_copy):
    _, sweep = sweep_copy
    before = folder_digest(sweep)
    code, out, err = cli_inproc(capsys, "status", str(sweep), "--format", "json")
    assert code == 0, err
    st = json.loads(out)
    assert st["counts"] == {"failed": 1}
    assert st["runs"][0]["error"]
    assert folder_digest(sweep) == before
    assert Path(st["runs"][0]["log_path"]).name.endswith("_0_log.err")


@pytest.mark.slurm
def test_slurm_accounting_outage_is_not_a_verdict(capsys, good_grid, tmp_path, monkeypatch):
    """When sacct fails (slurmdbd down), status says it cannot tell — it does not call live jobs
    unknown-and-over — and resubmit refuses rather than run them twice.

    The jobs are real (a held array on the local cluster); the outage is simulated by a ``sacct`` first on
    PATH that fails the way SLURM's does when slurmdbd is unreachable (stopping the real slurmdbd would
    disturb the other SLURM tests)."""
    require_backend("slurm")
    from budget.errors import ConfigError
    from runners.sweep import cancel, resubmit, status, submit

    sweep = tmp_path / "sweep"
    submit(good_grid, sweep, executor="slurm", hold=True)
    try:
        fake = tmp_path / "bin"
        fake.mkdir()
        (fake / "sacct").write_text("#!/bin/sh\necho 'sacct: error: Problem talking to the database: "
                                    "Connection refused' >&2\nexit 1\n")  # fmt: skip
        (fake / "sacct").chmod(0o755)
        with monkeypatch.context() as m:
            m.setenv("PATH", f"{fake}:{os.environ['PATH']}")
            st = status(sweep)
            assert st.counts == {"unknown": 2} and not st.done
            assert all("cannot ask SLURM" in r.error and "Connection refused" in r.error for r in st.runs)
            before = folder_digest(sweep)
            with pytest.raises(ConfigError, match="nothing resubmitted: run .* may still be running"):
                resubmit(sweep, failed=True)
            assert folder_digest(sweep) == before
        assert status(sweep).counts == {"pending": 2}  # held, and SLURM answers again
    finally:
        cancel(sweep)


def test_two_resubmits_at_once_submit_a_failed_run_once(sweep_copy):
    """Two ``resubmit --failed`` racing on one sweep (threads: flock locks conflict between the open files
    of one process too): the manifest lock covers reading the states and recording the new job, so the
    second sees the first's job active and submits nothing. The jobs are real local jobs (they fail again
    on the corrupt data)."""
    from concurrent.futures import ThreadPoolExecutor

    from runners.sweep import load_manifest, resubmit, wait

    _, sweep = sweep_copy
    with ThreadPoolExecutor(2) as pool:
        reports = list(pool.map(lambda _: resubmit(sweep, failed=True, executor="local"), range(2)))
    assert sorted(len(r.submitted) for r in reports) == [0, 1]
    (run,) = load_manifest(sweep)["runs"].values()
    assert len(run["attempts"]) == 2  # the debug attempt and one local one
    assert wait(sweep, timeout_s=120).counts == {"failed": 1}
