"""Scaling laws for CLIP: forms, pure fitting with bootstrap intervals, prediction and plan ranking.

* :mod:`~planner.scaling.terms` — one record per term of the law (parameters with defaults, bounds, assumed
  ranges, citation, fittable or not, effect); :mod:`~planner.scaling.forms` — Cherti et al.'s power law and
  the saturating law (core + sum of the terms), both numpy.
* :mod:`~planner.scaling.fit` — Huber/L-BFGS-B fitting, held-out form choice, sensitivity, the model
  discrepancy (scipy, lazily); :mod:`~planner.scaling.bootstrap` — vectorised bootstrap that draws every
  stated assumption from its range in every draw.
* :mod:`~planner.scaling.predict` (``load_model``, ``ScalingModel.predict``/``assumptions``,
  ``predict_config``) and :mod:`~planner.scaling.rank` (``rank_plan`` → ``Ranking`` with intervals,
  ``p_best``, ``tied_with_best`` and the assumptions) — numpy only; their docstrings list every field.

The built-in prior and its validation live in :mod:`planner.prior` (built on this package; never imported
by it). Nothing here imports torch; prediction imports neither scipy, pandas nor pyarrow.
"""
