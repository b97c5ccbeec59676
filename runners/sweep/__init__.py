"""Sweeps: submit a grid to a submitit back-end, then track, cancel, resubmit and collect it.

One module per verb: :mod:`.folder` (the sweep folder: paths derived from folder + ids, the manifest and
its lock), :mod:`.ledger` (planned cost of each run; planned vs spent vs remaining), :mod:`.submit`
(submit, resubmit), :mod:`.states` (run states, ``status``), :mod:`.cancel`, :mod:`.collect` (collect,
wait). The back-ends themselves (build, views, cancel, interrupt) live in :mod:`runners.executors`.

All state lives in the sweep folder, so ``status``, ``cancel``, ``resubmit`` and ``collect`` work from a
new shell after ``submit`` has exited.

Example::

    report = submit("grid.yaml", "sweeps/s1", executor="slurm",
                    resources=ResourceOverrides(partition="gpu"), array_parallelism=8)
    st = status("sweeps/s1"); st.counts          # {'pending': 6}
    collect("sweeps/s1").table                   # one row per completed run
"""

from __future__ import annotations

from runners.executors import ResourceOverrides
from runners.sweep.cancel import CancelReport, cancel
from runners.sweep.collect import CollectReport, Missing, collect, wait
from runners.sweep.folder import MANIFEST, MANIFEST_VERSION, SweepPaths, load_manifest, resolve_run_ids
from runners.sweep.ledger import Ledger, PlannedRun, plan_runs, planned_cost
from runners.sweep.states import ACTIVE_STATES, SCHEDULER_UNREACHABLE, STATES, RunStatus, SweepStatus, status
from runners.sweep.submit import JobFactory, SubmitReport, resubmit, submit

__all__ = [
    "ACTIVE_STATES",
    "MANIFEST",
    "MANIFEST_VERSION",
    "SCHEDULER_UNREACHABLE",
    "STATES",
    "CancelReport",
    "CollectReport",
    "JobFactory",
    "Ledger",
    "Missing",
    "PlannedRun",
    "ResourceOverrides",
    "RunStatus",
    "SubmitReport",
    "SweepPaths",
    "SweepStatus",
    "cancel",
    "collect",
    "load_manifest",
    "plan_runs",
    "planned_cost",
    "resolve_run_ids",
    "resubmit",
    "status",
    "submit",
    "wait",
]
