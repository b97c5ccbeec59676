"""The study driver: ask-and-tell over an Optuna storage, runs through an executor, the policy in between.

One Optuna trial per configuration (parameters ``model``, ``strategy``, ``quality_fraction``); each run of
it at a rung is an intermediate report ``trial.report(top1, step=rung index)`` (the rungs' GFLOPs are in
the ``config`` attribute), and the trial ends
``COMPLETE`` with its top-1 at the target, or ``PRUNED`` (by the rule, or when the budget ran out). Trial
user attributes: ``config`` (the configuration and its row at the target) and ``run_<k>`` per rung run
(``run_id``, ``gflops`` of that run, ``samples_seen``, ``sweep_dir``, ``result_path``), so
``optuna-dashboard`` shows a study as it goes. Study user attributes: the spec (``clipbudget_spec``) and one
``step_<observations>`` per decision (best lower bound, pruned configurations with their upper bounds,
promotions).

The loop (:func:`run_study`) keeps no state of its own: every pass re-reads the storage, so killing the
process at any point and running the same command again continues the same study. A pass

1. collects finished runs (reports them; a failed run fails its trial);
2. waits while runs are still in flight;
3. otherwise refits the law on everything observed (:class:`planner.study.policy.StudyLaw`), prunes,
   and promotes (:func:`planner.study.policy.decide`) — or, with nothing left to promote, finishes.

Runs go through an executor (:mod:`planner.study.executors`): ``simulate`` (:mod:`planner.study.simulate`, no
training) or the sweep machinery's ``debug``/``local``/``slurm`` (:mod:`runners.sweep`: each batch of promotions
is one sweep folder under ``SWEEP_DIR/batches/``, so ``clipbudget status`` works on it too).

Compute: GFLOPs in the paper convention (per-sample forward GFLOPs × samples seen). The ledger's
``spent`` counts finished runs, ``in_flight`` submitted ones, ``remaining`` = budget − both.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from budget.errors import ConfigError
from planner.study import law
from planner.study.executors import (  # noqa: F401  (SimulatedRuns, SweepRuns, RunOutcome: importable from here)
    EXECUTORS,
    RunOutcome,
    RunRequest,
    SimulatedRuns,
    SweepRuns,
    check_executor,
    make_runner,
)
from planner.study.law import Key, PlanOptions
from planner.study.policy import Observation, PolicyConfig, decide, rung_gflops

log = logging.getLogger(__name__)

#: Default study budget: this share of running every configuration once at the target.
DEFAULT_BUDGET_SHARE = 0.2
DEFAULT_ETA = 3.0
DEFAULT_RUNGS = 5
RUN_ATTR = "run_{}"


@dataclass(frozen=True)
class StudySpec:
    """What a study is; stored with it, and a re-run must give the same (see :mod:`planner.study.storage`).

    ``target_gflops``: the compute the recommendation is for (paper convention). ``eta``: rung ratio.
    ``n_rungs``: rungs including the target (``TARGET/eta**(n_rungs-1)`` .. ``TARGET``); with
    ``min_rung_gflops`` the rungs go down to the largest ``TARGET/eta**k`` not below it instead.
    ``study_budget_gflops``: cap on the study's compute (default :data:`DEFAULT_BUDGET_SHARE` × configurations
    × target). ``simulate_seed``: the simulated truth's seed (simulation only).
    """

    target_gflops: float
    options: PlanOptions = field(default_factory=PlanOptions)
    eta: float = DEFAULT_ETA
    n_rungs: int = DEFAULT_RUNGS
    min_rung_gflops: float | None = None
    study_budget_gflops: float | None = None
    seed: int = 0
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    fit: str | None = None
    simulate: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"target_gflops": self.target_gflops, "options": self.options.to_dict(), "eta": self.eta,
                "n_rungs": self.n_rungs, "min_rung_gflops": self.min_rung_gflops,
                "study_budget_gflops": self.study_budget_gflops, "seed": self.seed, "policy": self.policy.to_dict(),
                "fit": str(self.fit) if self.fit else None, "simulate": self.simulate}


@dataclass(frozen=True)
class Prepared:
    """A validated study: rungs (GFLOPs, ascending), configurations, per-rung rows and costs."""

    spec: StudySpec
    rungs: tuple[float, ...]
    keys: tuple[Key, ...]
    rows: dict[Key, tuple[dict[str, Any], ...]]
    costs: dict[Key, tuple[float, ...]]
    budget_gflops: float
    grid_gflops: float
    skipped: tuple[str, ...]
    law: Any = None  #: the StudyLaw the rows came from (its caches are shared with the pruner)

    @property
    def first_rung_gflops(self) -> float:
        return float(sum(c[0] for c in self.costs.values()))


def prepare(spec: StudySpec) -> Prepared:
    """Validate ``spec`` and enumerate its rungs, rows and costs; no side effects. ConfigError on bad input."""
    from planner.study.policy import StudyLaw

    t = float(spec.target_gflops)
    if not (math.isfinite(t) and t > 0):
        raise ConfigError(f"target budget must be a positive, finite number of GFLOPs, got {t!r}")
    if not (math.isfinite(spec.eta) and spec.eta > 1):
        raise ConfigError(f"--eta must be a number above 1, got {spec.eta!r}")
    n = spec.n_rungs
    if spec.min_rung_gflops is not None:
        m = float(spec.min_rung_gflops)
        if not (math.isfinite(m) and m > 0):
            raise ConfigError(f"--min-rung-gflops must be a positive number of GFLOPs, got {m!r}")
        if t < m:
            raise ConfigError(f"target budget {t:.4g} GFLOPs is smaller than the smallest rung {m:.4g} GFLOPs "
                              "(--min-rung-gflops); raise --gflops or lower --min-rung-gflops")
        n = int(math.floor(math.log(t / m) / math.log(spec.eta) + 1e-9)) + 1
    rungs = tuple(float(g) for g in rung_gflops(t, eta=spec.eta, n_rungs=n))
    if rungs[0] < 1e-3:
        raise ConfigError(f"target budget {t:.4g} GFLOPs is smaller than the smallest rung allows: "
                          f"{t:.4g}/{spec.eta:g}^{n - 1} GFLOPs is below 1 MFLOP; lower --rungs or raise --gflops")
    slaw = StudyLaw(t, spec.options, spec.policy, spec.fit)
    target_rows = slaw.rows_at(rungs[-1])
    rows: dict[Key, list[dict[str, Any]]] = {k: [] for k in target_rows}
    skipped: list[str] = []
    for g in rungs:
        try:
            at = slaw.rows_at(g)
        except ConfigError as exc:
            raise ConfigError(f"target budget {t:.4g} GFLOPs: its smallest rung ({g:.4g} GFLOPs, "
                              f"target/{spec.eta:g}^{n - 1}) buys no run ({exc}); lower --rungs or raise --gflops") from None
        for k in list(rows):
            if k in at:
                rows[k].append(at[k])
            else:
                skipped.append(f"{law.key_str(k)} (no plan row at {g:.4g} GFLOPs)")
                del rows[k]
    if not rows:
        raise ConfigError(f"no configuration has a plan row at every rung ({rungs[0]:.4g} to {rungs[-1]:.4g} GFLOPs); "
                          "lower --rungs or relax --min-epochs")
    costs = {k: tuple(float(r["total_gflops"]) for r in rs) for k, rs in rows.items()}
    grid = float(sum(c[-1] for c in costs.values()))
    budget = spec.study_budget_gflops
    if budget is None:
        budget = DEFAULT_BUDGET_SHARE * len(rows) * t
    if not (math.isfinite(budget) and budget > 0):
        raise ConfigError(f"--study-budget must be a positive number of GFLOPs, got {budget!r}")
    first = sum(c[0] for c in costs.values())
    if budget < first:
        raise ConfigError(f"study budget {budget:.4g} GFLOPs is smaller than one rung: running the {len(rows)} "
                          f"configurations at the smallest rung ({rungs[0]:.4g} GFLOPs) costs {first:.4g} GFLOPs; "
                          "raise --study-budget, add rungs or narrow the plan")
    return Prepared(spec=spec, rungs=rungs, keys=tuple(rows), rows={k: tuple(v) for k, v in rows.items()},
                    costs=costs, budget_gflops=float(budget), grid_gflops=grid, skipped=tuple(skipped), law=slaw)


# ------------------------------------------------------------------------------------------ the loop


@dataclass
class TrialView:
    """A trial as the loop sees it (rebuilt from the storage on every pass)."""

    trial_id: int
    number: int
    key: Key
    state: str
    reports: dict[int, float]  # rung index -> top1
    runs: dict[int, dict[str, Any]]  # rung index -> run attr

    @property
    def level(self) -> int:
        return max(self.reports, default=-1)


@dataclass(frozen=True)
class Ledger:
    """The study's compute (GFLOPs, paper convention): budget, spent (finished runs), in flight, remaining."""

    budget_gflops: float
    spent_gflops: float
    in_flight_gflops: float
    grid_gflops: float

    @property
    def remaining_gflops(self) -> float:
        return self.budget_gflops - self.spent_gflops - self.in_flight_gflops

    @property
    def spent_fraction(self) -> float:
        """Spent compute as a share of running the whole grid at the target."""
        return self.spent_gflops / self.grid_gflops

    def to_dict(self) -> dict[str, float]:
        return {"budget_gflops": self.budget_gflops, "spent_gflops": self.spent_gflops,
                "in_flight_gflops": self.in_flight_gflops, "remaining_gflops": self.remaining_gflops,
                "grid_gflops": self.grid_gflops, "spent_fraction": self.spent_fraction}


