"""Fixtures of the sweep tests: tiny real grids, the local SLURM cluster, waiting, folder hashes.

The conformance suite runs the same scenarios on the three back-ends (:data:`BACKENDS`): ``debug``
(in-process), ``local`` (subprocesses) and ``slurm`` (the real single-node cluster that
``scripts/slurm-local.sh up`` starts). SLURM tests are marked ``slurm``; when the cluster is not
reachable they skip locally but **fail** under ``CI=true`` (CI must never skip them silently).

Every job is the real runner (``runners.job.RunJob``) training a tiny open_clip model on real
Fashion-MNIST shards for a few steps.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]

BACKENDS = ["debug", "local", pytest.param("slurm", marks=pytest.mark.slurm)]

#: A tiny run: a 28-px ViT on Fashion-MNIST, a few optimizer steps, zero-shot evaluation only.
TINY_RUN: dict[str, Any] = {
    "model": "tiny-vit-28",
    "strategy": "clip",
    "samples_seen": 32,
    "batch_size": 16,
    "lr": 1e-3,
    "workers": 0,
    "eval_batch_size": 100,
    "linear_probe": False,
    "retrieval": False,
}
#: A longer tiny run (long enough to be cancelled or interrupted mid-training), checkpointing often.
LONG_RUN: dict[str, Any] = {**TINY_RUN, "samples_seen": 320, "batch_size": 8, "checkpoint_every_steps": 4}
#: Per-job resources of the test grids: one CPU, little memory, a limit far above the run time.
TEST_RESOURCES: dict[str, Any] = {"cpus_per_task": 1, "mem_gb": 1, "time_min": 10}


# ------------------------------------------------------------------------------------------ SLURM


def slurm_reachable() -> tuple[bool, str]:
    """(reachable, why not): sbatch/srun on PATH, ``scontrol ping`` answers, ``sacct`` works."""
    for tool in ("sbatch", "srun", "sacct", "scontrol"):
        if shutil.which(tool) is None:
            return False, f"{tool} not on PATH"
    try:
        ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=20, check=False)
        if ping.returncode != 0 or "UP" not in ping.stdout:
            return False, f"scontrol ping: {ping.stdout.strip() or ping.stderr.strip()}"
        acct = subprocess.run(["sacct", "-n", "-X", "-j", "1"], capture_output=True, text=True, timeout=20,
                              check=False)
        if acct.returncode != 0:
            return False, f"sacct (accounting) unavailable: {acct.stderr.strip()}"
    except (OSError, subprocess.SubprocessError) as exc:
        return False, str(exc)
    return True, ""


def require_backend(backend: str) -> None:
    """Skip (locally) or fail (CI=true) when ``backend`` cannot run here."""
    if backend != "slurm":
        return
    ok, why = slurm_reachable()
    if ok:
        return
    message = f"local SLURM cluster not reachable ({why}); start it with: bash scripts/slurm-local.sh up"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message + " — CI must run the slurm tests, not skip them", pytrace=False)
    pytest.skip(message)


def slurm_job_count(grid: Path) -> int:
    """Jobs SLURM has accepted for the sweep of ``grid`` (named ``clipbudget-<sweep name or id>``)."""
    from runners.gridfile import load_grid

    g = load_grid(grid)
    name = f"clipbudget-{g.sweep_name or g.sweep_id[:8]}"
    out = subprocess.run(["sacct", "-n", "-X", "-a", "-S", "2000-01-01", "--name", name, "-o", "JobID",
                          "--parsable2"], capture_output=True, text=True, timeout=30, check=True).stdout
    return len([line for line in out.splitlines() if line.strip()])


@pytest.fixture
def fast_submitit(monkeypatch):
    """submitit waits 15 s for a result file that never comes (cancelled jobs); 1 s is enough here."""
    import submitit

    monkeypatch.setattr(submitit.SlurmJob, "_results_timeout_s", 1)
    monkeypatch.setattr(submitit.LocalJob, "_results_timeout_s", 1)


@pytest.fixture
def job_env(monkeypatch):
    """One BLAS thread per job (several jobs share two cores); the jobs inherit this environment."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("MKL_NUM_THREADS", "1")


# ------------------------------------------------------------------------------------------- grids


