"""Scaling laws for CLIP: forms, pure fitting with bootstrap intervals, prediction and plan ranking.

* :mod:`~planner.scaling.forms` — Cherti et al.'s power law and the saturating law in capacity and
  effective data (numpy); :mod:`~planner.scaling.terms` — the finding-based terms and their assumptions.
* :mod:`~planner.scaling.fit` — Huber/L-BFGS-B fitting, held-out form choice, sensitivity (scipy, lazily).
* :mod:`~planner.scaling.bootstrap` — vectorised bootstrap.
* :mod:`~planner.scaling.predict`, :mod:`~planner.scaling.rank` — predictions and ranking (numpy only).
* :mod:`~planner.scaling.validate` — fit low compute, predict high, against Cherti et al.'s law.

Nothing here imports torch; prediction imports neither scipy, pandas nor pyarrow.
"""
