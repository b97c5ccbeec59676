"""Every kind of report opened from a file:// path in a real headless Chromium (Debian's ``chromium``).

A report fails here if the browser logs a console error or an uncaught exception, if any request fails or
goes anywhere but the file itself, if a figure has zero size or draws nothing, if the page is blank, or if a
380-px-wide window has to scroll sideways. A screenshot of each is kept under ``build/test-artifacts/`` (or
``$CLIPBUDGET_ARTIFACTS``). Without Chromium these tests skip locally and **fail** under ``CI=true``.
The last test feeds the checker a deliberately broken page, so a checker that sees nothing fails too.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from tests._report_fixtures import open_page, require_chromium, save_artifact, shared_sweep

ROOT = Path(__file__).resolve().parent.parent
PRIOR = ROOT / "planner" / "prior" / "prior_fit.json"
NARROW = 380


@pytest.fixture(scope="module")
def chromium() -> str:
    return require_chromium()


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, Path]:
    """One report of each kind, written by the CLI."""
    import sys

    from planner.cli.main import main  # module scope has no capsys: run the CLI's main directly

    root = tmp_path_factory.mktemp("reports")
    sweep = shared_sweep()
    argvs = {
        "budget": ["report", "--gflops", "1e10", "--out", str(root / "budget.html")],
        "fit": ["report", "--fit", str(PRIOR), "--out", str(root / "fit.html")],
        "sweep": ["report", str(sweep), "--refit-bootstrap", "50", "--out", str(root / "sweep.html")],
    }
    for kind, argv in argvs.items():
        assert main(argv) == 0, f"clipbudget {' '.join(argv)} failed"
        print(f"wrote {kind} report", file=sys.stderr)
    return {k: root / f"{k}.html" for k in argvs}


def _problems(result, *, expect_figures: bool = True) -> list[str]:
    """Everything wrong with a loaded page (empty when it is fine)."""
    p = result.probe
    out = [f"console error: {e}" for e in result.console_errors]
    out += [f"failed request: {r}" for r in result.failed_requests]
    out += [f"request beyond the file: {r}" for r in result.requests if r != result.url]
    out += [f"resource fetched: {r}" for r in p.get("resources", [])]
    if p.get("text_length", 0) < 200:
        out.append(f"blank page: {p.get('text_length', 0)} characters of text")
    figs = p.get("figures", [])
    if expect_figures and not figs:
        out.append("no figure")
    for i, (w, h, n) in enumerate(figs):
        if w < 50 or h < 50:
            out.append(f"figure {i + 1} has size {w:.0f}x{h:.0f}")
        if n == 0:
            out.append(f"figure {i + 1} draws nothing")
    if p.get("scroll_width", 0) > p.get("inner_width", 0):
        out.append(f"page scrolls sideways: {p['scroll_width']} px wide in a {p['inner_width']} px window")
    out += _blank_screenshot(result.screenshot_png)
    return out


def _blank_screenshot(png: bytes) -> list[str]:
    from PIL import Image

    if not png:
        return ["no screenshot"]
    img = Image.open(io.BytesIO(png)).convert("L")
    lo, hi = img.getextrema()
    return [] if hi - lo > 64 else [f"screenshot is blank (grey levels {lo}..{hi})"]


@pytest.mark.parametrize("kind", ["budget", "fit", "sweep"])
@pytest.mark.parametrize("width", [1200, NARROW])
def test_report_opens_cleanly_in_chromium(chromium, reports, kind, width):
    path = reports[kind]
    result = open_page(path.resolve().as_uri(), width=width, chromium=chromium)
    shot = save_artifact(f"report-{kind}-{width}px.png", result.screenshot_png)
    assert _problems(result) == [], f"{kind} report at {width}px (screenshot: {shot})"
    expected = path.read_text(encoding="utf-8").count("<figure")
    assert len(result.probe["figures"]) == expected > 0
    assert all(c.startswith("Figure ") for c in result.probe["captions"])


def test_the_checker_catches_a_broken_page(chromium, tmp_path):
    bad = tmp_path / "broken.html"
    bad.write_text(
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>broken</title></head><body>"
        "<script>console.error('boom')</script>"
        "<img src='missing.png' alt='missing'>"
        "<figure><svg width='0' height='0' viewBox='0 0 10 10'></svg><figcaption>Figure 1.</figcaption></figure>"
        "<div style='width:2000px'>wide</div></body></html>", encoding="utf-8")
    result = open_page(bad.resolve().as_uri(), width=NARROW, chromium=chromium)
    problems = "\n".join(_problems(result))
    for expected in ("console error: boom", "failed request", "figure 1 has size 0x0", "figure 1 draws nothing",
                     "blank page", "scrolls sideways"):
        assert expected in problems, (expected, problems)


def test_missing_chromium_fails_under_ci_and_skips_elsewhere(monkeypatch):
    import tests._report_fixtures as fixtures

    monkeypatch.setattr(fixtures, "find_chromium", lambda: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must run the browser tests"):
        fixtures.require_chromium()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        fixtures.require_chromium()
