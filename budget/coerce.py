"""Numbers as configs and tables spell them: the one place that turns ``"1.36e9"`` into ``1360000000``.

YAML reads ``1.36e9`` as a string (YAML 1.1 wants a dot *and* a signed exponent), CSV cells are strings,
parquet and numpy hand back ``numpy.int64``/``numpy.float64``. Every config and cost reader coerces through
:func:`to_int` and :func:`to_float`; both raise ``ValueError`` with a short reason (``"not a whole number"``)
that the caller puts into its own one-line :class:`budget.errors.ConfigError`, naming the field.

(``results/`` imports nothing of ours, so :mod:`results.schema` keeps a copy of these two readers;
``tests/test_layers.py`` checks that the copy agrees with this one.)

Example:
    >>> to_int("1.36e9"), to_int(5.0), to_int("1_000")
    (1360000000, 5, 1000)
    >>> to_float("5e-4"), to_float(3)
    (0.0005, 3.0)
    >>> to_int(2.5)
    Traceback (most recent call last):
    ...
    ValueError: not a whole number
"""

from __future__ import annotations

import decimal
import math
import numbers
from typing import Any


def to_int(value: Any) -> int:
    """Whole numbers as ``int``: ``5``, ``5.0``, ``"5"``, ``"1.36e9"``, ``"1_000"``, ``numpy.int64(5)``.

    Raises:
        ValueError: a boolean, a fraction, a non-finite value, text that is not a number, another type.
    """
    if isinstance(value, bool):
        raise ValueError("a boolean")
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        f = float(value)
        if math.isfinite(f) and f.is_integer():
            return int(f)
        raise ValueError("not a whole number")
    if isinstance(value, str):
        try:
            dec = decimal.Decimal(value.strip().replace("_", ""))
        except decimal.InvalidOperation:
            raise ValueError("not a number") from None
        if dec.is_finite() and dec == dec.to_integral_value():
            return int(dec)
        raise ValueError("not a whole number")
    raise ValueError(f"a {type(value).__name__}")


def to_float(value: Any, *, finite: bool = True) -> float:
    """Numbers as ``float``: ``5e-4``, ``"5e-4"``, ``"1_000"``, ``numpy.float32(0.5)``.

    ``finite=True`` (the default) rejects NaN and ±inf; ``finite=False`` lets NaN through (a missing value
    in a table) but still rejects ±inf.

    Raises:
        ValueError: a boolean, text that is not a number, another type, a value ``finite`` forbids.
    """
    if isinstance(value, bool):
        raise ValueError("a boolean")
    if isinstance(value, numbers.Real):
        out = float(value)
    elif isinstance(value, str):
        try:
            out = float(value.strip().replace("_", ""))
        except ValueError:
            raise ValueError("not a number") from None
    else:
        raise ValueError(f"a {type(value).__name__}")
    if math.isinf(out) or (finite and math.isnan(out)):
        raise ValueError("not finite")
    return out


__all__ = ["to_float", "to_int"]
