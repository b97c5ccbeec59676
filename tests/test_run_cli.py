"""``clipbudget run``: bad input fails in one line before training; SIGKILL/SIGTERM then rerun resumes with
exactly one result row; a completed run is not retrained; a failure is a ``failed`` row; RunJob pickles.

The signal tests run the real ``clipbudget`` console script in a subprocess and kill it for real.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests._data_fixtures import demo_data  # noqa: F401 - fixture
from tests._train_fixtures import micro_cfg, micro_model, one_thread  # noqa: F401 - fixtures

CLIPBUDGET = str(Path(sys.executable).with_name("clipbudget"))


def _write(path: Path, d: dict) -> Path:
    path.write_text(yaml.safe_dump(d))
    return path


def _base(micro_model, demo_data, **over) -> dict:
    shards, evald = demo_data
    d = dict(model=str(micro_model), strategy="clip", samples_seen=256, batch_size=64, train_data=str(shards),
             eval_data=str(evald), workers=0, linear_probe=False)
    d.update(over)
    return d


@pytest.mark.parametrize("over,needle", [
    ({"model": "ViT-B-33"}, "unknown model 'ViT-B-33'"),
    ({"strategy": "slipp"}, "unknown strategy 'slipp'"),
    ({"samples_seen": 10}, "below one batch"),
    ({"quality_fraction": 1.5}, "quality_fraction must be in (0, 1]"),
    ({"quality_fraction": 0}, "quality_fraction must be in (0, 1]"),
    ({"train_data": "EMPTY"}, "shard"),
])
def test_bad_config_is_one_line_before_training(over, needle, micro_model, demo_data, tmp_path, capsys):  # noqa: F811
    from planner.cli.main import main

    if over.get("train_data") == "EMPTY":
        (tmp_path / "empty").mkdir()
        over = {"train_data": str(tmp_path / "empty")}
    cfg = _write(tmp_path / "run.yaml", _base(micro_model, demo_data, **over))
    code = main(["run", str(cfg), "--out", str(tmp_path / "out"), "--device", "cpu"])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and needle in err, err
    assert not (tmp_path / "out" / "runs").exists() or not list((tmp_path / "out" / "runs").rglob("*.pt"))


def _wait_for_checkpoint(run_dir: Path, proc, after_step: int = 0, timeout: float = 120.0) -> int:
    from runners.checkpoint import list_checkpoints

    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        steps = [s for s, _ in list_checkpoints(run_dir / "checkpoints")]
        if steps and max(steps) > after_step:
            return max(steps)
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError("no checkpoint appeared")


@pytest.mark.parametrize("breakage,needle", [
    ("no_templates", "has no templates.txt"),
    ("no_classnames", "has no classnames.txt"),
    ("template_without_braces", "has no '{}'"),
    ("unreadable_images", "does not decode"),
])
def test_broken_eval_set_is_one_line_before_training(breakage, needle, micro_model, demo_data, tmp_path, capsys):  # noqa: F811
    """The evaluation set is checked before any training compute is spent (class names, templates, class
    folders, one readable image per class), not found broken after training."""
    import shutil

    from planner.cli.main import main

    shards, evald = demo_data
    broken = tmp_path / "eval"
    shutil.copytree(evald, broken)
    (broken / ".evalset_cache.npz").unlink(missing_ok=True)
    if breakage == "no_templates":
        (broken / "templates.txt").unlink()
    elif breakage == "no_classnames":
        (broken / "classnames.txt").unlink()
    elif breakage == "template_without_braces":
        (broken / "templates.txt").write_text("a photo of a thing.\n")
    else:
        for f in (broken / "3").iterdir():
            f.write_bytes(b"not an image")
    cfg = _write(tmp_path / "run.yaml", _base(micro_model, demo_data, eval_data=str(broken)))
    code = main(["run", str(cfg), "--out", str(tmp_path / "out"), "--device", "cpu"])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and needle in err, err
    assert not list((tmp_path / "out").rglob("*.pt")) and not list((tmp_path / "out").rglob("checkpoints"))


def test_sigkill_and_sigterm_then_rerun_resumes_with_one_row(micro_model, demo_data, one_thread, tmp_path,  # noqa: F811
                                                              capsys):
    from planner.cli.main import main
    from results.store import ResultStore
    from runners.config import RunConfig

    d = _base(micro_model, demo_data, samples_seen=64 * 30, checkpoint_every_steps=1)
    cfg_path = _write(tmp_path / "run.yaml", d)
    run_id = RunConfig.from_dict(d).run_id
    out = tmp_path / "out"
    run_dir = out / "runs" / run_id
    cmd = [CLIPBUDGET, "run", str(cfg_path), "--out", str(out), "--device", "cpu"]
    env = dict(os.environ, OMP_NUM_THREADS="1")

    killed = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    step_killed = _wait_for_checkpoint(run_dir, killed)
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=60)

    termed = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    step_termed = _wait_for_checkpoint(run_dir, termed, after_step=step_killed + 1)
    termed.send_signal(signal.SIGTERM)
    _, err = termed.communicate(timeout=120)
    assert termed.returncode == 128 + signal.SIGTERM, err
    assert "stopped by SIGTERM" in err and "resuming" in err
    assert not list((out / "results").glob("*.parquet")) if (out / "results").exists() else True

    capsys.readouterr()
    assert main(cmd[1:] + ["--format", "json"]) == 0  # the rerun, in-process (saves a process start-up)
    rows = ResultStore(out / "results").read(latest=False)
    assert len(rows) == 1
    row = rows.iloc[0]
    assert row["status"] == "completed" and row["samples_seen"] == 64 * 30
    assert row["resumed_from_step"] >= step_termed > step_killed
    # a completed run re-invoked returns its row without training (and writes nothing)
    capsys.readouterr()
    assert main(cmd[1:] + ["--format", "json"]) == 0
    assert "already completed" in capsys.readouterr().err
    assert len(ResultStore(out / "results").read(latest=False)) == 1


def test_failure_writes_a_failed_row_and_reraises(micro_model, demo_data, one_thread, tmp_path):  # noqa: F811
    from results.store import ResultStore
    from runners.run import run

    shards, _ = demo_data
    bad_eval = tmp_path / "eval"
    bad_eval.mkdir()  # no classnames.txt: fails when evaluating, after training
    cfg = micro_cfg(micro_model, shards, bad_eval, samples_seen=128)
    with pytest.raises(Exception) as info:
        run(cfg, tmp_path / "out", device="cpu")
    rows = ResultStore(tmp_path / "out" / "results").read(latest=False)
    assert len(rows) == 1 and rows.iloc[0]["status"] == "failed"
    error = rows.iloc[0]["error"]
    assert "\n" not in error and type(info.value).__name__ in error and "traceback: " in error
    assert Path(error.split("traceback: ")[1].rstrip(")")).is_file()


def test_runjob_is_picklable_and_requeues_itself(micro_model, demo_data, one_thread, tmp_path):  # noqa: F811
    import submitit

    from runners.job import RunJob

    shards, evald = demo_data
    cfg = micro_cfg(micro_model, shards, evald, samples_seen=128)
    job = RunJob(cfg, tmp_path, device="cpu", sweep_id="s1")
    clone = pickle.loads(pickle.dumps(job))
    assert clone.cfg == cfg and clone.out_dir == str(tmp_path) and clone.sweep_id == "s1"
    delayed = job.checkpoint()
    assert isinstance(delayed, submitit.helpers.DelayedSubmission)
    assert isinstance(delayed.function, RunJob) and delayed.function.cfg == cfg
    row = pickle.loads(pickle.dumps(delayed.function))()
    assert row["status"] == "completed" and row["sweep_id"] == "s1"
    assert job() == row or job()["run_id"] == row["run_id"]  # already completed: the same row back
