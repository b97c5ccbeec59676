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

#: The demo's line in README.md (tests/test_readme.py checks that it is there).
README_DEMO = "clipbudget demo --out demo"


@pytest.mark.slow
def test_demo_closes_the_loop_on_cpu(tmp_path):
    # The README's command, as written (tests/test_readme.py lists it as run here), in a fresh folder.
    t0 = time.monotonic()
    proc = subprocess.run(["bash", "-c", README_DEMO], capture_output=True, text=True, timeout=1800, cwd=tmp_path,
                          env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
                               "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    # The goal is <= 10 minutes on 2 cores; machines here are noisy, so the time is printed, not asserted.
    print(f"clipbudget demo took {(time.monotonic() - t0) / 60:.1f} min")
    res = json.loads((tmp_path / "demo" / "demo.json").read_text())
    runs = res["target_runs"]
    assert len(runs) == 3 and all(r["measured_top1"] is not None for r in runs)
    assert res["covered"] == 3, runs  # predicted top-1 of the target runs within their 95 % intervals
    assert res["gap_to_best"] <= 0.02, runs  # recommendation within 2 points of the best measured
    assert res["trends"] and res["report"] and Path(res["report"]).is_file()
