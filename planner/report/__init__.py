"""Recommendation reports: one self-contained HTML page (or Markdown + SVG files) from a budget, a fit or a sweep.

* :mod:`~planner.report.gather` — what a report shows, as plain data (pure functions);
* :mod:`~planner.report._scaling` — the one adapter to the scaling-law API;
* :mod:`~planner.report.figures` — matplotlib figures as deterministic SVG;
* :mod:`~planner.report.document` — sections, tables, figures and captions with numbers;
* :mod:`~planner.report.render` — HTML and Markdown.

:func:`write_report` is the library entry point (``clipbudget report`` and ``clipbudget demo`` call it).

Example::

    from budget.units import parse_budget
    from planner.report import write_report
    write_report("report.html", budget=parse_budget(gflops=1e10))
    write_report("sweep.html", sweep_dir="sweeps/demo")
    write_report("fit.md", fit="fit.json", format="md")
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from budget.errors import ConfigError
from planner.report.gather import PlanOptions

log = logging.getLogger(__name__)

FORMATS = ("html", "md")
KINDS = ("budget", "fit", "sweep")


def report_kind(*, budget: Any = None, fit: Any = None, sweep_dir: Any = None) -> str:
    """Which report the arguments ask for: a sweep wins, then a budget, then a fit alone."""
    if sweep_dir is not None:
        if budget is not None:
            raise ConfigError("give a sweep folder or a budget, not both (a sweep report takes its budget from "
                              "the sweep)")
        return "sweep"
    if budget is not None:
        return "budget"
    if fit is not None:
        return "fit"
    raise ConfigError("nothing to report on: give a budget (--gflops/--flops/--gpu-hours), a fit (--fit FIT.json) "
                      "or a sweep folder")


def check_output(out: str | os.PathLike, format: str) -> Path:
    """Fail early (one line) when ``out`` cannot be written: a folder, or a parent that is missing or read-only."""
    if format not in FORMATS:
        raise ConfigError(f"unknown report format {format!r}; valid: {', '.join(FORMATS)}")
    p = Path(out)
    if p.is_dir():
        raise ConfigError(f"--out {p} is a folder; give a file name such as report.{format}")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise ConfigError(f"cannot write {p}: the folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"cannot write {p}: the folder {parent} is not writable")
    if p.exists() and not os.access(p, os.W_OK):
        raise ConfigError(f"cannot write {p}: the file is read-only")
    return p


def build_document(*, budget: Any = None, fit: str | os.PathLike | None = None,
                   sweep_dir: str | os.PathLike | None = None, options: PlanOptions | None = None, top: int = 10,
                   refit_bootstrap: int = 200) -> Any:
    """The :class:`~planner.report.document.Document` of the report the arguments ask for."""
    from planner.report import _scaling, document, gather

    kind = report_kind(budget=budget, fit=fit, sweep_dir=sweep_dir)
    law = _scaling.load_law(fit) if fit is not None else None
    if kind == "budget":
        data = gather.budget_data(budget, options or PlanOptions(), law)
        return document.budget_document(data, top=top)
    if kind == "fit":
        return document.fit_document(gather.fit_data(law))
    data = gather.sweep_data(sweep_dir, law=law, refit_bootstrap=refit_bootstrap)
    return document.sweep_document(data, top=top)


def write_report(out: str | os.PathLike, *, budget: Any = None, fit: str | os.PathLike | None = None,
                 sweep_dir: str | os.PathLike | None = None, options: PlanOptions | None = None,
                 format: str = "html", top: int = 10, refit_bootstrap: int = 200,
                 now: _dt.datetime | None = None) -> Path:
    """Write the report the arguments ask for to ``out`` and return its path.

    Args:
        out: the HTML file, or the Markdown file (figures go to ``<stem>_files/`` beside it).
        budget: a :class:`budget.units.Budget` — the report from a budget (with ``options``, ``fit``).
        fit: a FIT.json from ``clipbudget fit`` (default: the built-in prior); alone — the report from a fit.
        sweep_dir: a sweep folder — the report from a sweep (``fit`` then predicts the runs).
        options: plan options (:class:`planner.report.gather.PlanOptions`) for the report from a budget.
        format: ``html`` (one self-contained file) or ``md``.
        top: rows shown in the ranked tables.
        refit_bootstrap: bootstrap draws of the sweep report's refreshed fit.
        now: the time stated on the "generated" line (default: now, UTC).

    Raises:
        ConfigError: bad input (nothing to report on, a fit file of another format, a sweep without
            completed runs, an output path that cannot be written). Nothing is written then.
    """
    from planner.report import render

    out_path = check_output(out, format)
    doc = build_document(budget=budget, fit=fit, sweep_dir=sweep_dir, options=options, top=top,
                         refit_bootstrap=refit_bootstrap)
    stamp = (now or _dt.datetime.now(_dt.timezone.utc)).strftime("%Y-%m-%d %H:%M UTC")
    generated = f"Generated {stamp} by clipbudget {doc.version}."
    try:
        if format == "html":
            _write_atomic(out_path, render.to_html(doc, generated=generated))
        else:
            fig_dir = out_path.with_name(out_path.stem + "_files")
            text, files = render.to_markdown(doc, generated=generated, figure_dir=fig_dir.name)
            _write_folder_atomic(fig_dir, files)
            _write_atomic(out_path, text)
    except OSError as exc:
        raise ConfigError(f"cannot write {out_path}: {exc.strerror or exc}") from None
    log.info("wrote %s report to %s", doc.kind, out_path)
    return out_path


def _write_atomic(path: Path, text: str) -> None:
    from results.atomic import write_atomic

    write_atomic(path, text)


def _write_folder_atomic(folder: Path, files: dict[str, str]) -> None:
    """Write ``files`` into a hidden temp folder, then swap it in for ``folder`` (old contents removed)."""
    from results.atomic import fsync_dir

    tmp = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        for name, text in files.items():
            (tmp / name).write_text(text, encoding="utf-8")
        old = None
        if folder.exists():
            old = folder.with_name(f".{folder.name}.{os.getpid()}.old")
            os.replace(folder, old)
        os.replace(tmp, folder)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        fsync_dir(folder.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


__all__ = ["FORMATS", "KINDS", "PlanOptions", "build_document", "check_output", "report_kind", "write_report"]
