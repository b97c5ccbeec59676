"""Step 2 of reading a grid: :class:`~.parse.Document` → one :class:`Entry` per run.

The grid's runs are the ``runs`` entries plus every combination of the ``axes`` (their union), each
merged over ``defaults`` (an entry's own keys win); a run entry's own ``resources`` are merged over the
top-level ones. Each value keeps the line it came from.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from runners.gridfile.parse import Document


@dataclass(frozen=True)
class Entry:
    """One run before validation: its merged fields and resources, the line of each, its own line."""

    fields: dict[str, Any]
    lines: dict[str, int]
    line: int
    resources: dict[str, Any]
    resource_lines: dict[str, int]


def merge(doc: Document) -> list[Entry]:
    """Every run of the document, ``runs`` first, then the axes' product in row-major order."""
    entries = [
        Entry({**doc.defaults, **item.fields}, {**doc.default_lines, **item.lines}, item.line,
              {**doc.resources, **item.resources}, {**doc.resource_lines, **item.resource_lines})  # fmt: skip
        for item in doc.runs
    ]
    axes = doc.axes
    if axes is not None:
        for combo in itertools.product(*(range(len(v)) for v in axes.values)):
            point = {k: axes.values[j][i] for j, (k, i) in enumerate(zip(axes.names, combo))}
            lines = {**doc.default_lines, **{k: axes.value_lines[j][i] for j, (k, i) in enumerate(zip(axes.names, combo))}}
            entries.append(Entry({**doc.defaults, **point}, lines, axes.line, dict(doc.resources),
                                 dict(doc.resource_lines)))  # fmt: skip
    return entries


__all__ = ["Entry", "merge"]
