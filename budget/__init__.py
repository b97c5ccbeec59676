"""Pure compute accounting for CLIP training: model catalog, per-sample FLOPs, hardware, GPU-hours.

Imports nothing of clipbudget's other packages and never imports torch.

``__version__`` is clipbudget's version (the one of ``pyproject.toml``), kept here, at the bottom of the
import graph, so that every layer (runners record it in each result row) can read it without importing
the planner.
"""

__version__ = "0.1.0"
