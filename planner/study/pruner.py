"""``ScalingLawPruner``: Optuna's pruner interface for the study's promotion rule.

Optuna's own pruners compare one trial's learning curve with other trials' curves at the same step. This
one knows that a configuration's accuracy *at a larger budget* can be predicted from the other runs through
a scaling law: each trial is one configuration (``model``, ``strategy``, ``quality_fraction`` as trial
parameters, or the same keys in the user attribute ``config``), and each ``trial.report(top1, step=k)``
records a run of that configuration at rung ``k``: ``TARGET / eta**(n_rungs - 1 - k)`` GFLOPs (paper
convention; or ``config["rung_gflops"][k]`` when the trial's ``config`` attribute lists its rungs). Steps are
rung indices because Optuna stores steps as 32-bit integers on MySQL, too small for compute. After every report the
law is refitted on all trials' reports (:class:`planner.study.policy.StudyLaw`), and the trial is pruned
when the upper bound of its predicted top-1 at the target is below the best lower bound of any trial.

Plain Optuna code can use it::

    pruner = ScalingLawPruner(1e11, eta=3, n_rungs=4)     # rungs 1e11/27, 1e11/9, 1e11/3, 1e11
    study = optuna.create_study(direction="maximize", pruner=pruner)

    def objective(trial):
        model = trial.suggest_categorical("model", ["ViT-S-16", "ViT-B-32", "ViT-B-16"])
        strategy = trial.suggest_categorical("strategy", ["clip", "flip"])
        q = trial.suggest_categorical("quality_fraction", [0.4, 1.0])
        for k, g in enumerate(pruner.rungs_gflops):
            top1 = train_and_evaluate(model, strategy, q, gflops=g)   # your runner
            trial.report(top1, step=k)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return top1

``clipbudget study`` drives the same rule with a compute budget (:func:`planner.study.policy.decide`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import optuna

from planner.study.law import Key, PlanOptions, key_of
from planner.study.policy import Observation, PolicyConfig, Posterior, StudyLaw, rung_gflops

#: Trial user attribute with the configuration (``model``, ``strategy``, ``quality_fraction``, ...).
CONFIG_ATTR = "config"
_STATES = (optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


def trial_key(trial: optuna.trial.FrozenTrial) -> Key:
    """The configuration a trial stands for (its ``config`` user attribute, else its parameters)."""
    cfg = trial.user_attrs.get(CONFIG_ATTR) or trial.params
    return key_of(cfg)


class ScalingLawPruner(optuna.pruners.BasePruner):
    """Prune a configuration whose upper bound at the target is below the best lower bound (module docstring).

    Args:
        target_gflops: the compute the configurations compete at (paper convention, GFLOPs).
        plan_options: how rows are enumerated at each reported compute (default: the plan's defaults).
        policy: the refit's settings (confidence level, deviation scales).
        eta, n_rungs: the rungs (step ``k`` is ``TARGET / eta**(n_rungs - 1 - k)`` GFLOPs).
        fit: a FIT.json to start from (default: the built-in prior).
        study_law: a :class:`StudyLaw` to share (its caches) instead of building one from the above.
    """

    def __init__(self, target_gflops: float, *, eta: float = 3.0, n_rungs: int = 5,
                 plan_options: PlanOptions | None = None, policy: PolicyConfig | None = None, fit: str | None = None,
                 study_law: StudyLaw | None = None):
        self.law = study_law or StudyLaw(target_gflops, plan_options or PlanOptions(), policy or PolicyConfig(), fit)
        self.rungs_gflops = tuple(rung_gflops(float(target_gflops), eta=eta, n_rungs=n_rungs))
        self._cache: tuple[Any, Posterior] | None = None

    @property
    def target_gflops(self) -> float:
        return self.law.target_gflops

    def observations(self, trials: Sequence[optuna.trial.FrozenTrial]) -> tuple[list[Observation], list[Key]]:
        """Every report of ``trials`` as an observation, and the configurations (each once, in trial order)."""
        obs: list[Observation] = []
        keys: dict[Key, None] = {}
        for t in trials:
            if t.state not in _STATES:
                continue
            k = trial_key(t)
            keys.setdefault(k, None)
            rungs = (t.user_attrs.get(CONFIG_ATTR) or {}).get("rung_gflops") or self.rungs_gflops
            for step, value in sorted(t.intermediate_values.items()):
                if value is not None and value == value and 0 <= step < len(rungs):
                    obs.append(Observation(k, float(rungs[step]), float(value)))
        return obs, list(keys)

    def posterior(self, trials: Sequence[optuna.trial.FrozenTrial]) -> Posterior:
        """The refit on all reports of ``trials`` (cached until a report or trial is added)."""
        obs, keys = self.observations(trials)
        sig = (tuple(keys), len(obs), tuple((o.key, o.gflops) for o in obs[-3:]))
        if self._cache is None or self._cache[0] != sig:
            self._cache = (sig, self.law.posterior(obs, keys))
        return self._cache[1]

    def prune(self, study: optuna.study.Study, trial: optuna.trial.FrozenTrial) -> bool:
        if not trial.intermediate_values:
            return False
        rungs = (trial.user_attrs.get(CONFIG_ATTR) or {}).get("rung_gflops") or self.rungs_gflops
        if max(trial.intermediate_values) >= len(rungs) - 1:  # at the target: nothing left to prune
            return False
        trials = study.get_trials(deepcopy=False, states=_STATES)
        if trial.number not in {t.number for t in trials}:
            trials = list(trials) + [trial]
        post = self.posterior(trials)
        observed = {o.key for o in self.observations(trials)[0]}
        best_lcb = max(post.ci_low[post.index(k)] for k in observed)
        return bool(post.ci_high[post.index(trial_key(trial))] < best_lcb)
