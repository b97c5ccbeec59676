"""The sweep folder: its paths (all derived from the root and the ids), its manifest and the manifest lock.

::

    SWEEP/
      manifest.json   grid path + hash, sweep_id, run_id → config, resources, planned FLOPs/GPU-hours, attempts
      grid.yaml       the grid as first submitted
      jobs/           submitit folder (%j_submitted.pkl, %j_%t_log.out/err, %j_%t_result.pkl)
      results/        ResultStore: one parquet row per finished attempt, written by the jobs themselves
      runs/<run_id>/  checkpoints and run log, written by the runner

The manifest is written atomically (temp file, fsync, rename) under an ``fcntl`` lock; jobs never touch
it, they only add result rows.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import hashlib
import json
import math
import os
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from budget.errors import ConfigError
from results.atomic import write_atomic
from runners.executors import job_log, job_result

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1


@dataclass(frozen=True)
class SweepPaths:
    """Every path of a sweep folder, derived from its root."""

    root: Path

    @classmethod
    def of(cls, sweep_dir: str | os.PathLike[str]) -> SweepPaths:
        """The paths of ``sweep_dir``, made absolute (jobs, manifests and other shells see the same folder)."""
        return cls(Path(sweep_dir).expanduser().resolve())

    @property
    def manifest(self) -> Path:
        return self.root / MANIFEST

    @property
    def grid_copy(self) -> Path:
        return self.root / "grid.yaml"

    @property
    def jobs(self) -> Path:
        return self.root / "jobs"

    @property
    def results(self) -> Path:
        return self.root / "results"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    @property
    def lock(self) -> Path:
        return self.root / ".manifest.lock"

    def run_dir(self, run_id: str) -> Path:
        return self.runs / run_id

    def job_log(self, job_id: str, stream: str = "err") -> Path:
        """submitit's log of task 0 of ``job_id`` (``stream``: ``out`` or ``err``)."""
        return job_log(self.jobs, job_id, stream)

    def job_result(self, job_id: str) -> Path:
        return job_result(self.jobs, job_id)


def now() -> tuple[str, float]:
    """(ISO-8601 UTC with microseconds, seconds since the epoch) of this instant."""
    t = time.time()
    return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).isoformat(timespec="microseconds"), t


def parse_iso(value: Any) -> float | None:
    """Seconds since the epoch of an ISO-8601 string (naive = UTC); None if it is not one."""
    if not value or not isinstance(value, str):
        return None
    try:
        d = _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if d.tzinfo is None:
        d = d.replace(tzinfo=_dt.timezone.utc)
    return d.timestamp()


def isna(v: Any) -> bool:
    """None, NaN or pandas' NA/NaT."""
    if v is None or type(v).__name__ in ("NAType", "NaTType"):
        return True
    try:
        return bool(math.isnan(v))
    except (TypeError, ValueError):
        return False


# -------------------------------------------------------------------------------------------- manifest


