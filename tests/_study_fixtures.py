"""Helpers of the study tests."""

from __future__ import annotations

import math
from typing import Any


def same_result(a: Any, b: Any, rel: float = 1e-9) -> bool:
    """Equal study outputs: floats to ``rel`` (a resumed refit may sum in another order), the rest exactly."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_result(a[k], b[k], rel) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same_result(x, y, rel) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, (int, float)) and not isinstance(b, bool):
        return math.isclose(a, b, rel_tol=rel, abs_tol=1e-12)
    return a == b
