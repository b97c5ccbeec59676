"""The sweep's budget: what each run is planned to cost, and the ledger of planned vs spent vs remaining.

Planned cost of a run (paper convention, :func:`budget.cost.run_cost`): training FLOPs = per-sample
training GFLOPs × 1e9 × ``samples_seen``; GPU-hours = :func:`budget.hardware.gpu_hours` of that on the
run's ``gpu`` at the default MFU. Spent: what the result rows record (``train_flops`` of completed runs; ``gpu_hours`` of every
attempt's row).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from runners.executors import ResourceOverrides, Resources


@dataclass(frozen=True)
class PlannedRun:
    """One run of a grid as the sweep will submit it: config, resources, planned cost."""

    run_id: str
    config: Any  # runners.config.RunConfig
    resources: Resources
    planned_train_flops: float  #: training FLOPs (≈ 3 × forward × samples_seen), paper convention
    planned_gpu_hours: float  #: GPU-hours for planned_train_flops on ``gpu`` at the default MFU
    gpu: str

    def manifest_record(self, index: int) -> dict[str, Any]:
        """The run's entry in the sweep manifest (before any attempt)."""
        return {
            "index": index,
            "config": self.config.to_dict(),
            "shape": self.resources.to_dict(),
            "gpu": self.gpu,
            "planned_train_flops": self.planned_train_flops,
            "planned_gpu_hours": self.planned_gpu_hours,
            "attempts": [],
        }


def planned_cost(cfg: Any, gpu: str | None = None, mfu: float | None = None) -> tuple[float, float]:
    """(training FLOPs, GPU-hours) planned for one run: :func:`budget.cost.run_cost` of ``cfg`` (the one
    cost the plan and the run use too) on ``gpu`` at ``mfu`` (None: :mod:`budget.hardware`'s defaults)."""
    from budget.cost import run_cost

    cost = run_cost(cfg, gpu=gpu, mfu=mfu)
    return cost.train_flops, cost.gpu_hours


def plan_runs(grid: Any, overrides: ResourceOverrides | None = None) -> list[PlannedRun]:
    """The runs of a loaded grid with their resources (``overrides``: the command line's) and costs."""
    from budget.hardware import DEFAULT_GPU

    planned = []
    for cfg, res in grid:
        gpu = res.gpu or DEFAULT_GPU
        flops, hours = planned_cost(cfg, gpu=gpu)
        planned.append(PlannedRun(cfg.run_id, cfg, res.override(overrides), flops, hours, gpu))
    return planned


@dataclass(frozen=True)
class Ledger:
    """The sweep's budget: planned vs spent vs remaining, in training FLOPs and GPU-hours.

    ``planned``: every run of the grid. ``spent_train_flops``: the training FLOPs of completed runs.
    ``spent_gpu_hours``: GPU-hours the result rows record (wall hours × GPUs, completed and failed
    attempts). ``remaining``: the planned cost of the runs not completed yet.
    """

    planned_train_flops: float
    spent_train_flops: float
    remaining_train_flops: float
    planned_gpu_hours: float
    spent_gpu_hours: float
    remaining_gpu_hours: float
    wall_hours: float  #: wall-clock hours of all finished attempts plus running ones so far

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    @classmethod
    def of(cls, runs: Sequence[Any], wall_s: float) -> Ledger:
        """The ledger of ``runs`` (:class:`~runners.sweep.states.RunStatus` objects)."""
        planned_f = sum(x.planned_train_flops for x in runs)
        planned_h = sum(x.planned_gpu_hours for x in runs)
        done = [x for x in runs if x.state == "completed"]
        return cls(
            planned_train_flops=planned_f,
            spent_train_flops=sum(x.spent_train_flops for x in runs),
            remaining_train_flops=planned_f - sum(x.planned_train_flops for x in done),
            planned_gpu_hours=planned_h,
            spent_gpu_hours=sum(x.spent_gpu_hours for x in runs),
            remaining_gpu_hours=planned_h - sum(x.planned_gpu_hours for x in done),
            wall_hours=wall_s / 3600.0,
        )


def spent(run_rows: list[dict[str, Any]], planned_train_flops: float) -> tuple[float, float, float]:
    """(spent training FLOPs, spent GPU-hours, wall seconds) that one run's result rows record."""
    completed = [x for x in run_rows if x["status"] == "completed"]
    flops = float(completed[-1].get("train_flops") or planned_train_flops) if completed else 0.0
    hours = sum(float(x["gpu_hours"]) for x in run_rows if x.get("gpu_hours") is not None)
    wall = sum(float(x["wall_seconds"]) for x in run_rows if x.get("wall_seconds") is not None)
    return flops, hours, wall


__all__ = ["Ledger", "PlannedRun", "plan_runs", "planned_cost", "spent"]
