"""The study through the real sweep machinery: debug (in-process), local (subprocesses) and slurm.

Each run is the real runner training a tiny open_clip model on real Fashion-MNIST shards; the study
submits each batch with :func:`runners.sweep.submit` into ``SWEEP/batches/`` and reads the result rows
back. The slurm case needs the cluster of ``scripts/slurm-local.sh up`` (skipped locally without it,
failed under CI, as the sweep conformance suite does).
"""

from __future__ import annotations

import os
from pathlib import Path

import optuna
import pytest

from planner.study.driver import StudySpec, run_study
from planner.study.law import PlanOptions
from tests._data_fixtures import build_demo_data
from tests._study_fixtures import same_result
from tests._sweep_fixtures import BACKENDS, job_env, require_backend  # noqa: F401 - job_env is a fixture

#: 4 configurations of a 28-px ViT; target 512 samples' worth of compute, rungs at 1/4 and 1/2 of it.
OPTIONS = PlanOptions(models=("tiny-vit-s-28",), strategies=("clip", "flip"), quality_fractions=(0.5, 1.0),
                      pool_size=2000, max_epochs=64)
PER_SAMPLE = 0.007084544  # tiny-vit-s-28 forward GFLOPs per sample (image 28 px, 16 tokens)
TARGET = PER_SAMPLE * 512
RESOURCES = {"cpus_per_task": 1, "mem_gb": 1, "time_min": 10}


@pytest.mark.parametrize("backend", BACKENDS)
def test_study_on_real_runs_completes_and_resumes(tmp_path, backend, job_env):
    require_backend(backend)
    shards, evalset = build_demo_data(n_train=2000, n_eval=500)
    spec = StudySpec(TARGET, options=OPTIONS, n_rungs=3, eta=2, study_budget_gflops=TARGET * 2.5)
    kw = dict(sweep_dir=tmp_path / "s", executor=backend, train_data=str(shards), eval_data=str(evalset),
              executor_options={"resources": RESOURCES, "device": "cpu"}, poll_s=1.0)
    res = run_study(spec, **kw)
    j = res.to_json()
    assert j["trials"] == 4 and j["runs"] >= 5 and j["spent_gflops"] <= TARGET * 2.5
    assert 0 < j["predicted_top1"] < 1 and j["ci_low"] <= j["predicted_top1"] <= j["ci_high"]
    batches = sorted((tmp_path / "s" / "batches").glob("*/manifest.json"))
    assert len(batches) >= 2  # rung 1, then promotions: each a sweep folder of the existing machinery
    trials = optuna.load_study(study_name="s", storage=res.storage).get_trials()
    runs = [a for t in trials for k, a in t.user_attrs.items() if k.startswith("run_")]
    assert len(runs) == j["runs"]
    for a in runs:  # run id, FLOPs and the result row's path on every run
        assert a["status"] == "done" and Path(a["result_path"]).is_file() and a["gflops"] > 0
        assert a["run_id"] in a["result_path"]
    # the same call again: the study is finished, nothing is submitted
    again = run_study(spec, **kw)
    assert same_result(again.to_json(), j)
    assert sorted((tmp_path / "s" / "batches").glob("*/manifest.json")) == batches


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "debug"])
def test_study_killed_mid_rung_resumes_without_resubmitting(tmp_path, backend, job_env):
    """SIGKILL ``clipbudget study`` while its first rung's jobs run; the same command finishes the study."""
    import json
    import os
    import signal
    import subprocess
    import sys

    from runners.sweep import load_manifest

    require_backend(backend)
    shards, evalset = build_demo_data(n_train=2000, n_eval=500)
    repo = Path(__file__).resolve().parents[1]
    cmd = [sys.executable, "-m", "planner.cli.main", "study", "--gflops", str(TARGET), "--models", "tiny-vit-s-28",
           "--strategies", "clip", "flip", "--quality", "0.5", "1.0", "--pool-size", "2000", "--max-epochs", "64",
           "--rungs", "3", "--eta", "2", "--study-budget", str(TARGET * 2.5), "--sweep-dir", str(tmp_path / "s"),
           "--executor", backend, "--data", str(shards), "--eval", str(evalset), "--cpus-per-task", "1",
           "--mem-gb", "1", "--time-min", "10", "--device", "cpu", "--poll-s", "1", "--format", "json"]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=repo)
    line = proc.stderr.readline()
    assert "step: rung 1" in line, line + proc.stderr.read()
    os.kill(proc.pid, signal.SIGKILL)  # jobs are queued or running; the study process is gone
    proc.wait(timeout=30)
    trials = optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path / 's' / 'study.db'}").get_trials()
    assert len(trials) == 4 and all(not t.intermediate_values for t in trials)  # killed mid-rung
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=repo, timeout=600)
    assert done.returncode == 0, done.stderr
    j = json.loads(done.stdout)[0]
    assert j["finished"] and j["trials"] == 4
    submitted = [rid for m in (tmp_path / "s" / "batches").glob("*/manifest.json")
                 for rid in load_manifest(m.parent)["runs"]]
    assert len(submitted) == len(set(submitted)) == j["runs"]  # every run submitted once, none lost


def test_relative_data_paths_give_the_run_ids_the_sweep_runs(tmp_path, monkeypatch):
    """As the README calls it (``--data data/fmnist/shards``): relative paths, resolved against the caller's folder.

    The batch grids live in ``SWEEP/batches/`` and resolve relative paths against that folder; a study that
    hashed the unresolved paths recorded run ids the sweep never ran and waited for them for ever.
    """
    shards, evalset = build_demo_data(n_train=2000, n_eval=500)
    monkeypatch.chdir(tmp_path)
    spec = StudySpec(TARGET, options=OPTIONS, n_rungs=2, eta=2, study_budget_gflops=TARGET * 2.5)
    res = run_study(spec, sweep_dir=tmp_path / "s", executor="debug", train_data=os.path.relpath(shards),
                    eval_data=os.path.relpath(evalset), executor_options={"resources": RESOURCES, "device": "cpu"},
                    poll_s=0.1)
    trials = optuna.load_study(study_name="s", storage=res.storage).get_trials()
    runs = [a for t in trials for k, a in t.user_attrs.items() if k.startswith("run_")]
    assert runs and all(a["status"] == "done" and a["run_id"] in a["result_path"] for a in runs)
