"""Cancel the active jobs of a sweep (all runs, or some) and record the cancellation in the manifest."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from runners.executors import get_backend
from runners.sweep.folder import SweepPaths, load_manifest, locked, now, resolve_run_ids, write_manifest
from runners.sweep.states import ACTIVE_STATES, status


@dataclass(frozen=True)
class CancelReport:
    cancelled: list[tuple[str, str]]  #: (run_id, job_id)
    not_active: dict[str, str]  #: run_id → its state (nothing to cancel)
    errors: dict[str, str] = field(default_factory=dict)  #: run_id → why cancelling failed

    def to_dict(self) -> dict[str, Any]:
        return {
            "cancelled": [{"run_id": r, "job_id": j} for r, j in self.cancelled],
            "not_active": self.not_active,
            "errors": self.errors,
        }


def cancel(sweep_dir: str | os.PathLike[str], run_ids: Sequence[str] = ()) -> CancelReport:
    """Cancel the active jobs of ``run_ids`` (all runs when empty) and record the cancellation.

    Each back-end cancels its own jobs (:meth:`runners.executors.base.Backend.cancel`): SLURM through
    ``scancel``; local jobs by signals to their processes. Debug jobs run inside ``submit`` and are never
    active afterwards.
    """
    paths = SweepPaths.of(sweep_dir)
    manifest = load_manifest(paths.root)
    targets = resolve_run_ids(manifest, run_ids) if run_ids else list(manifest["runs"])
    with locked(paths):  # one lock from reading the states to recording the cancellation
        st = status(paths.root).by_id()
        cancelled, not_active, errors = [], {}, {}
        by_kind: dict[str, list[tuple[str, str]]] = {}
        for run_id in targets:
            s = st[run_id]
            if s.state not in ACTIVE_STATES or not s.job_id:
                not_active[run_id] = s.state
                continue
            by_kind.setdefault(s.executor or "", []).append((run_id, s.job_id))
        for kind, pairs in by_kind.items():
            failed = get_backend(kind).cancel(paths.jobs, [j for _, j in pairs])
            for run_id, job_id in pairs:
                if job_id in failed:
                    errors[run_id] = failed[job_id]
                else:
                    cancelled.append((run_id, job_id))
        if cancelled:
            manifest = load_manifest(paths.root)
            at, _ = now()
            for run_id, job_id in cancelled:
                for a in reversed(manifest["runs"][run_id]["attempts"]):
                    if a["job_id"] == job_id:
                        a["cancelled_at"] = at
                        break
            write_manifest(paths, manifest)
    return CancelReport(cancelled, not_active, errors)


__all__ = ["CancelReport", "cancel"]
