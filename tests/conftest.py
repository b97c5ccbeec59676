"""Shared pytest set-up.

Tests run real components (open_clip models training on real Fashion-MNIST images, a real SLURM, real
parquet stores). Fixtures specific to one area live in ``tests/_<area>_fixtures.py``.
"""

from __future__ import annotations

import os

# Two cores: keep each test process from oversubscribing them (DataLoader workers add their own).
os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("MKL_NUM_THREADS", "2")
# Nothing may reach the network at run time.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
