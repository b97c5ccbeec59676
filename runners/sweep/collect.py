"""Gather a sweep's completed rows into one table (saying what is missing and why), and wait for a sweep."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from results.atomic import atomic_open
from runners.sweep.folder import SweepPaths, isna, load_manifest
from runners.sweep.states import ACTIVE_STATES, RunStatus, SweepStatus, status


@dataclass(frozen=True)
class Missing:
    """A run without a completed row, and why."""

    run_id: str
    state: str
    reason: str
    log_path: str | None

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class CollectReport:
    table: Any  #: pandas.DataFrame, one completed row per run
    output: Path | None  #: where the table was written
    missing: list[Missing]
    n_runs: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": len(self.table),
            "runs": self.n_runs,
            "output": str(self.output) if self.output else None,
            "missing": [m.to_dict() for m in self.missing],
        }


def _why_missing(s: RunStatus) -> str:
    if s.state == "failed":
        return f"failed: {s.error}"
    if s.state in ACTIVE_STATES:
        return f"{s.state} (job {s.job_id}); collect again when it has finished"
    if s.state == "cancelled":
        return f"{s.error or 'cancelled'}; clipbudget resubmit --cancelled"
    return s.error or s.state


def collect(sweep_dir: str | os.PathLike[str], *, into: str | os.PathLike[str] | None = None) -> CollectReport:
    """Gather the completed rows of the sweep into one table and say what is missing and why.

    ``into``: a ``.parquet``/``.csv`` file (the table, written atomically) or a results-store folder (each
    completed row not already there is added, so collecting twice adds nothing). Default:
    ``SWEEP/results.parquet``.
    """
    from results.store import ResultStore

    paths = SweepPaths.of(sweep_dir)
    manifest = load_manifest(paths.root)
    st = status(paths.root)
    df = ResultStore(paths.results).read(latest=True)
    if len(df):
        df = df[(df["status"] == "completed") & (df["run_id"].isin(list(manifest["runs"])))].reset_index(drop=True)
    missing = [Missing(s.run_id, s.state, _why_missing(s), s.log_path) for s in st.runs if s.state != "completed"]
    target = Path(into) if into is not None else paths.root / "results.parquet"
    if target.suffix in (".parquet", ".csv"):
        with atomic_open(target, "wb") as fh:
            if target.suffix == ".parquet":
                df.to_parquet(fh, index=False)
            else:
                df.to_csv(fh, index=False)
    else:
        store = ResultStore(target)
        have = store.completed_run_ids()
        for rec in df.to_dict(orient="records"):
            if rec["run_id"] not in have:
                store.write({k: (None if isna(v) else v) for k, v in rec.items()})
    return CollectReport(df, target, missing, len(manifest["runs"]))


def wait(
    sweep_dir: str | os.PathLike[str],
    *,
    timeout_s: float = 600.0,
    poll_s: float = 1.0,
    until: Callable[[SweepStatus], bool] | None = None,
) -> SweepStatus:
    """Poll :func:`status` until every run is final (or ``until(status)`` holds); TimeoutError after
    ``timeout_s`` seconds."""
    deadline = time.monotonic() + timeout_s
    while True:
        st = status(sweep_dir)
        if (until(st) if until is not None else st.done):
            return st
        if time.monotonic() > deadline:
            raise TimeoutError(f"sweep {sweep_dir} not done after {timeout_s:.0f}s: {st.counts}")
        time.sleep(poll_s)


__all__ = ["CollectReport", "Missing", "collect", "wait"]
