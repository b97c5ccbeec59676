"""Adaptive studies on Optuna: small runs first, refit the scaling law, promote what can still win.

* :mod:`~planner.study.law` — the one adapter to :mod:`planner.plan` and :mod:`planner.scaling`;
* :mod:`~planner.study.policy` — rungs, the refit (prior draws reweighted, Gaussian deviations), the rule;
* :mod:`~planner.study.pruner` — ``ScalingLawPruner``, the rule as an Optuna pruner for plain Optuna code;
* :mod:`~planner.study.simulate` — a seeded ground truth (``--executor simulate``) and regret;
* :mod:`~planner.study.storage` — storage URLs, opening/checking a study, one driver at a time;
* :mod:`~planner.study.driver` — ``run_study``: ask-and-tell over the storage, runs through an executor;
* :mod:`~planner.study.executors` — where runs go: ``simulate`` or a sweep per batch (``debug``/``local``/``slurm``);
* :mod:`~planner.study.demo` — ``clipbudget demo``.

Nothing here imports torch at module level (the real runs import it in their own processes).
"""
