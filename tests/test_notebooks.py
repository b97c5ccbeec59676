"""The analysis notebooks in notebooks/ run top to bottom (as scripts, jupytext percent format).

``budget_frontier.py`` asks the built-in prior the seed paper's questions; the test checks it wrote its
figures and that the answers it drew agree with the paper's findings.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_budget_frontier_notebook_runs_and_draws_the_findings(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "notebooks" / "budget_frontier.py"), "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for name in ("quality.png", "models.png", "strategies.png", "frontier.png"):
        png = tmp_path / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000, name
    found = json.loads((tmp_path / "findings.json").read_text())
    assert 0.2 <= found["best_quality_fraction_one_epoch_vit_b32"] < 1.0  # quality beats quantity
    assert found["best_model_at_3.4e9"] == "ViT-L-16" and found["best_model_at_2.5e7"] != "ViT-L-16"
    frontier = found["frontier"]
    assert [r["gflops"] for r in frontier] == sorted(r["gflops"] for r in frontier)
    accs = [r["predicted_top1"] for r in frontier]
    assert accs == sorted(accs)  # more compute never recommends a worse configuration
    assert all(r["ci_low"] <= r["predicted_top1"] <= r["ci_high"] for r in frontier)