def load_manifest(sweep_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of ``sweep_dir``; :class:`ConfigError` if the folder is not a clipbudget sweep."""
    paths = SweepPaths.of(sweep_dir)
    if not paths.root.is_dir():
        raise ConfigError(f"not a sweep folder: {paths.root} does not exist or is not a folder")
    try:
        text = paths.manifest.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"not a sweep folder: {paths.root} has no {MANIFEST} (create one with clipbudget submit)") from None
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"corrupt sweep manifest {paths.manifest}: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("clipbudget_sweep") != MANIFEST_VERSION:
        raise ConfigError(
            f"not a sweep folder: {paths.manifest} is not a clipbudget sweep manifest (version {MANIFEST_VERSION})"
        )
    return manifest


def write_manifest(paths: SweepPaths, manifest: dict[str, Any]) -> None:
    """Write the manifest atomically: temp file in the folder, fsync, rename, fsync the folder."""
    manifest["updated_at"] = now()[0]
    write_atomic(paths.manifest, json.dumps(manifest, indent=1, sort_keys=False) + "\n")


@contextlib.contextmanager
def locked(paths: SweepPaths) -> Iterator[None]:
    """Exclusive lock for read-modify-write of the manifest (other CLI processes wait)."""
    paths.root.mkdir(parents=True, exist_ok=True)
    with open(paths.lock, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def existing_manifest_for(paths: SweepPaths, sweep_id: str, grid_path: Path) -> dict[str, Any] | None:
    """The manifest of an existing sweep of the same grid, None for a new/empty folder; ConfigError otherwise."""
    if paths.root.exists() and not paths.root.is_dir():
        raise ConfigError(f"--sweep-dir {paths.root} is a file, not a folder")
    if not paths.root.exists() or not any(p.name != paths.lock.name for p in paths.root.iterdir()):
        return None
    if not paths.manifest.exists():
        raise ConfigError(
            f"--sweep-dir {paths.root} is not empty and not a clipbudget sweep (no {MANIFEST}); use a new folder"
        )
    manifest = load_manifest(paths.root)
    if manifest.get("sweep_id") != sweep_id:
        raise ConfigError(
            f"sweep folder {paths.root} belongs to another grid (sweep_id {manifest.get('sweep_id')}, "
            f"{grid_path} has {sweep_id}); use a new --sweep-dir"
        )
    return manifest


def new_manifest(paths: SweepPaths, grid: Any, grid_path: Path, executor: dict[str, Any],
                 runs: dict[str, dict[str, Any]]) -> dict[str, Any]:  # fmt: skip
    """Create the folder's sub-folders, copy the grid and write a manifest of ``runs`` (run_id → record)."""
    at, _ = now()
    for d in (paths.jobs, paths.results, paths.runs):
        d.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(grid_path, paths.grid_copy)
    manifest = {
        "clipbudget_sweep": MANIFEST_VERSION,
        "sweep_id": grid.sweep_id,
        "sweep_name": grid.sweep_name,
        "grid": {"path": str(grid_path.resolve()), "sha256": hashlib.sha256(grid_path.read_bytes()).hexdigest(),
                 "copy": paths.grid_copy.name},  # fmt: skip
        "executor": executor,
        "created_at": at,
        "updated_at": at,
        "submissions": [],
        "runs": runs,
    }
    write_manifest(paths, manifest)
    return manifest


def any_attempt(paths: SweepPaths) -> bool:
    """True if the folder's manifest records a submitted job (False without a manifest)."""
    try:
        return any(r["attempts"] for r in load_manifest(paths.root)["runs"].values())
    except ConfigError:
        return False


def remove_traces(paths: SweepPaths, *, root_existed: bool) -> None:
    """Undo a submission that reached no scheduler: empty the folder (if it existed) or remove it."""
    if not root_existed:
        shutil.rmtree(paths.root, ignore_errors=True)
        return
    for child in paths.root.iterdir():
        if child.is_dir():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def resolve_run_ids(manifest: dict[str, Any], run_ids: Iterable[str]) -> list[str]:
    """Full run ids for ``run_ids`` (unique prefixes allowed); ConfigError naming the first unknown one."""
    known = list(manifest["runs"])
    out = []
    for q in run_ids:
        matches = [r for r in known if r.startswith(q)]
        if len(matches) != 1:
            what = "ambiguous" if matches else "unknown"
            raise ConfigError(
                f"{what} run id {q!r}; this sweep has {len(known)} runs (list them with clipbudget status)"
            )
        out.append(matches[0])
    return out


def rows_by_run(paths: SweepPaths) -> dict[str, list[dict[str, Any]]]:
    """Every result row of the sweep grouped by run_id (oldest first); reads parquet only if rows exist."""
    from results.store import ResultStore

    store = ResultStore(paths.results)
    if not store.files():
        return {}
    df = store.read(latest=False)
    out: dict[str, list[dict[str, Any]]] = {}
    for rec in df.to_dict(orient="records"):
        clean = {k: (None if isna(v) else v) for k, v in rec.items()}
        out.setdefault(clean["run_id"], []).append(clean)
    for rows in out.values():
        rows.sort(key=lambda r: parse_iso(r.get("finished_at")) or 0.0)
    return out


def completed_ids(paths: SweepPaths) -> set[str]:
    """The run ids with a completed result row."""
    from results.store import ResultStore

    return ResultStore(paths.results).completed_run_ids()


__all__ = [
    "MANIFEST",
    "MANIFEST_VERSION",
    "SweepPaths",
    "completed_ids",
    "existing_manifest_for",
    "load_manifest",
    "locked",
    "new_manifest",
    "parse_iso",
    "resolve_run_ids",
    "rows_by_run",
    "write_manifest",
]
