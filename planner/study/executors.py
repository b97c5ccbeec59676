"""The study's executors: where a study's runs go and how their outcomes come back.

The driver (:mod:`planner.study.driver`) hands an executor batches of runs and polls it; an executor keeps no
state the driver needs (a resumed study rebuilds one and re-attaches through the runs' recorded attributes).

* ``simulate`` (:class:`SimulatedRuns`): outcomes drawn from :class:`planner.study.simulate.GroundTruth`, no
  training;
* ``debug``/``local``/``slurm`` (:class:`SweepRuns`): each batch is a grid written to
  ``SWEEP_DIR/batches/<batch>.yaml`` and submitted with :func:`runners.sweep.submit` into
  ``SWEEP_DIR/batches/<batch>/`` (so ``clipbudget status`` works on it); outcomes are read back with
  :func:`runners.sweep.status` and the sweep's :class:`results.store.ResultStore`.

An executor has ``name``, ``run_id(key, rung, row) -> (run_id, extra)``, ``submit(batch, batch_name) -> where``
(attributes recorded with each run: for sweeps ``sweep_dir`` and ``grid``), optionally ``launch(sweep_dir, grid)``
(the actual submission, done after the runs are recorded) and ``poll(pending) -> {run_id: RunOutcome}`` (only
finished runs).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from budget.errors import ConfigError
from planner.study import law
from planner.study.law import Key

if TYPE_CHECKING:
    from planner.study.driver import Prepared

EXECUTORS = ("simulate", "debug", "local", "slurm")


@dataclass(frozen=True)
class RunRequest:
    """One run of a configuration at a rung, as recorded in the trial's ``run_<rung>`` attribute."""

    trial_id: int
    number: int
    key: Key
    rung: int
    attr: Mapping[str, Any]


@dataclass(frozen=True)
class RunOutcome:
    """A finished run: ``top1`` (a fraction) or ``error``, and where its result row is."""

    top1: float | None
    result_path: str | None = None
    error: str | None = None


