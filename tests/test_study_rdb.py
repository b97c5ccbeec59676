"""The study on a real RDB storage: the MariaDB server that the SLURM set-up runs (scripts/slurm-local.sh).

A database and a user of the study's own are created through the server's root socket; two
``clipbudget study`` processes started at once on one study (``--storage mysql+pymysql://...``) must lose
no trial and run none twice (:class:`planner.study.storage.DriverLock`: the second waits for the first,
then finds the study finished). Skipped locally without the server, failed under CI.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from tests._study_fixtures import same_result

REPO = Path(__file__).resolve().parents[1]
DB, USER, PASSWORD = "clipbudget_study_test", "clipbudget_study", "clipbudget-study-pw"
#: The set-up's server listens on its socket only (skip-networking), so the URL names the socket.
SOCKET = "/run/mysqld/mysqld.sock"
URL = f"mysql+pymysql://{USER}:{PASSWORD}@localhost/{DB}?unix_socket={SOCKET}"

pytestmark = pytest.mark.slurm


def _mysql(sql: str) -> subprocess.CompletedProcess:
    return subprocess.run(["mysql", "-u", "root", "-e", sql], capture_output=True, text=True, timeout=30, check=False)


@pytest.fixture
def mariadb_url():
    pytest.importorskip("pymysql", reason="pip install pymysql (in the test extra)")
    why = "mysql client not on PATH" if shutil.which("mysql") is None else None
    if why is None:
        probe = _mysql("SELECT 1")
        why = None if probe.returncode == 0 else f"MariaDB not reachable as root: {probe.stderr.strip()}"
    if why:
        msg = f"{why}; start it with: bash scripts/slurm-local.sh up"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    setup = (f"DROP DATABASE IF EXISTS {DB}; CREATE DATABASE {DB}; "
             f"CREATE USER IF NOT EXISTS '{USER}'@'localhost' IDENTIFIED BY '{PASSWORD}'; "
             f"CREATE USER IF NOT EXISTS '{USER}'@'127.0.0.1' IDENTIFIED BY '{PASSWORD}'; "
             f"GRANT ALL ON {DB}.* TO '{USER}'@'localhost'; GRANT ALL ON {DB}.* TO '{USER}'@'127.0.0.1';")
    done = _mysql(setup)
    assert done.returncode == 0, done.stderr
    yield URL
    _mysql(f"DROP DATABASE IF EXISTS {DB}")


def test_two_study_processes_share_one_mariadb_study(tmp_path, mariadb_url):
    base = [sys.executable, "-m", "planner.cli.main", "study", "--gflops", "1e11", "--executor", "simulate",
            "--seed", "3", "--format", "json", "--study-name", "shared"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    ref = subprocess.run(base + ["--sweep-dir", str(tmp_path / "ref")], capture_output=True, text=True, env=env,
                         timeout=600, check=True)
    procs = [subprocess.Popen(base + ["--sweep-dir", str(tmp_path / f"p{i}"), "--storage", mariadb_url],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for i in (0, 1)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    want = json.loads(ref.stdout)[0]
    for out, _ in outs:
        got = json.loads(out)[0]
        for k in ("storage", "study_name"):
            got.pop(k), want.pop(k, None)
        assert same_result(got, want), (got, want)  # the same study as one process alone: same runs, spend and recommendation
    trials = optuna.load_study(study_name="shared", storage=mariadb_url).get_trials()
    keys = [(t.params["model"], t.params["strategy"], t.params["quality_fraction"]) for t in trials]
    assert len(keys) == len(set(keys)) == want["trials"]  # no trial lost, none duplicated
    assert sum(len(t.intermediate_values) for t in trials) == want["runs"]  # no run twice