@dataclass(frozen=True)
class StudyResult:
    """The outcome; ``to_json()`` is what ``clipbudget study --format json`` prints."""

    recommended: dict[str, Any]
    predicted_top1: float
    ci_low: float
    ci_high: float
    ledger: Ledger
    trials: int
    runs: int
    rows: list[dict[str, Any]]
    rungs: tuple[float, ...]
    storage: str
    study_name: str
    finished: bool
    regret: float | None = None
    true_best: float | None = None
    true_recommended: float | None = None
    skipped: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        d = {"recommended": self.recommended, "predicted_top1": self.predicted_top1, "ci_low": self.ci_low,
             "ci_high": self.ci_high, "spent_gflops": self.ledger.spent_gflops,
             "spent_fraction": self.ledger.spent_fraction, "trials": self.trials,
             "runs": self.runs, "budget_gflops": self.ledger.budget_gflops, "grid_gflops": self.ledger.grid_gflops,
             "rungs_gflops": list(self.rungs), "storage": self.storage, "study_name": self.study_name,
             "finished": self.finished}
        if self.regret is not None:
            d.update(regret=self.regret, true_best=self.true_best, true_recommended=self.true_recommended)
        return d


def run_study(spec: StudySpec, *, sweep_dir: str | os.PathLike, executor: str = "simulate",
              storage: str | None = None, study_name: str | None = None, train_data: str | None = None,
              eval_data: str | None = None, executor_options: Mapping[str, Any] | None = None,
              poll_s: float = 5.0, on_event: Callable[[str, dict[str, Any]], None] | None = None) -> StudyResult:
    """Run (or resume) a study to its end and return the recommendation (see the module docstring).

    Args:
        spec: the study; must equal the stored one when resuming.
        sweep_dir: the study's folder (SQLite storage by default, batches of real runs).
        executor: ``simulate``, ``debug``, ``local`` or ``slurm``.
        storage: an Optuna storage URL (:mod:`planner.study.storage`); default ``sqlite:///SWEEP_DIR/study.db``.
        study_name: default: the sweep folder's name.
        train_data, eval_data: shards and evaluation set (real executors only).
        executor_options: real executors only (:class:`planner.study.executors.SweepRuns`): ``resources`` (a
            mapping written into each batch's grid: ``cpus_per_task``, ``mem_gb``, ``time_min``,
            ``gpus_per_node``, ...), ``overrides`` (a mapping of :class:`runners.executors.Resources` fields,
            passed to :func:`runners.sweep.submit` as ``resources=ResourceOverrides(**overrides)``, e.g.
            ``{"partition": "debug", "time_min": 30}``), ``array_parallelism``, ``device``, ``max_retries``.
        poll_s: seconds between looks at runs in flight.
        on_event: ``on_event(kind, info)`` after each step (``kind``: ``"step"``, ``"finished"``); for the
            CLI's ledger lines. Exceptions it raises stop the study (it can be resumed).
    """
    from planner.study import storage as st

    check_executor(executor)  # before the (slower) prepare
    if (executor == "simulate") != spec.simulate:
        raise ConfigError("spec.simulate must be True exactly when executor is 'simulate'")
    url = storage or st.default_url(sweep_dir)
    st.check_url(url)
    prep = prepare(spec)
    sweep_dir = Path(sweep_dir)
    runner = make_runner(prep, executor, sweep_dir, train_data=train_data, eval_data=eval_data,
                         executor_options=executor_options)
    name = study_name or sweep_dir.resolve().name
    from planner.study.pruner import ScalingLawPruner

    pruner = ScalingLawPruner(spec.target_gflops, eta=spec.eta, n_rungs=len(prep.rungs), study_law=prep.law)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    # a second driver of this study waits here (before touching the storage: Optuna's first use of an empty
    # database creates its tables, which two processes must not do at once), then finds it advanced or done
    with st.DriverLock(url, name):
        storage_obj = st.open_storage(url)
        study = st.open_study(storage_obj, name, spec.to_dict(), pruner=pruner, url=url)
        return _Loop(prep, study, storage_obj, runner, pruner, url, name, poll_s, on_event).run()