def write_grid(path: Path, runs: list[dict[str, Any]], *, defaults: dict[str, Any] | None = None,
               resources: dict[str, Any] | None = None, name: str | None = None) -> Path:
    """Write a grid file (the format of ``runners.gridfile``) and return its path."""
    doc: dict[str, Any] = {"clipbudget_grid": 1}
    if name:
        doc["sweep_name"] = name
    doc["defaults"] = dict(defaults or {})
    doc["resources"] = dict(TEST_RESOURCES if resources is None else resources)
    doc["runs"] = runs
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def corrupt_shards(root: Path) -> Path:
    """A shard folder whose only shard is not a tar file: the runner fails reading it."""
    d = root / "corrupt-shards"
    d.mkdir(parents=True, exist_ok=True)
    (d / "00000000.tar").write_bytes(b"this is not a tar archive\n" * 64)
    return d


def six_plus_one_grid(path: Path, shard_dir: Path, eval_dir: Path, bad_dir: Path) -> Path:
    """Six tiny configs that complete and one whose data is corrupt (scenarios 1, 2, 5, 6)."""
    runs = [{**TINY_RUN, "seed": s, "samples_seen": n} for s in (0, 1) for n in (16, 32, 48)]
    runs.append({**TINY_RUN, "seed": 7, "train_data": str(bad_dir)})
    return write_grid(path, runs, defaults={"train_data": str(shard_dir), "eval_data": str(eval_dir)},
                      name="conformance")


# ------------------------------------------------------------------------------------------ helpers


def cli(*argv: str) -> tuple[int, str, str]:
    """Run ``clipbudget ARGV`` in a fresh process: (exit code, stdout, stderr)."""
    proc = subprocess.run([sys.executable, "-m", "planner.cli.main", *argv], capture_output=True, text=True,
                          cwd=REPO, timeout=300, check=False)
    return proc.returncode, proc.stdout, proc.stderr


def cli_inproc(capsys, *argv: str) -> tuple[int, str, str]:
    """Run ``clipbudget ARGV`` in this process (``main(argv)``): (exit code, stdout, stderr)."""
    from planner.cli.main import main

    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def status_json(sweep_dir: Path) -> dict[str, Any]:
    """``clipbudget status DIR --format json`` from a fresh process."""
    code, out, err = cli("status", str(sweep_dir), "--format", "json")
    assert code == 0, err
    return json.loads(out)


def wait_until(sweep_dir: Path, predicate: Callable[[Any], bool], *, timeout_s: float = 240.0,
               poll_s: float = 0.5, what: str = "condition") -> Any:
    """Poll ``runners.sweep.status`` until ``predicate(status)``; fail with the last status on timeout."""
    from runners.sweep import status

    deadline = time.monotonic() + timeout_s
    st = status(sweep_dir)
    while not predicate(st):
        if time.monotonic() > deadline:
            details = [(r.run_id, r.state, r.scheduler_state, r.error) for r in st.runs]
            pytest.fail(f"timed out after {timeout_s:.0f}s waiting for {what}: {st.counts} {details}")
        time.sleep(poll_s)
        st = status(sweep_dir)
    return st


def wait_for_file(pattern_dir: Path, glob: str, *, timeout_s: float = 120.0) -> Path:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = sorted(pattern_dir.glob(glob)) if pattern_dir.exists() else []
        if found:
            return found[0]
        time.sleep(0.2)
    pytest.fail(f"no {glob} under {pattern_dir} after {timeout_s:.0f}s")


def folder_digest(root: Path) -> str:
    """sha256 over every path, size and content under ``root`` ("" if it does not exist)."""
    if not root.exists():
        return ""
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        h.update(rel.encode() + b"\0")
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


@contextlib.contextmanager
def timed(label: str, log: list[tuple[str, float]]) -> Iterator[None]:
    t0 = time.perf_counter()
    yield
    log.append((label, time.perf_counter() - t0))


def record_slot(out_dir: str, index: int, seconds: float) -> dict[str, Any]:
    """A job body for executor tests: sleeps, and returns when it ran and which GPUs it was given."""
    t0 = time.time()
    time.sleep(seconds)
    rec = {"index": index, "start": t0, "end": time.time(), "gpus": os.environ.get("CUDA_VISIBLE_DEVICES")}
    Path(out_dir, f"slot-{index}.json").write_text(json.dumps(rec))
    return rec
