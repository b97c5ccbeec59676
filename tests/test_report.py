"""``clipbudget report``: the three kinds of report, their content, determinism, Markdown, and bad input.

The sweep report runs on a real debug-executor sweep (tiny open_clip runs on Fashion-MNIST, ~20 s, built once
per module). The browser checks live in ``test_report_browser.py``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests._report_fixtures import build_sweep, shared_sweep
from tests._sweep_fixtures import cli_inproc

ROOT = Path(__file__).resolve().parent.parent
PRIOR = ROOT / "planner" / "prior" / "prior_fit.json"
GENERATED = re.compile(r"Generated \d{4}-\d\d-\d\d \d\d:\d\d UTC")


@pytest.fixture(scope="module")
def sweep_dir() -> Path:
    return shared_sweep()


def _figures(html: str) -> list[str]:
    return re.findall(r"<figure\b.*?</figure>", html, flags=re.S)


def _assert_self_contained(html: str) -> None:
    assert "<script" not in html
    # no external resource of any kind: no src attributes, no stylesheet links, no url() fetches
    assert not re.search(r"\bsrc\s*=", html)
    assert not re.search(r"<link\b", html)
    assert not re.search(r"url\(\s*['\"]?(https?:|//)", html)
    assert not re.search(r"(xlink:)?href=\"(https?:)?//", html)


# ------------------------------------------------------------------------------------------ budget


def test_budget_report_shows_the_plan_recommendation_and_every_section(tmp_path, capsys):
    out = tmp_path / "report.html"
    code, _, err = cli_inproc(capsys, "report", "--gflops", "1e10", "--out", str(out))
    assert code == 0, err
    html = out.read_text(encoding="utf-8")
    _assert_self_contained(html)
    for section in ("budget", "recommendation", "compute", "quality", "strategies", "assumptions", "data-limit"):
        assert f'<section id="{section}">' in html, section
    figs = _figures(html)
    assert len(figs) == 5
    for f in figs:  # every figure: inline SVG labelled by a caption that states numbers
        assert "<svg" in f and 'role="img"' in f
        caption = re.search(r"<figcaption[^>]*>(.*?)</figcaption>", f, flags=re.S).group(1)
        assert re.search(r"\d+\.\d %", caption), caption
    # the budget in every convention
    for text in ("1e+10 GFLOPs", "1e+19 FLOPs", "5e+18 MACs", "3e+19 FLOPs", "66.8 GPU-hours"):
        assert text in html, text
    # the recommendation is the one `clipbudget plan` makes
    code, plan_out, err = cli_inproc(capsys, "plan", "--gflops", "1e10", "--format", "json")
    assert code == 0, err
    best = next(r for r in json.loads(plan_out) if r["recommended"])
    lead = re.search(r'<p class="lead">(.*?)</p>', html).group(1)
    assert lead.startswith(f"Recommended: {best['model']} {best['strategy']}")
    assert f"{100 * best['predicted_top1']:.1f} %" in lead
    # the curves agree with the ranking: at the budget, the recommended model's curve is where the table is
    compute = re.search(r'<section id="compute">.*?</section>', html, flags=re.S).group(0)
    assert f"{best['model']} {100 * best['predicted_top1']:.1f} %" in compute
    # assumptions with citations, and the held-out validation table
    assert "Li, Xie, Cubuk" in html and "held-out split" in html


def test_budget_report_takes_the_plan_options_and_a_fit(tmp_path, capsys):
    out = tmp_path / "r.html"
    code, _, err = cli_inproc(capsys, "report", "--gpu-hours", "100", "--gpu", "H100", "--models", "ViT-B-32",
                              "ViT-B-16", "--strategies", "clip", "--quality", "0.4", "1.0", "--pool-size", "1e8",
                              "--fit", str(PRIOR), "--out", str(out))
    assert code == 0, err
    html = out.read_text(encoding="utf-8")
    assert "100 GPU-hours" in html and "H100" in html
    table = re.search(r'<section id="recommendation">.*?</section>', html, flags=re.S).group(0)
    assert "RN50" not in table and "flip" not in table
    # a small pool: the data pool, not compute, limits some rows, and the report says so
    limit = re.search(r'<section id="data-limit">.*?</section>', html, flags=re.S).group(0)
    assert re.search(r"\d+ of \d+ feasible rows are limited by the data pool", limit)


def test_report_is_deterministic_except_the_generated_line(tmp_path, capsys):
    a, b = tmp_path / "a.html", tmp_path / "b.html"
    for out in (a, b):
        code, _, err = cli_inproc(capsys, "report", "--gflops", "3e9", "--models", "ViT-S-16", "ViT-B-32",
                                  "--out", str(out))
        assert code == 0, err
    ta, tb = a.read_text(encoding="utf-8"), b.read_text(encoding="utf-8")
    assert len(GENERATED.findall(ta)) == 1
    assert GENERATED.sub("G", ta) == GENERATED.sub("G", tb)


def test_markdown_report_links_every_figure(tmp_path, capsys):
    out = tmp_path / "report.md"
    code, _, err = cli_inproc(capsys, "report", "--gflops", "1e10", "--format", "md", "--out", str(out))
    assert code == 0, err
    md = out.read_text(encoding="utf-8")
    links = re.findall(r"!\[[^\]]+\]\(([^)]+)\)", md)
    assert len(links) == 5
    for link in links:
        svg = (out.parent / link).read_text(encoding="utf-8")
        assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert "| convention | budget |" in md and "**Figure 1.**" in md
    assert not list(tmp_path.glob(".*"))  # no temp file or folder left behind


def test_library_entry_point_writes_a_report(tmp_path):
    from budget.units import parse_budget
    from planner.report import PlanOptions, write_report

    path = write_report(tmp_path / "lib.html", budget=parse_budget(gflops=1e9),
                        options=PlanOptions(models=("ViT-S-16",), strategies=("clip",)))
    assert path.read_text(encoding="utf-8").count("<figure") == 5


# --------------------------------------------------------------------------------------------- fit


def test_fit_report_shows_parameters_residuals_validation_and_curves(tmp_path, capsys):
    out = tmp_path / "fit.html"
    code, _, err = cli_inproc(capsys, "report", "--fit", str(PRIOR), "--out", str(out))
    assert code == 0, err
    html = out.read_text(encoding="utf-8")
    _assert_self_contained(html)
    for section in ("summary", "parameters", "residuals", "validation", "curves"):
        assert f'<section id="{section}">' in html, section
    prior = json.loads(PRIOR.read_text())
    params = re.search(r'<section id="parameters">.*?</section>', html, flags=re.S).group(0)
    for name in prior["param_names"]:
        assert f"<td>{name}</td>" in params, name
    residuals = re.search(r'<section id="residuals">.*?</section>', html, flags=re.S).group(0)
    for src in prior["sources"]:
        assert f"<td>{src}</td>" in residuals, src
    assert len(_figures(html)) == 2


# ------------------------------------------------------------------------------------------- sweep


def test_sweep_report_shows_ledger_runs_measured_refit_and_recommendation(sweep_dir, tmp_path, capsys):
    from runners.sweep import status

    out = tmp_path / "sweep.html"
    code, _, err = cli_inproc(capsys, "report", str(sweep_dir), "--out", str(out), "--refit-bootstrap", "50")
    assert code == 0, err
    html = out.read_text(encoding="utf-8")
    _assert_self_contained(html)
    for section in ("ledger", "runs", "measured", "refit", "recommendation"):
        assert f'<section id="{section}">' in html, section
    st = status(sweep_dir)
    assert len(st.runs) == 5 and all(r.state == "completed" for r in st.runs)
    runs = re.search(r'<section id="runs">.*?</section>', html, flags=re.S).group(0)
    measured = re.search(r'<section id="measured">.*?</section>', html, flags=re.S).group(0)
    for r in st.runs:
        assert f"<td>{r.run_id}</td>" in runs and f"<td>{r.run_id}</td>" in measured
    assert "5 of 5 runs completed" in html
    refit = re.search(r'<section id="refit">.*?</section>', html, flags=re.S).group(0)
    assert "refreshed fit (" in refit and "was not refreshed" not in refit
    assert "tiny-vit-28" in re.search(r'<section id="recommendation">.*?</section>', html, flags=re.S).group(0)
    assert not (sweep_dir / "results.parquet").exists()  # a report writes nothing into the sweep


# --------------------------------------------------------------------------------------- bad input


def _one_line_exit_2(code: int, err: str) -> None:
    assert code == 2
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("clipbudget: error:"), err


def test_sweep_without_completed_runs_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys):
    sweep = build_sweep(tmp_path / "failed", completed=False)
    out = tmp_path / "out" / "r.html"
    out.parent.mkdir()
    code, _, err = cli_inproc(capsys, "report", str(sweep), "--out", str(out))
    _one_line_exit_2(code, err)
    assert "no completed runs" in err
    assert list(out.parent.iterdir()) == []


def test_fit_file_of_another_version_is_one_line_exit_2(tmp_path, capsys):
    bad = json.loads(PRIOR.read_text())
    bad["clipbudget_fit"] = 99
    fit = tmp_path / "future.json"
    fit.write_text(json.dumps(bad))
    for argv in (["--fit", str(fit)], ["--gflops", "1e10", "--fit", str(fit)]):
        out = tmp_path / "r.html"
        code, _, err = cli_inproc(capsys, "report", *argv, "--out", str(out))
        _one_line_exit_2(code, err)
        assert "FIT.json" in err and not out.exists()


@pytest.mark.parametrize("where", ["missing-folder", "parent-is-a-file", "out-is-a-folder"])
def test_unwritable_output_is_one_line_exit_2(tmp_path, capsys, where):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    out = {"missing-folder": tmp_path / "nope" / "r.html", "parent-is-a-file": blocker / "r.html",
           "out-is-a-folder": tmp_path}[where]
    code, _, err = cli_inproc(capsys, "report", "--gflops", "1e10", "--out", str(out))
    _one_line_exit_2(code, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]


def test_a_failure_while_writing_leaves_the_old_report_and_no_temp_file(tmp_path, capsys, monkeypatch):
    import os

    out = tmp_path / "r.html"
    out.write_text("old report")

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)  # the report is written to a temp file, then this fails
    code, _, err = cli_inproc(capsys, "report", "--gflops", "1e10", "--out", str(out))
    _one_line_exit_2(code, err)
    assert "No space left on device" in err
    assert out.read_text() == "old report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]


def test_nothing_to_report_on_is_a_usage_error(tmp_path, capsys):
    code, _, err = cli_inproc(capsys, "report", "--out", str(tmp_path / "r.html"))
    _one_line_exit_2(code, err)
    assert not (tmp_path / "r.html").exists()


def test_sweep_report_says_why_the_fit_was_not_refreshed(sweep_dir, tmp_path, capsys, monkeypatch):
    from budget.errors import ConfigError
    from planner.report import _scaling

    def refuse(*args, **kwargs):
        raise ConfigError("cannot fit a scaling law to zeroshot_top1 from 1 row")

    monkeypatch.setattr(_scaling, "refit", refuse)
    out = tmp_path / "sweep.html"
    code, _, err = cli_inproc(capsys, "report", str(sweep_dir), "--out", str(out))
    assert code == 0, err
    refit = re.search(r'<section id="refit">.*?</section>', out.read_text(encoding="utf-8"), flags=re.S).group(0)
    assert "the fit was not refreshed: cannot fit a scaling law to zeroshot_top1 from 1 row" in refit
