"""The adaptive study (planner/study): policy, pruner, simulation, Optuna storages, resume, CLI, bad input.

Real components: Optuna with a real SQLite file and a real journal file, the real prior and plan; runs are
simulated (``--executor simulate``: the ground truth of :mod:`planner.study.simulate`), since these tests
check the study, not training (the sweep executors have their own conformance suite).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest

from planner.cli.main import main
from planner.study.driver import StudySpec, prepare, run_study
from planner.study.law import PlanOptions
from planner.study.policy import Observation, PolicyConfig, Posterior, StudyLaw, decide
from planner.study.pruner import ScalingLawPruner
from planner.study.simulate import GroundTruth
from tests._study_fixtures import same_result

REPO = Path(__file__).resolve().parents[1]
TARGET = 1e10
#: 12 configurations: small enough for a few seconds per study, large enough to prune and promote.
OPTIONS = PlanOptions(models=("ViT-S-16", "ViT-B-32", "ViT-B-16"), strategies=("clip", "flip"),
                      quality_fractions=(0.4, 1.0))
PLAN_ARGS = ["--models", "ViT-S-16", "ViT-B-32", "ViT-B-16", "--strategies", "clip", "flip", "--quality", "0.4", "1.0"]
JSON_KEYS = {"recommended", "predicted_top1", "ci_low", "ci_high", "spent_gflops", "spent_fraction", "trials"}

optuna.logging.set_verbosity(optuna.logging.WARNING)


def spec(**kw) -> StudySpec:
    return StudySpec(TARGET, options=OPTIONS, simulate=True, **{"n_rungs": 4, "seed": 1, **kw})


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


# ------------------------------------------------------------------------------------------ policy


def test_refit_learns_from_runs_and_narrows_intervals():
    law = StudyLaw(TARGET, OPTIONS, PolicyConfig())
    keys = list(prepare(spec()).keys)
    g = TARGET / 27
    prior = law.posterior([], keys)
    # two configurations measured far apart at a small rung: the better one must be predicted better at the target
    a, b = keys[0], keys[1]
    obs = [Observation(a, g, 0.30), Observation(b, g, 0.10)]
    post = law.posterior(obs, keys)
    ia, ib = post.index(a), post.index(b)
    assert post.top1[ia] > post.top1[ib] + 0.02
    assert (post.sd_log_error[[ia, ib]] < prior.sd_log_error[[ia, ib]]).all()
    assert (post.ci_low <= post.top1).all() and (post.top1 <= post.ci_high).all()
    # a study-wide level shift (another evaluation set) moves every prediction, measured or not
    shifted = law.posterior([Observation(k, g, 0.05) for k in keys[:4]], keys)
    assert shifted.top1[-1] < post.top1[-1]


def _posterior(bounds: dict) -> Posterior:
    """A posterior with the given (ci_low, ci_high) top-1 bounds per key (z = 1.96)."""
    z = PolicyConfig().z
    lo = np.log(1 - np.asarray([b[0] for b in bounds.values()]))
    hi = np.log(1 - np.asarray([b[1] for b in bounds.values()]))
    return Posterior(tuple(bounds), (lo + hi) / 2, (lo - hi) / (2 * z), z, 3, 100.0)


def test_decide_rule_on_a_known_posterior():
    a, b, c, d = (("ViT-B-16", "flip", 0.4), ("ViT-B-16", "clip", 0.4), ("ViT-S-16", "clip", 1.0),
                  ("ViT-B-32", "clip", 0.4))
    post = _posterior({a: (0.600, 0.640), b: (0.550, 0.6005), c: (0.500, 0.5995), d: (0.58, 0.62)})
    costs = {k: (1.0, 3.0, 9.0) for k in (a, b, c, d)}
    levels = {k: 0 for k in (a, b, c, d)}
    dec = decide(post, level_of=levels, alive=[a, b, c, d], rung_costs=costs, remaining_gflops=100.0)
    assert dec.best_lower_bound == pytest.approx(0.600)
    assert dec.prune == (c,)  # 59.95 % < 60.0 %; b's 60.05 % can still win
    assert dec.promote == {a: 1, b: 1, d: 1}
    # room to carry two to the target (3 + 9 each): the two highest upper bounds, a then d
    dec = decide(post, level_of=levels, alive=[a, b, c, d], rung_costs=costs, remaining_gflops=24.0)
    assert dec.promote == {a: 1, d: 1} and dec.reserved_gflops == 24.0
    # no room to reach the target: one more rung for the best if it fits, else nothing
    assert decide(post, level_of=levels, alive=[a, b, c, d], rung_costs=costs, remaining_gflops=5.0).promote == {a: 1}
    assert decide(post, level_of=levels, alive=[a, b, c, d], rung_costs=costs, remaining_gflops=2.0).promote == {}
    # at the target nothing is promoted further
    top = {k: 2 for k in (a, b, c, d)}
    assert decide(post, level_of=top, alive=[a, b, d], rung_costs=costs, remaining_gflops=100.0).promote == {}


def test_decide_prunes_below_best_lower_bound_and_respects_the_budget():
    law = StudyLaw(TARGET, OPTIONS, PolicyConfig())
    prep = prepare(spec())
    keys = list(prep.keys)
    g = prep.rungs[0]
    truth = GroundTruth(TARGET, OPTIONS, prep.rungs[:-1], seed=3)
    obs = [Observation(k, g, truth.observe(k, g)) for k in keys]
    post = law.posterior(obs, keys)
    levels = {k: 0 for k in keys}
    d = decide(post, level_of=levels, alive=keys, rung_costs=prep.costs, remaining_gflops=1e30)
    best_lcb = post.ci_low.max()
    assert d.best_lower_bound == pytest.approx(best_lcb)
    assert set(d.prune) == {k for k in keys if post.ci_high[post.index(k)] < best_lcb}
    assert set(d.promote) == set(keys) - set(d.prune) and set(d.promote.values()) == {1}
    # with room for two configurations carried to the target, exactly the two highest upper bounds go on
    to_target = {k: sum(prep.costs[k][1:]) for k in keys}
    cands = sorted(d.promote, key=lambda k: -post.ci_high[post.index(k)])
    room = to_target[cands[0]] + to_target[cands[1]]
    d2 = decide(post, level_of=levels, alive=keys, rung_costs=prep.costs, remaining_gflops=room * 1.0001)
    assert set(d2.promote) <= set(cands[:3]) and cands[0] in d2.promote
    assert d2.reserved_gflops <= room * 1.0001


def test_ground_truth_is_seeded_and_regret_is_measured_against_the_best():
    prep = prepare(spec())
    t1 = GroundTruth(TARGET, OPTIONS, prep.rungs[:-1], seed=5)
    t2 = GroundTruth(TARGET, OPTIONS, prep.rungs[:-1], seed=5)
    t3 = GroundTruth(TARGET, OPTIONS, prep.rungs[:-1], seed=6)
    k = prep.keys[0]
    assert t1.observe(k, prep.rungs[0]) == t2.observe(k, prep.rungs[0])
    assert t1.true_top1(k) != t3.true_top1(k)
    best, top = t1.best()
    assert t1.regret(best) == 0 and all(t1.regret(x) >= 0 for x in prep.keys)
    assert top == max(t1.true_top1(x) for x in prep.keys)


# ------------------------------------------------------------------------------------------ pruner in plain Optuna


def test_pruner_works_in_plain_optuna_code():
    prep = prepare(spec())
    truth = GroundTruth(TARGET, OPTIONS, prep.rungs[:-1], seed=2)
    pruner = ScalingLawPruner(TARGET, eta=3, n_rungs=4, plan_options=OPTIONS)
    study = optuna.create_study(direction="maximize", pruner=pruner, sampler=optuna.samplers.BruteForceSampler(seed=0))

    def objective(trial):
        key = (trial.suggest_categorical("model", ["ViT-S-16", "ViT-B-32", "ViT-B-16"]),
               trial.suggest_categorical("strategy", ["clip", "flip"]),
               trial.suggest_categorical("quality_fraction", [0.4, 1.0]))
        for g in prep.rungs:
            top1 = truth.observe(key, g if g < prep.rungs[-1] else TARGET)
            trial.report(top1, step=prep.rungs.index(g))
            if trial.should_prune():
                raise optuna.TrialPruned()
        return top1

    study.optimize(objective, n_trials=len(prep.keys))
    states = [t.state for t in study.trials]
    assert len(states) == 12
    assert states.count(optuna.trial.TrialState.PRUNED) >= 3, states
    best_key, _ = truth.best()
    best_trial = next(t for t in study.trials if (t.params["model"], t.params["strategy"], t.params["quality_fraction"]) == best_key)
    assert best_trial.state != optuna.trial.TrialState.PRUNED or truth.regret(best_key) == 0


# ------------------------------------------------------------------------------------------ driver on real storages


@pytest.mark.parametrize("storage", ["sqlite", "journal"])
def test_study_runs_on_real_storage_and_records_trials(tmp_path, storage):
    url = None if storage == "sqlite" else f"journal:///{tmp_path / 'j' / 'study.log'}"
    events = []
    res = run_study(spec(), sweep_dir=tmp_path / "s", executor="simulate", storage=url,
                    on_event=lambda kind, info: events.append((kind, info["ledger"])))
    if storage == "sqlite":
        assert (tmp_path / "s" / "study.db").is_file()
    else:
        assert (tmp_path / "j" / "study.log").stat().st_size > 0
    j = res.to_json()
    assert JSON_KEYS | {"regret", "true_best"} <= set(j)
    assert set(j["recommended"]) >= {"model", "strategy", "quality_fraction", "samples_seen"}
    assert j["ci_low"] <= j["predicted_top1"] <= j["ci_high"]
    assert 0 <= j["regret"] <= 0.02 and j["trials"] == 12
    assert res.ledger.spent_gflops <= res.ledger.budget_gflops
    # the ledger at every step: spent never decreases; the last event is the end
    spent = [led.spent_gflops for _, led in events]
    assert spent == sorted(spent) and events[-1][0] == "finished" and len(events) >= 3
    # the storage holds the study: trial attributes carry run id, configuration, FLOPs
    st = optuna.load_study(study_name="s", storage=res.storage if storage == "sqlite" else
                           optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(url[10:])))
    trials = st.get_trials()
    assert len(trials) == 12 and all(t.state.is_finished() for t in trials)
    assert {t.state for t in trials} >= {optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.COMPLETE}
    for t in trials:
        run0 = t.user_attrs["run_0"]
        assert run0["run_id"].startswith("sim-") and run0["gflops"] > 0 and "result_path" in run0
        assert t.user_attrs["config"]["model"] == t.params["model"]
        assert sorted(t.intermediate_values) == list(range(len(t.intermediate_values)))  # steps are rungs
    completed = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert all(t.value == t.intermediate_values[len(res.rungs) - 1] for t in completed)
    assert all(t.user_attrs["config"]["rung_gflops"] == list(res.rungs) for t in trials)
    # running the same command again continues the finished study: nothing new
    again = run_study(spec(), sweep_dir=tmp_path / "s", executor="simulate", storage=url)
    assert same_result(again.to_json(), j)


def test_interrupted_study_resumes_without_rerunning(tmp_path, monkeypatch):
    calls = []
    observe = GroundTruth.observe
    monkeypatch.setattr(GroundTruth, "observe", lambda self, k, g: calls.append((k, g)) or observe(self, k, g))
    ref = run_study(spec(seed=4), sweep_dir=tmp_path / "ref", executor="simulate")
    ref_calls, calls[:] = list(calls), []

    class Stop(Exception):
        pass

    steps = []

    def stop_at_second_step(kind, info):
        steps.append(kind)
        if len(steps) == 2:
            raise Stop

    with pytest.raises(Stop):
        run_study(spec(seed=4), sweep_dir=tmp_path / "cut", executor="simulate", on_event=stop_at_second_step)
    mid = optuna.load_study(study_name="cut", storage=f"sqlite:///{tmp_path / 'cut' / 'study.db'}").get_trials()
    assert any(t.state == optuna.trial.TrialState.RUNNING for t in mid)
    res = run_study(spec(seed=4), sweep_dir=tmp_path / "cut", executor="simulate")
    a, b = ref.to_json(), res.to_json()
    for k in ("storage", "study_name"):
        a.pop(k), b.pop(k)
    assert same_result(a, b), (a, b)  # same runs, same spend, same recommendation: nothing lost
    assert sorted(calls) == sorted(ref_calls)  # and nothing run twice


def test_killed_cli_resumes(tmp_path):
    """SIGKILL the real CLI after its first ledger line; the same command finishes the same study."""
    args = [sys.executable, "-m", "planner.cli.main", "study", "--gflops", "1e11", "--executor", "simulate",
            "--seed", "2", "--format", "json"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    ref = subprocess.run(args + ["--sweep-dir", str(tmp_path / "ref")], capture_output=True, text=True, env=env,
                         timeout=300, check=True)
    proc = subprocess.Popen(args + ["--sweep-dir", str(tmp_path / "cut")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    line = proc.stderr.readline()
    assert "step" in line, line
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    db = f"sqlite:///{tmp_path / 'cut' / 'study.db'}"
    before = optuna.load_study(study_name="cut", storage=db).get_trials()
    assert before and not all(t.state.is_finished() for t in before)  # really killed mid-study
    again = subprocess.run(args + ["--sweep-dir", str(tmp_path / "cut")], capture_output=True, text=True, env=env,
                           timeout=300, check=True)
    a, b = json.loads(ref.stdout)[0], json.loads(again.stdout)[0]
    for k in ("storage", "study_name"):
        a.pop(k), b.pop(k)
    assert same_result(a, b), (a, b)
    after = optuna.load_study(study_name="cut", storage=db).get_trials()
    assert len(after) == len({(t.params["model"], t.params["strategy"], t.params["quality_fraction"]) for t in after})


# ------------------------------------------------------------------------------------------ CLI and bad input


def test_cli_json_and_table(tmp_path, capsys):
    rc, out, err = cli(capsys, "study", "--gflops", "1e10", *PLAN_ARGS, "--rungs", "4", "--sweep-dir",
                       str(tmp_path / "s"), "--executor", "simulate", "--format", "json")
    assert rc == 0, err
    (j,) = json.loads(out)
    assert JSON_KEYS | {"regret", "true_best"} <= set(j)
    assert err.count("clipbudget study: step") >= 2 and "remaining" in err  # the ledger at every step
    rc, out, err = cli(capsys, "study", "--gflops", "1e10", *PLAN_ARGS, "--rungs", "4", "--sweep-dir",
                       str(tmp_path / "s"), "--executor", "simulate")
    assert rc == 0 and "* recommended:" in out and "regret" in out and "of running the whole grid" in out


@pytest.mark.parametrize("extra, message", [
    (["--storage", "redis://localhost/0"], "unknown storage URL scheme 'redis'"),
    (["--min-rung-gflops", "2e10"], "smaller than the smallest rung"),
    (["--study-budget", "1e8"], "smaller than one rung"),
    (["--rungs", "40"], "smallest rung"),
])
def test_bad_input_is_one_line_exit_2_nothing_written(tmp_path, capsys, extra, message):
    rc, out, err = cli(capsys, "study", "--gflops", "1e10", *PLAN_ARGS, "--sweep-dir", str(tmp_path / "s"),
                       "--executor", "simulate", *extra)
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "s").exists()


def test_storage_holding_a_different_study_is_refused(tmp_path, capsys):
    base = ["study", *PLAN_ARGS, "--rungs", "4", "--sweep-dir", str(tmp_path / "s"), "--executor", "simulate"]
    assert cli(capsys, *base, "--gflops", "1e10")[0] == 0
    db = tmp_path / "s" / "study.db"
    stamp = db.stat().st_mtime_ns, len(optuna.load_study(study_name="s", storage=f"sqlite:///{db}").trials)
    rc, _, err = cli(capsys, *base, "--gflops", "2e10")
    assert rc == 2 and "holds a different study" in err and "target_gflops" in err
    assert len(err.strip().splitlines()) == 1
    assert len(optuna.load_study(study_name="s", storage=f"sqlite:///{db}").trials) == stamp[1]


def test_study_driver_imports_no_torch():
    code = "import sys, planner.study.driver, planner.cli.study; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.stdout.strip() == "False"
