"""Output helpers shared by the subcommands: numbers, argparse types, rich tables, JSON and CSV.

Everything here is light: ``rich`` is imported only when a table is drawn, so ``--format json`` and
``--format csv`` never pay for it. JSON output is a plain list of objects (NaN/inf become ``null``);
metadata and warnings go to stderr in the machine-readable formats so stdout stays parseable.

Example:
    >>> parse_number("3.4e9"), parse_number("400M"), parse_number("1.36B")
    (3400000000.0, 400000000.0, 1360000000.0)
    >>> human_count(1_360_000_000), sci(1e19), sci(14.78), sci(13217.5), sci(0.01234)
    ('1.36B', '1e19', '14.8', '13218', '0.0123')
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TextIO

FORMATS = ("table", "json", "csv")

_SUFFIXES = {"k": 1e3, "K": 1e3, "M": 1e6, "B": 1e9, "G": 1e9, "T": 1e12}


def parse_number(text: str | float) -> float:
    """A number as users type it: ``1e10``, ``3.4e9``, ``1_000``, ``400M``, ``1.36B``, ``2T``.

    Raises:
        ValueError: not a number.
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    s = str(text).strip()
    scale = 1.0
    if s and s[-1] in _SUFFIXES:
        scale = _SUFFIXES[s[-1]]
        s = s[:-1]
    return float(s) * scale


def positive_number(text: str) -> float:
    """argparse type: a finite number > 0 (one-line error otherwise)."""
    try:
        value = parse_number(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number (e.g. 1e10, 3.4e9, 400M)") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive, finite number")
    return value


def positive_int(text: str) -> int:
    """argparse type: a whole number ≥ 1 (``3.4e9`` is accepted)."""
    try:
        value = parse_number(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number (e.g. 224, 3.4e9)") from None
    if not math.isfinite(value) or value != int(value) or value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be a whole number ≥ 1")
    return int(value)


def fraction(text: str) -> float:
    """argparse type: a number in (0, 1]."""
    try:
        value = parse_number(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; give a fraction in (0, 1]") from None
    if not (math.isfinite(value) and 0.0 < value <= 1.0):
        raise argparse.ArgumentTypeError(f"{text!r} is outside (0, 1]")
    return value


def unit_interval(text: str) -> float:
    """argparse type: a number in [0, 1)."""
    try:
        value = parse_number(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; give a fraction in [0, 1)") from None
    if not (math.isfinite(value) and 0.0 <= value < 1.0):
        raise argparse.ArgumentTypeError(f"{text!r} is outside [0, 1)")
    return value


def sci(x: float | None, digits: int = 3) -> str:
    """Compact number: ``1e19``, ``1.36e9``, ``14.8``, ``0.0123``; ``-`` for None/NaN."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if x == 0:
        return "0"
    if not math.isfinite(x):
        return "inf" if x > 0 else "-inf"
    exp = math.floor(math.log10(abs(x)))
    if digits - 1 <= exp < 5:
        return str(round(x))
    if -3 <= exp < 5:
        return f"{x:.{digits}g}"
    mantissa = round(x / 10 ** exp, digits - 1)
    if abs(mantissa) >= 10:
        mantissa, exp = mantissa / 10, exp + 1
    return f"{mantissa:.{digits}g}e{exp}"


def human_count(n: float | None) -> str:
    """Counts with K/M/B/T suffixes: ``1.36B``, ``50M``, ``25.6K``, ``7``."""
    if n is None or (isinstance(n, float) and not math.isfinite(n)):
        return "-"
    for size, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= size:
            return f"{n / size:.3g}{suffix}"
    return f"{n:.3g}" if n != int(n) else str(int(n))


def pct(x: float | None, digits: int = 1) -> str:
    """``0.634`` → ``63.4%``; ``-`` for None/NaN."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{100 * x:.{digits}f}%"


def warn(message: str, stream: TextIO | None = None) -> None:
    """One warning line on stderr."""
    print(f"clipbudget: warning: {message}", file=stream or sys.stderr)


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _clean(value.item())
    return value


def write_json(records: Iterable[Mapping[str, Any]], stream: TextIO | None = None) -> None:
    """A JSON list of objects (NaN/inf → null), one object per line for readable diffs."""
    out = stream or sys.stdout
    items = [json.dumps(_clean(dict(r)), allow_nan=False) for r in records]
    out.write("[\n" + ",\n".join("  " + i for i in items) + ("\n]\n" if items else "]\n"))


def write_csv(records: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None,
              stream: TextIO | None = None) -> None:
    """CSV with a header row; ``columns`` default to the first record's keys (NaN → empty, lists → ``a;b``)."""
    out = stream or sys.stdout
    if columns is None:
        columns = list(records[0].keys()) if records else []
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for r in records:
        row = []
        for c in columns:
            v = _clean(r.get(c))
            if isinstance(v, list):
                v = ";".join(str(x) for x in v)
            row.append("" if v is None else ("true" if v is True else "false" if v is False else v))
        writer.writerow(row)


def console(stream: TextIO | None = None):
    """A rich Console on stdout (or ``stream``); wide when not a terminal so tables do not wrap."""
    from rich.console import Console

    out = stream or sys.stdout
    width = None
    if not (hasattr(out, "isatty") and out.isatty()):
        width = int(os.environ.get("COLUMNS", "0") or 0) or 180
    return Console(file=out, width=width, highlight=False, soft_wrap=False)


def render_table(
    columns: Sequence[tuple[str, str]],
    rows: Sequence[Sequence[str]],
    *,
    title: str | None = None,
    header_lines: Sequence[str] = (),
    footer_lines: Sequence[str] = (),
    highlight: int | None = None,
    stream: TextIO | None = None,
) -> None:
    """Draw a rich table: ``columns`` are ``(label, justify)``; ``highlight`` is a row index to bold.

    ``header_lines`` are printed above (e.g. the budget in every convention), ``footer_lines`` below
    (warnings, dropped rows). Text is printed literally (no rich markup parsing of user strings).
    """
    from rich.table import Table
    from rich.text import Text

    con = console(stream)
    for line in header_lines:
        con.print(Text(line))
    table = Table(title=title, show_lines=False, header_style="bold")
    for label, justify in columns:
        table.add_column(label, justify=justify, no_wrap=True)
    for i, row in enumerate(rows):
        table.add_row(*(Text(str(c)) for c in row), style="bold green" if i == highlight else None)
    con.print(table)
    for line in footer_lines:
        con.print(Text(line))


def assumption_lines(assumptions: Sequence[Mapping[str, Any]]) -> list[str]:
    """Stated assumptions as text, one term at a time: its parameters with values and drawn ranges on one line,
    then (indented) what the term says and where it comes from, once."""
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for a in assumptions:
        groups.setdefault((a.get("term"), a["statement"], a["citation"]), []).append(a)
    lines = []
    for (_term, statement, citation), items in groups.items():
        lines.append("  " + "; ".join(f"{a['name']} = {a['value']:.4g} in [{a['range'][0]:.4g}, {a['range'][1]:.4g}]"
                                      for a in items))
        lines.append(f"      {statement} ({citation})")
    return lines
