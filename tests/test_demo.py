"""``clipbudget demo``: the whole loop on CPU, offline (slow: several minutes on two cores).

Real everything: Fashion-MNIST shards from Debian's package with corrupted captions, tiny open_clip ViTs
trained by the local executor, the adaptive study on SQLite, the target runs, the sweep report.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_demo_closes_the_loop_on_cpu(tmp_path):
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "planner.cli.main", "demo", "--out", str(tmp_path / "d"),
                           "--format", "json"], capture_output=True, text=True, timeout=1200, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"})
    minutes = (time.monotonic() - t0) / 60
    assert proc.returncode == 0, proc.stderr[-3000:]
    (res,) = json.loads(proc.stdout)
    assert minutes <= 10, f"demo took {minutes:.1f} min (goal: 10 on 2 cores)"
    runs = res["target_runs"]
    assert len(runs) == 3 and all(r["measured_top1"] is not None for r in runs)
    assert res["covered"] == 3, runs  # predicted top-1 of the target runs within their 95 % intervals
    assert res["gap_to_best"] <= 0.02, runs  # recommendation within 2 points of the best measured
    assert res["trends"] and res["report"] and Path(res["report"]).is_file()
    assert (tmp_path / "d" / "demo.json").is_file()
