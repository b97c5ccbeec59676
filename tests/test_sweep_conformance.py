"""One conformance suite for the sweep, run on every back-end: debug, local and a real SLURM.

Scenarios (issue "Sweeps on a real cluster"), each with tiny real runs of the real runner:

1. a 6-config grid completes; ``collect`` yields 6 rows with metrics;
2. a config with corrupt data ends ``failed`` with its error while the others complete (the same grid
   carries it as a 7th config, so one submission covers 1, 2, 5 and 6);
3. ``cancel`` of a running job ends it ``cancelled``; ``resubmit --cancelled`` completes it;
4. a job interrupted mid-training (submitit's preemption path) resumes from its checkpoint and finishes
   with one result row whose samples seen equal the plan;
5. ``status`` from a fresh process, after the submitting call returned, shows the right states;
6. submitting the same grid twice submits nothing new.

``debug`` runs jobs inside ``submit``: nothing is ever running when ``cancel`` or an interruption could
reach it, so scenarios 3 and 4 are skipped for it (with that reason) and run on local and slurm.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests._data_fixtures import build_demo_data
from tests._sweep_fixtures import (
    BACKENDS,
    LONG_RUN,
    TINY_RUN,
    cli,
    corrupt_shards,
    require_backend,
    six_plus_one_grid,
    status_json,
    wait_for_file,
    wait_until,
    write_grid,
)

N_TRAIN, N_EVAL = 600, 100


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    shards, evalset = build_demo_data(tmp_path_factory.mktemp("sweep-data"), n_train=N_TRAIN, n_eval=N_EVAL)
    bad = corrupt_shards(tmp_path_factory.mktemp("bad-data"))
    return shards, evalset, bad


def _job_env(mp: pytest.MonkeyPatch) -> None:
    import submitit

    mp.setenv("OMP_NUM_THREADS", "1")  # several jobs share two cores; jobs inherit this environment
    mp.setenv("MKL_NUM_THREADS", "1")
    mp.setattr(submitit.SlurmJob, "_results_timeout_s", 1)


#: The 6+1 grid on local costs ~1.5 min here (7 job processes, each importing torch + open_clip on two
#: shared cores), so on local it runs in the slow pass (CI runs it: ``.ci/run`` runs ``-m slow``); local's
#: own machinery (slots, GPUs, time limit, cancel, preemption/resume) stays in the default suite.
GRID_BACKENDS = ["debug", pytest.param("local", marks=pytest.mark.slow), pytest.param("slurm", marks=pytest.mark.slurm)]


@pytest.fixture(scope="module", params=GRID_BACKENDS)
def finished_sweep(request, data, tmp_path_factory):
    """The 6+1 grid submitted through the CLI and waited for: (backend, sweep_dir, grid_path, submit output)."""
    backend = request.param
    require_backend(backend)
    shards, evalset, bad = data
    root = tmp_path_factory.mktemp(f"sweep-{backend}")
    grid = six_plus_one_grid(root / "grid.yaml", shards, evalset, bad)
    sweep_dir = root / "sweep"
    with pytest.MonkeyPatch.context() as mp:
        _job_env(mp)
        from planner.cli.main import main

        code = main(["submit", str(grid), "--sweep-dir", str(sweep_dir), "--executor", backend,
                     "--format", "json"])  # fmt: skip
        assert code == 0
        wait_until(sweep_dir, lambda st: st.done, timeout_s=300, what="the 6+1 grid to finish")
    return backend, sweep_dir, grid


def _manifest(sweep_dir: Path) -> dict:
    return json.loads((sweep_dir / "manifest.json").read_text())


# ---------------------------------------------------------------------------------- scenarios 1, 2


def test_grid_completes_and_collect_yields_rows_with_metrics(finished_sweep, tmp_path):
    backend, sweep_dir, _ = finished_sweep
    code, out, err = cli("collect", str(sweep_dir), "--into", str(tmp_path / "store"), "--format", "json")
    assert code == 0, err
    report = json.loads(out)
    assert report["runs"] == 7 and report["rows"] == 6
    from results.store import ResultStore

    df = ResultStore(tmp_path / "store").read()
    assert len(df) == 6 and set(df["status"]) == {"completed"}
    assert df["zeroshot_top1"].notna().all() and df["zeroshot_top1"].between(0, 1).all()
    assert df["final_train_loss"].notna().all()
    manifest = _manifest(sweep_dir)
    planned = {rid: r["config"]["samples_seen"] for rid, r in manifest["runs"].items()}
    assert all(int(s) == planned[rid] for rid, s in zip(df["run_id"], df["samples_seen"]))
    assert set(df["sweep_id"]) == {manifest["sweep_id"]}
    # collecting again adds nothing to the store
    assert cli("collect", str(sweep_dir), "--into", str(tmp_path / "store"))[0] == 0
    assert len(ResultStore(tmp_path / "store").read(latest=False)) == 6
    if backend == "slurm":  # one array for the one resource shape
        assert len({a["job_id"].split("_")[0] for r in manifest["runs"].values() for a in r["attempts"]}) == 1


def test_failing_config_is_failed_with_its_error_and_the_others_complete(finished_sweep):
    backend, sweep_dir, _ = finished_sweep
    from runners.sweep import collect, status

    st = status(sweep_dir)
    assert st.counts == {"completed": 6, "failed": 1}
    failed = next(r for r in st.runs if r.state == "failed")
    cfg = _manifest(sweep_dir)["runs"][failed.run_id]["config"]
    assert "corrupt" in cfg["train_data"]
    assert failed.error and failed.error.strip()
    report = collect(sweep_dir)
    assert [m.run_id for m in report.missing] == [failed.run_id]
    missing = report.missing[0]
    assert missing.reason.startswith("failed: ") and failed.error in missing.reason
    assert missing.log_path and Path(missing.log_path).parent == sweep_dir / "jobs"
    if backend != "debug":
        assert Path(missing.log_path).exists()
    # the failure is a result row written by the runner
    from results.store import ResultStore

    rows = ResultStore(sweep_dir / "results").rows_for(failed.run_id)
    assert [r["status"] for r in rows] == ["failed"] and rows[0]["error"] == failed.error


# ---------------------------------------------------------------------------------- scenarios 5, 6


def test_status_from_a_fresh_process_shows_the_states(finished_sweep):
    _, sweep_dir, _ = finished_sweep
    st = status_json(sweep_dir)
    assert st["counts"] == {"completed": 6, "failed": 1} and st["done"] is True
    by_state = {}
    for r in st["runs"]:
        by_state.setdefault(r["state"], []).append(r)
    assert all(r["elapsed_s"] and r["elapsed_s"] > 0 for r in by_state["completed"])
    assert all(r["job_id"] for r in st["runs"])
    lg = st["ledger"]
    assert lg["planned_train_flops"] > 0 and lg["planned_gpu_hours"] > 0
    assert lg["spent_train_flops"] > 0
    assert lg["remaining_train_flops"] == pytest.approx(by_state["failed"][0]["planned_train_flops"])
    assert lg["remaining_train_flops"] + sum(r["planned_train_flops"] for r in by_state["completed"]) == (
        pytest.approx(lg["planned_train_flops"])
    )
    code, out, _ = cli("status", str(sweep_dir))  # the table renders too
    assert code == 0 and "completed" in out and "remaining" in out


def test_submitting_the_same_grid_twice_submits_nothing_new(finished_sweep):
    backend, sweep_dir, grid = finished_sweep
    before = _manifest(sweep_dir)
    jobs_before = sorted(p.name for p in (sweep_dir / "jobs").iterdir())
    code, out, err = cli("submit", str(grid), "--sweep-dir", str(sweep_dir), "--executor", backend,
                         "--format", "json")  # fmt: skip
    assert code == 0, err
    report = json.loads(out)
    assert report["submitted"] == []
    assert len(report["skipped"]["completed"]) == 6 and sum(len(v) for v in report["skipped"].values()) == 7
    after = _manifest(sweep_dir)
    assert after["runs"] == before["runs"]
    assert sorted(p.name for p in (sweep_dir / "jobs").iterdir()) == jobs_before


# ---------------------------------------------------------------------------------- scenarios 3, 4


@pytest.fixture(params=BACKENDS)
def long_run(request, data, tmp_path):
    """One longer run submitted on its own (to be cancelled or interrupted). Not for debug (module doc)."""
    backend = request.param
    if backend == "debug":
        pytest.skip("debug runs each job inside `submit` (in-process, to completion): no job is ever running "
                    "for cancel or a preemption signal to reach, and submitit's debug executor has no requeue")
    require_backend(backend)
    shards, evalset, _ = data
    seed = {"local": 11, "slurm": 12}[backend] + (100 if "interrupt" in request.node.name else 0)
    grid = write_grid(tmp_path / "grid.yaml", [{**LONG_RUN, "seed": seed}],
                      defaults={"train_data": str(shards), "eval_data": str(evalset)}, name="long")  # fmt: skip
    sweep_dir = tmp_path / "sweep"
    mp = pytest.MonkeyPatch()
    _job_env(mp)
    from runners.sweep import cancel, submit

    try:
        report = submit(grid, sweep_dir, executor=backend, max_retries=2)
        assert len(report.submitted) == 1
        yield backend, sweep_dir, report.submitted[0][0]
    finally:
        cancel(sweep_dir)  # never leave jobs behind
        mp.undo()


def test_cancel_a_running_job_then_resubmit_cancelled_completes_it(long_run):
    backend, sweep_dir, victim = long_run
    wait_until(sweep_dir, lambda st: st.by_id()[victim].state == "running", timeout_s=120,
               what=f"{victim} to run")  # fmt: skip
    code, out, err = cli("cancel", str(sweep_dir), victim, "--format", "json")
    assert code == 0, err
    assert [c["run_id"] for c in json.loads(out)["cancelled"]] == [victim]
    st = wait_until(sweep_dir, lambda s: s.by_id()[victim].state == "cancelled", timeout_s=60, what="cancelled")
    assert st.by_id()[victim].state == "cancelled"
    if backend == "slurm":  # the scheduler agrees (sacct), not only our record
        wait_until(sweep_dir, lambda s: s.by_id()[victim].scheduler_state == "CANCELLED", timeout_s=60,
                   what="sacct CANCELLED")  # fmt: skip
    else:
        from runners.executors import local_job_alive

        wait_until(sweep_dir, lambda s: not local_job_alive(sweep_dir / "jobs", s.by_id()[victim].job_id),
                   timeout_s=30, what="the local job's processes to end")  # fmt: skip
    assert {r["run_id"]: r["state"] for r in status_json(sweep_dir)["runs"]}[victim] == "cancelled"

    code, out, err = cli("resubmit", str(sweep_dir), "--cancelled", "--format", "json")
    assert code == 0, err
    assert [s["run_id"] for s in json.loads(out)["submitted"]] == [victim]
    st = wait_until(sweep_dir, lambda s: s.by_id()[victim].state == "completed", timeout_s=240,
                    what="the resubmitted run to complete")  # fmt: skip
    assert st.by_id()[victim].attempts == 2
    from results.store import ResultStore

    rows = ResultStore(sweep_dir / "results").rows_for(victim)
    assert [r["status"] for r in rows if r["status"] == "completed"] == ["completed"]


def test_interrupted_job_resumes_from_its_checkpoint_with_one_row(long_run):
    backend, sweep_dir, target = long_run
    from runners.executors import interrupt_job
    from runners.sweep import status

    run_dir = sweep_dir / "runs" / target
    wait_until(sweep_dir, lambda st: st.by_id()[target].state == "running", timeout_s=120, what=f"{target} to run")
    ckpt = wait_for_file(run_dir / "checkpoints", "step_*.pt", timeout_s=120)  # training is under way
    assert ckpt.exists()
    job_id = status(sweep_dir).by_id()[target].job_id
    # slurm: submitit's preemption drill, SIGTERM then USR2 (the runner checkpoints on SIGTERM and keeps
    # going until USR2, on which submitit requeues). local: USR2, what submitit's local controller sends.
    interrupt_job(backend, sweep_dir / "jobs", job_id, timeout=backend != "slurm")
    st = wait_until(sweep_dir, lambda s: s.by_id()[target].requeues >= 1, timeout_s=120, what="the requeue")
    assert st.by_id()[target].state in ("requeued", "running", "pending", "completed")
    st = wait_until(sweep_dir, lambda s: s.by_id()[target].state == "completed", timeout_s=240,
                    what="the interrupted run to complete")  # fmt: skip
    assert st.by_id()[target].job_id == job_id  # the same job, requeued — not a new submission
    from results.store import ResultStore

    rows = ResultStore(sweep_dir / "results").rows_for(target)
    assert len(rows) == 1 and rows[0]["status"] == "completed"
    planned = json.loads((sweep_dir / "manifest.json").read_text())["runs"][target]["config"]["samples_seen"]
    assert int(rows[0]["samples_seen"]) == planned == LONG_RUN["samples_seen"]
    job_log = (sweep_dir / "jobs" / f"{job_id}_0_log.out").read_text()
    assert "Requeued job" in job_log  # submitit's requeue, in the job's own log
    run_log = (run_dir / "run.log").read_text()
    assert f"resuming {target} from step" in run_log  # the second attempt started from the checkpoint


def test_tiny_run_defaults_are_tiny():
    """Guard the suite's time budget: the conformance grids stay a few optimizer steps per run."""
    assert TINY_RUN["samples_seen"] // TINY_RUN["batch_size"] <= 5
    assert shutil.which("flock") is not None  # the local executor's slots need util-linux's flock


def test_local_submit_into_a_pipe_returns_while_the_job_runs(data, tmp_path, monkeypatch):
    """``clipbudget submit … | tee log``: submitit's local controller outlives ``submit`` and must not hold
    the pipe open (before the fix the command only returned when the whole sweep had ended)."""
    from runners.sweep import cancel, status

    shards, evalset, _ = data
    grid = write_grid(tmp_path / "grid.yaml", [{**LONG_RUN, "seed": 21}],
                      defaults={"train_data": str(shards), "eval_data": str(evalset)}, name="pipe")  # fmt: skip
    sweep_dir = tmp_path / "sweep"
    _job_env(monkeypatch)
    try:
        code, out, err = cli("submit", str(grid), "--sweep-dir", str(sweep_dir), "--executor", "local",
                             "--format", "json")  # stdout and stderr are pipes here
        assert code == 0, err
        run_id = json.loads(out)["submitted"][0]["run_id"]
        assert status(sweep_dir).by_id()[run_id].state in ("pending", "running")
        assert (sweep_dir / "jobs" / "local-controller.log").exists()
    finally:
        cancel(sweep_dir)
