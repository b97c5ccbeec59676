"""The analysis notebooks in notebooks/ run top to bottom (as scripts, jupytext percent format).

``budget_frontier.py`` asks the built-in prior the seed paper's questions; the test checks it wrote its
figures and that the answers it drew agree with the paper's findings. The README's command that renders a
notebook as an HTML page (jupytext + nbconvert, the ``test`` extra) runs as written in a slow test.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

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


def test_seed_paper_figures_notebook_draws_the_papers_findings(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "notebooks" / "seed_paper_figures.py"), "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for name in ("quality.png", "repetition.png", "models.png", "cnn_vs_vit.png", "strategies.png", "augmentation.png"):
        png = tmp_path / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000, name
    f = json.loads((tmp_path / "findings.json").read_text())
    q = f["quality"]  # finding 1: a filtered subset beats the whole pool at one epoch
    assert 0.2 <= q["best_q_one_epoch"] < 1.0 and q["top1_q0.4_one_epoch"] >= q["top1_q1.0_one_epoch"]
    r = f["repetition"]  # finding 2: repetition helps 400M unique pairs more than 25M
    assert r["400M"]["top1_32ep"] - r["400M"]["top1_16ep"] > r["25M"]["top1_32ep"] - r["25M"]["top1_16ep"]
    assert f["models"]["best_at_3.4e9"] == "ViT-L-16" != f["models"]["best_at_1e7"]  # finding 3
    c = f["cnn"]  # finding 4: ResNet-50 first, ViT-B/32 later
    assert c["rn50_minus_vitb32_at_1e7"] > 0 > c["rn50_minus_vitb32_at_3.4e9"]
    s = f["strategies"]  # finding 5: SLIP best at equal samples (small), worst at equal compute
    assert s["best_at_1e8_samples"] == "slip" and s["worst_at_1e10_gflops"] == "slip"
    a = f["augmentation"]  # finding 7: augmentation helps at 30 epochs, hurts at one
    assert a["aug_25M_30ep"] > a["plain_25M_30ep"] and a["aug_minus_plain_1ep_25M"] < 0


def test_study_walkthrough_notebook_runs_plan_to_report(tmp_path):
    """plan → grid → run (debug executor, real tiny training) → collect → fit → report, on Fashion-MNIST."""
    import os

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(ROOT / "notebooks" / "study_walkthrough.py"), "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=900, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["runs"] == summary["completed"] == 5
    assert summary["fit_form"] in ("saturating", "cherti") and summary["fit_points"] == 5
    assert len(summary["reports"]) == 2
    for path in summary["reports"]:
        html = Path(path).read_text(encoding="utf-8")
        assert html.startswith("<!DOCTYPE html>") and html.count("<figure") >= 2
    assert all(0.0 <= v <= 1.0 for v in summary["top1"].values())


#: The README's command that renders a notebook as a page (jupytext and nbconvert: the ``test`` extra).
RENDER = ("jupytext --to ipynb notebooks/study_walkthrough.py && "
          "jupyter nbconvert --execute --to html notebooks/study_walkthrough.ipynb")


@pytest.mark.slow
def test_readme_render_command_renders_the_walkthrough_as_html(tmp_path):
    """The README's render command, as written, in a copy of notebooks/ (nothing is left in the repository).

    The kernel runs in the notebook's folder, so the notebook's default ``--out study`` lands in the copy.
    """
    import html
    import os
    import re
    import shutil

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"`{RENDER}`" in readme, "the README's render command changed: update RENDER (and this test)"
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks", ignore=shutil.ignore_patterns("*.ipynb", "study"))
    before = sorted(p.name for p in (ROOT / "notebooks").iterdir())
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run(["bash", "-c", RENDER], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=540)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in (ROOT / "notebooks").iterdir()) == before  # nothing written into the repo
    page = tmp_path / "notebooks" / "study_walkthrough.html"
    text = html.unescape(re.sub(r"<[^>]+>", "", page.read_text(encoding="utf-8")))
    assert "A study, end to end, on this machine's CPU" in text  # the notebook's markdown
    assert re.search(r"^shards: \S+/notebooks/study/data/shards", text, re.M)  # cell outputs, in the copy
    assert re.search(r"^fit: (cherti|saturating) on 5 points$", text, re.M)
    assert '"runs": 5,\n  "completed": 5,' in text
    summary = json.loads((tmp_path / "notebooks" / "study" / "summary.json").read_text())
    assert summary["completed"] == 5 and all(Path(p).is_file() for p in summary["reports"])