class _Loop:
    def __init__(self, prep: Prepared, study: Any, storage: Any, runner: Any, pruner: Any, url: str,
                 name: str, poll_s: float, on_event: Callable | None):
        self.prep, self.study, self.storage, self.runner = prep, study, storage, runner
        self.pruner, self.url, self.name = pruner, url, name
        self.poll_s, self.on_event = poll_s, on_event
        self.n_rungs = len(prep.rungs)
        self.steps = 0

    # -- reading the storage

    def views(self) -> list[TrialView]:
        import optuna

        from planner.study.pruner import trial_key

        out = []
        for t in self.study.get_trials(deepcopy=False):
            if not t.params and "config" not in t.user_attrs:
                if t.state == optuna.trial.TrialState.RUNNING:  # died inside ask(): no parameters yet
                    self.study.tell(t.number, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
                continue
            try:
                key = trial_key(t)
            except (KeyError, TypeError, ValueError):
                continue
            if key not in self.prep.costs:
                continue
            reports = {int(s): float(v) for s, v in t.intermediate_values.items() if 0 <= int(s) < self.n_rungs}
            runs = {int(k.split("_", 1)[1]): dict(v) for k, v in t.user_attrs.items() if k.startswith("run_")}
            out.append(TrialView(t._trial_id, t.number, key, t.state.name, reports, runs))
        return out

    def ledger(self, views: list[TrialView]) -> Ledger:
        spent = in_flight = 0.0
        for v in views:
            for k, a in v.runs.items():
                if k in v.reports or a.get("status") == "done":
                    spent += float(a["gflops"])
                elif a.get("status") != "failed" and v.state == "RUNNING":
                    in_flight += float(a["gflops"])
        return Ledger(self.prep.budget_gflops, spent, in_flight, self.prep.grid_gflops)

    def emit(self, kind: str, info: dict[str, Any]) -> None:
        log.info("study %s: %s %s", self.name, kind, info.get("ledger"))
        if self.on_event is not None:
            self.on_event(kind, info)

    # -- writing

    def _distributions(self) -> dict[str, Any]:
        from optuna.distributions import CategoricalDistribution

        keys = self.prep.keys
        return {"model": CategoricalDistribution(sorted({k[0] for k in keys})),
                "strategy": CategoricalDistribution(sorted({k[1] for k in keys})),
                "quality_fraction": CategoricalDistribution(sorted({k[2] for k in keys}))}

    def launch(self, promote: dict[Key, int], views: list[TrialView]) -> None:
        """Record and submit one batch of runs (configuration → rung index).

        A configuration without a trial gets one here, its first run recorded in the same write:
        :meth:`optuna.study.Study.add_trial` of a ``RUNNING`` trial whose parameters are the configuration
        (``study.ask()`` would re-read every running trial on each call, quadratic in the study's size).
        Order: the batch's grid is written, then the runs are recorded in the storage, then submitted; a
        study killed in between finds the recorded runs without jobs and submits them on resume.
        """
        import optuna

        by_key = {v.key: v for v in views}
        batch: list[tuple[RunRequest, Mapping[str, Any]]] = []
        for k, rung in sorted(promote.items(), key=lambda kv: law.key_str(kv[0])):
            v = by_key.get(k)
            row = self.prep.rows[k][rung]
            run_id, _ = self.runner.run_id(k, rung, row)
            attr = {"rung": rung, "rung_gflops": self.prep.rungs[rung], "run_id": run_id,
                    "gflops": float(row["total_gflops"]), "samples_seen": int(row["samples_seen"]),
                    "unique_samples": int(row["unique_samples"]), "status": "submitted", "result_path": None}
            batch.append((RunRequest(v.trial_id if v else -1, v.number if v else -1, k, rung, attr), row))
        if not batch:
            return
        batch_name = f"b{self.steps:03d}-" + hashlib.sha256(
            " ".join(r.attr["run_id"] for r, _ in batch).encode()).hexdigest()[:8]
        where = self.runner.submit(batch, batch_name)
        dists = None
        for r, _ in batch:
            attr = dict(r.attr, **where)
            if r.trial_id >= 0:
                self.storage.set_trial_user_attr(r.trial_id, RUN_ATTR.format(r.rung), attr)
                by_key[r.key].runs[r.rung] = attr
                continue
            views.append(TrialView(-1, -1, r.key, "RUNNING", {}, {r.rung: attr}))  # until the next read
            k = r.key
            target = self.prep.rows[k][-1]
            config = {"model": k[0], "strategy": k[1], "quality_fraction": k[2], "key": law.key_str(k),
                      "target_gflops": self.prep.rungs[-1], "target_samples_seen": int(target["samples_seen"]),
                      "target_unique_samples": int(target["unique_samples"]), "rung_gflops": list(self.prep.rungs)}
            dists = dists or self._distributions()
            self.study.add_trial(optuna.trial.create_trial(
                state=optuna.trial.TrialState.RUNNING, distributions=dists,
                params={"model": k[0], "strategy": k[1], "quality_fraction": k[2]},
                user_attrs={"config": config, RUN_ATTR.format(r.rung): attr}))
        if where and hasattr(self.runner, "launch"):
            self.runner.launch(where["sweep_dir"], where["grid"])

    def collect(self, views: list[TrialView]) -> tuple[int, int]:
        """Report finished runs; returns (newly finished, still in flight)."""
        import optuna

        pending = [RunRequest(v.trial_id, v.number, v.key, k, a) for v in views if v.state == "RUNNING"
                   for k, a in v.runs.items() if k not in v.reports and a.get("status") != "failed"]
        if not pending:
            return 0, 0
        outcomes = self.runner.poll(pending)
        by_id = {v.trial_id: v for v in views}
        done = 0
        for r in pending:
            o = outcomes.get(r.attr["run_id"])
            if o is None:
                continue
            done += 1
            if o.top1 is None or not (0.0 <= o.top1 <= 1.0):
                attr = dict(r.attr, status="failed", error=o.error or f"bad top-1 {o.top1!r}")
                self.storage.set_trial_user_attr(r.trial_id, RUN_ATTR.format(r.rung), attr)
                self.study.tell(r.number, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
                by_id[r.trial_id].state = "FAIL"
                log.warning("run %s of %s failed: %s", r.attr["run_id"], law.key_str(r.key), attr["error"])
                continue
            if o.result_path:
                self.storage.set_trial_user_attr(r.trial_id, RUN_ATTR.format(r.rung),
                                                 dict(r.attr, status="done", result_path=o.result_path))
            self.storage.set_trial_intermediate_value(r.trial_id, r.rung, float(o.top1))
            by_id[r.trial_id].reports[r.rung] = float(o.top1)
            if r.rung == len(self.prep.rungs) - 1:
                self.study.tell(r.number, values=float(o.top1), skip_if_finished=True)
                by_id[r.trial_id].state = "COMPLETE"
        return done, len(pending) - done

    # -- the loop

    def run(self) -> StudyResult:
        import optuna

        while True:
            views = self.views()
            have = {v.key for v in views if v.state in ("RUNNING", "COMPLETE", "PRUNED")}
            missing = {k: 0 for k in self.prep.keys if k not in have}
            if missing:  # the first rung: every configuration (budget checked by prepare)
                self.step(missing, views)
                continue
            done, in_flight = self.collect(views)  # updates ``views`` in place
            if in_flight:
                time.sleep(self.poll_s)
                continue
            alive = [v for v in views if v.state == "RUNNING"]
            if not alive:
                return self.finish(views)
            fresh = {v.key: 0 for v in alive if v.level < 0 and not v.runs}
            if fresh:  # trials without a first run (added by other code): run it
                self.step(fresh, views)
                continue
            post, obs = self.posterior(views)
            led = self.ledger(views)
            d = decide(post, level_of={v.key: v.level for v in views if v.level >= 0}, alive=[v.key for v in alive],
                       rung_costs=self.prep.costs, remaining_gflops=led.remaining_gflops)
            by_key = {v.key: v for v in views}
            # why: one study attribute per step (a write per pruned trial would double the writes)
            self.study.set_user_attr(f"step_{len(obs)}", {
                "observations": len(obs), "best_ci_low": d.best_lower_bound,
                "pruned": {law.key_str(k): float(post.ci_high[post.index(k)]) for k in d.prune},
                "promoted": {law.key_str(k): r for k, r in d.promote.items()}})
            for k in d.prune:
                self._end(by_key[k], optuna.trial.TrialState.PRUNED)
            if not d.promote:
                for v in alive:
                    if v.key not in d.prune:
                        self.storage.set_trial_user_attr(v.trial_id, "pruned_by", {"rule": "study budget spent"})
                        self._end(v, optuna.trial.TrialState.PRUNED)
                continue
            self.step(d.promote, views, pruned=len(d.prune), best_lower_bound=d.best_lower_bound)

    def step(self, promote: dict[Key, int], views: list[TrialView], *, pruned: int = 0, **info: Any) -> None:
        """Launch one batch (configuration → rung index), count the step and report it (``on_event("step")``)."""
        self.launch(promote, views)
        self.steps += 1
        self.emit("step", {"ledger": self.ledger(views), "rung": max(promote.values()), "launched": len(promote),
                           "pruned": pruned, **info})

    def _end(self, v: TrialView, state: Any) -> None:
        """Tell a running trial it ended (pruned: its last report is its value, as Optuna's ``tell`` does).

        One storage write, no re-read of the trial (``study.tell`` reads it twice first)."""
        value = v.reports.get(v.level)
        self.storage.set_trial_state_values(v.trial_id, state, None if value is None else [value])
        v.state = state.name

    def posterior(self, views: list[TrialView]) -> tuple[Any, list[Observation]]:
        obs = [Observation(v.key, float(self.prep.rungs[k]), top1) for v in views for k, top1 in sorted(v.reports.items())]
        keys = [v.key for v in views if v.reports]
        return self.pruner.law.posterior(obs, keys), obs

    def finish(self, views: list[TrialView]) -> StudyResult:
        from planner.study.storage import display_url as st_display_url

        post, obs = self.posterior(views)
        i = int(max(range(len(post.keys)), key=lambda j: (post.top1[j], -j)))
        key = post.keys[i]
        row = self.prep.rows[key][-1]
        by_key = {v.key: v for v in views}
        rows = []
        for j, k in enumerate(post.keys):
            v = by_key[k]
            rows.append({"model": k[0], "strategy": k[1], "quality_fraction": k[2], "state": v.state,
                         "rungs_run": len(v.reports), "last_rung_gflops": self.prep.rungs[v.level],
                         "last_top1": v.reports[v.level], "predicted_top1": float(post.top1[j]),
                         "ci_low": float(post.ci_low[j]), "ci_high": float(post.ci_high[j]),
                         "recommended": j == i})
        rows.sort(key=lambda r: -r["predicted_top1"])
        rec = {"model": key[0], "strategy": key[1], "quality_fraction": key[2],
               "samples_seen": int(row["samples_seen"]), "unique_samples": int(row["unique_samples"]),
               "total_gflops": float(row["total_gflops"]),
               "measured_top1_at_target": by_key[key].reports.get(len(self.prep.rungs) - 1)}
        result = StudyResult(recommended=rec, predicted_top1=float(post.top1[i]), ci_low=float(post.ci_low[i]),
                             ci_high=float(post.ci_high[i]), ledger=self.ledger(views), trials=len(views),
                             runs=len(obs), rows=rows, rungs=self.prep.rungs, storage=st_display_url(self.url), study_name=self.name,
                             finished=True, skipped=self.prep.skipped)
        truth = getattr(self.runner, "truth", None)
        if truth is not None:
            _, best = truth.best()
            result = StudyResult(**{**result.__dict__, "regret": truth.regret(key), "true_best": best,
                                    "true_recommended": truth.true_top1(key)})
        self.emit("finished", {"ledger": result.ledger, "result": result})
        return result