class SimulatedRuns:
    """The ``simulate`` executor: results drawn from a :class:`planner.study.simulate.GroundTruth`."""

    name = "simulate"

    def __init__(self, prep: Prepared):
        from planner.study.simulate import GroundTruth

        self.truth = GroundTruth(prep.spec.target_gflops, prep.spec.options, prep.rungs[:-1], seed=prep.spec.seed,
                                 fit=prep.spec.fit)
        self._rungs = prep.rungs

    def run_id(self, key: Key, rung: int, row: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
        h = hashlib.sha256(f"{law.key_str(key)}@{self._rungs[rung]}".encode()).hexdigest()[:16]
        return "sim-" + h, {}

    def submit(self, batch: list[tuple[RunRequest, Mapping[str, Any]]], batch_name: str) -> dict[str, Any]:
        return {}

    def poll(self, pending: list[RunRequest]) -> dict[str, RunOutcome]:
        out = {}
        for r in pending:
            g = self._rungs[r.rung]
            out[r.attr["run_id"]] = RunOutcome(self.truth.observe(r.key, g if r.rung < len(self._rungs) - 1
                                                                  else self.truth.target_gflops))
        return out


class SweepRuns:
    """``debug``/``local``/``slurm``: each batch of runs is a grid submitted with :func:`runners.sweep.submit`."""

    def __init__(self, prep: Prepared, sweep_dir: Path, executor: str, *, train_data: str | None,
                 eval_data: str | None, executor_options: Mapping[str, Any] | None = None):
        """``executor_options``: ``resources`` (a mapping of grid resources written into each batch's grid:
        cpus_per_task, mem_gb, time_min, gpus_per_node, ...), ``overrides`` (the same, applied at submit
        time as :class:`runners.executors.ResourceOverrides`, e.g. partition), ``array_parallelism``,
        ``device``, ``max_retries``."""
        if not train_data or not eval_data:
            raise ConfigError(f"--executor {executor} trains for real: give --data DIR (training shards) and "
                              "--eval DIR (evaluation set), or use --executor simulate")
        self.name = executor
        self.prep = prep
        self.root = Path(sweep_dir) / "batches"
        self.train_data, self.eval_data = str(train_data), str(eval_data)
        self.options = dict(executor_options or {})
        self._configs: dict[str, Any] = {}

    def run_id(self, key: Key, rung: int, row: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
        cfg = law.run_configs([row], train_data=self.train_data, eval_data=self.eval_data,
                              options=self.prep.spec.options)[0]
        self._configs[cfg.run_id] = cfg
        return cfg.run_id, {}

    def submit(self, batch: list[tuple[RunRequest, Mapping[str, Any]]], batch_name: str) -> dict[str, Any]:
        from runners.gridfile import write_grid

        folder = self.root / batch_name
        grid = folder.parent / f"{batch_name}.yaml"
        if not grid.exists():
            grid.parent.mkdir(parents=True, exist_ok=True)
            write_grid(grid, [self._configs[r.attr["run_id"]] for r, _ in batch],
                       resources=self.options.get("resources"), comments=[f"clipbudget study batch {batch_name}"])
        return {"sweep_dir": str(folder), "grid": str(grid)}

    def launch(self, folder: str, grid: str) -> None:
        from runners.executors import ResourceOverrides
        from runners.sweep import submit

        kw = {k: v for k, v in self.options.items() if k in ("array_parallelism", "device", "max_retries")}
        if self.options.get("overrides"):
            kw["resources"] = ResourceOverrides(**self.options["overrides"])
        submit(grid, folder, executor=self.name, **kw)

    def poll(self, pending: list[RunRequest]) -> dict[str, RunOutcome]:
        from results.store import ResultStore
        from runners.sweep import status

        out: dict[str, RunOutcome] = {}
        by_folder: dict[str, list[RunRequest]] = {}
        for r in pending:
            by_folder.setdefault(r.attr["sweep_dir"], []).append(r)
        for folder, reqs in by_folder.items():
            if not (Path(folder) / "manifest.json").exists():  # killed between recording and submitting
                self.launch(folder, reqs[0].attr["grid"])
            st = status(folder).by_id()
            store = ResultStore(Path(folder) / "results")
            for r in reqs:
                s = st.get(r.attr["run_id"])
                if s is None:  # the batch's grid holds other run ids: waiting would never end
                    out[r.attr["run_id"]] = RunOutcome(None, None, f"run {r.attr['run_id']} is not in the sweep "
                                                                   f"{folder}; its grid's configs hash otherwise")
                    continue
                if s.state in ("pending", "running", "requeued"):
                    continue
                if s.state == "completed":
                    rows = [x for x in store.rows_for(r.attr["run_id"]) if x.get("status") == "completed"]
                    top1 = float(rows[-1]["zeroshot_top1"]) if rows else None
                    path = _result_path(store.root, r.attr["run_id"])
                    out[r.attr["run_id"]] = RunOutcome(top1, path, None if rows else "no result row")
                else:
                    out[r.attr["run_id"]] = RunOutcome(None, None, f"{s.state}: {s.error}")
        return out


def _result_path(root: Path, run_id: str) -> str | None:
    files = sorted(Path(root).glob(f"{run_id}.completed.*.parquet"))
    return str(files[-1]) if files else None


def check_executor(executor: str) -> None:
    """ConfigError naming the valid choices unless ``executor`` is one of :data:`EXECUTORS`."""
    if executor not in EXECUTORS:
        raise ConfigError(f"unknown executor {executor!r}; valid choices: {', '.join(EXECUTORS)}")


def make_runner(prep: Prepared, executor: str, sweep_dir: str | os.PathLike, *, train_data: str | None = None,
                eval_data: str | None = None, executor_options: Mapping[str, Any] | None = None) -> Any:
    """The executor named ``executor`` (one of :data:`EXECUTORS`) for a prepared study; ConfigError otherwise."""
    check_executor(executor)
    if executor == "simulate":
        return SimulatedRuns(prep)
    return SweepRuns(prep, Path(sweep_dir), executor, train_data=train_data, eval_data=eval_data,
                     executor_options=executor_options)
