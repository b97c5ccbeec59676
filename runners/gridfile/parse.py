"""Step 1 of reading a grid: YAML text → :class:`Document`, the grid's parts with the line of each key.

Checks the structure only (the marker and version, top-level keys, the types of ``sweep_name``,
``defaults``, ``resources``, ``runs`` and ``axes``, the top-level resources, axis names); the runs
themselves are checked by :mod:`.validate` once :mod:`.merge` has put them together.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from budget.errors import ConfigError
from runners.config import FIELDS, suggest
from runners.executors.resources import check_resources_dict
from runners.gridfile.grid import GRID_VERSION, MAX_GRID_RUNS, TOP_LEVEL_KEYS
from runners.gridfile.yaml_lines import Problems, key_lines, line_of, mapping_lines, parse_yaml, sequence_lines


@dataclass(frozen=True)
class RunItem:
    """One entry of ``runs:``: its fields, the line of each, and its own ``resources:`` (if any)."""

    fields: dict[str, Any]
    lines: dict[str, int]
    line: int
    resources: dict[str, Any] = field(default_factory=dict)
    resource_lines: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Axes:
    """The ``axes:`` whose product is taken: ``values[j]`` of axis ``names[j]``, each at ``value_lines[j]``."""

    names: list[str]
    values: list[list[Any]]
    value_lines: list[list[int]]
    line: int


@dataclass
class Document:
    """A grid file's parts, with lines, before its runs are merged and validated."""

    line: int  #: of the document itself
    sweep_name: str | None = None
    defaults: dict[str, Any] = field(default_factory=dict)
    default_lines: dict[str, int] = field(default_factory=dict)
    resources: dict[str, Any] = field(default_factory=dict)
    resource_lines: dict[str, int] = field(default_factory=dict)
    runs: list[RunItem] = field(default_factory=list)
    axes: Axes | None = None


def parse(text: str, problems: Problems) -> Document:
    """The :class:`Document` of a grid's text; structural problems go to ``problems`` (in file order of
    discovery), a file that is no grid at all raises ConfigError at once."""
    name = problems.name
    data, node = parse_yaml(text, name)
    if data is None:
        raise ConfigError(f"{name}: the grid file is empty; see 'runners.gridfile' for the format")
    if isinstance(data, list):  # a bare list of runs
        data = {"clipbudget_grid": GRID_VERSION, "runs": data}
        top = {"runs": (line_of(node), node)}
    elif isinstance(data, dict):
        top = mapping_lines(node, problems)
    else:
        raise ConfigError(f"{name}:{line_of(node)}: a grid must be a mapping (clipbudget_grid: 1, runs/axes, …), "
                          f"got {type(data).__name__}")  # fmt: skip
    doc = Document(line=line_of(node))
    _parse_header(data, top, doc, problems)
    if data.get("defaults") is not None:
        _parse_defaults(data["defaults"], *top["defaults"], doc, problems)
    if data.get("resources") is not None:
        _parse_resources(data["resources"], *top["resources"], doc, problems)
    if data.get("runs") is not None:
        _parse_runs(data["runs"], *top["runs"], doc, problems)
    if data.get("axes") is not None:
        _parse_axes(data["axes"], *top["axes"], doc, problems)
    return doc


def _parse_header(data: dict[str, Any], top: dict[str, tuple[int, Any]], doc: Document, problems: Problems) -> None:
    for key in data:
        if key not in TOP_LEVEL_KEYS:
            problems.add(top.get(str(key), (None,))[0], f"unknown top-level key {str(key)!r}"
                         f"{suggest(str(key), TOP_LEVEL_KEYS)} (valid: {', '.join(TOP_LEVEL_KEYS)})")  # fmt: skip
    version = data.get("clipbudget_grid")
    if "clipbudget_grid" not in data:
        problems.add(doc.line, "not a clipbudget grid: add 'clipbudget_grid: 1' at the top")
    elif version != GRID_VERSION:
        problems.add(top["clipbudget_grid"][0], f"clipbudget_grid {version!r} is not a supported grid version (valid: 1)")
    sweep_name = data.get("sweep_name")
    if sweep_name is not None and not isinstance(sweep_name, str):
        problems.add(top["sweep_name"][0], f"sweep_name must be a string, got {sweep_name!r}")
        sweep_name = None
    doc.sweep_name = sweep_name


def _mapping_part(value: Any, line: int, node: Any, problems: Problems, what: str) -> tuple[dict, dict[str, int]]:
    """(the mapping, key -> line) of a top-level part that must be a mapping (empty if it is not)."""
    if not isinstance(value, dict):
        problems.add(line, f"{what}, got {type(value).__name__}")
        return {}, {}
    return dict(value), key_lines(node, problems)


def _parse_defaults(value: Any, line: int, node: Any, doc: Document, problems: Problems) -> None:
    doc.defaults, doc.default_lines = _mapping_part(value, line, node, problems, "defaults must be a mapping of run fields")
    if "resources" in doc.defaults:
        problems.add(doc.default_lines.get("resources", line), "put resources at the top level, not under defaults")
        doc.defaults.pop("resources")


def _parse_resources(value: Any, line: int, node: Any, doc: Document, problems: Problems) -> None:
    doc.resources, doc.resource_lines = _mapping_part(value, line, node, problems, "resources must be a mapping")
    for key, msg in check_resources_dict(doc.resources)[1]:
        problems.add(doc.resource_lines.get(str(key), line), msg)


def _parse_runs(value: Any, runs_line: int, runs_node: Any, doc: Document, problems: Problems) -> None:
    if not isinstance(value, list):
        problems.add(runs_line, f"runs must be a list of run mappings, got {type(value).__name__}")
        return
    for (line, item_node), item in zip(sequence_lines(runs_node), value):
        if not isinstance(item, dict):
            problems.add(line, f"a run must be a mapping of field: value, got {item!r}")
            continue
        item = dict(item)
        item_lines = key_lines(item_node, problems)
        own: dict[str, Any] = {}
        own_lines: dict[str, int] = {}
        if "resources" in item:
            given = item.pop("resources")
            own_line = item_lines.pop("resources", line)
            if not isinstance(given, dict):
                problems.add(own_line, f"a run's resources must be a mapping, got {given!r}")
            else:
                own = dict(given)
                own_node = mapping_lines(item_node)["resources"][1]
                own_lines = {**{k: own_line for k in own}, **key_lines(own_node)}
        doc.runs.append(RunItem(item, item_lines, line, own, own_lines))


def _parse_axes(axes: Any, axes_line: int, axes_node: Any, doc: Document, problems: Problems) -> None:
    if not isinstance(axes, dict):
        problems.add(axes_line, f"axes must be a mapping of field: [values], got {type(axes).__name__}")
        return
    axis_info = mapping_lines(axes_node, problems)
    names, values, value_lines = [], [], []
    for key, vals in axes.items():
        k_line, v_node = axis_info.get(str(key), (axes_line, None))
        if key == "resources":
            problems.add(k_line, "resources cannot be an axis; give each run its own resources under runs")
            continue
        if key not in FIELDS:
            problems.add(k_line, f"unknown axis {str(key)!r}{suggest(str(key), FIELDS)}")
            continue
        if not isinstance(vals, list) or not vals:
            problems.add(k_line, f"axis {key!r} must be a non-empty list of values, got {vals!r}")
            continue
        names.append(key)
        values.append(vals)
        value_lines.append([ln for ln, _ in sequence_lines(v_node)] or [k_line] * len(vals))
    n = math.prod(len(v) for v in values) if values else 0
    if n > MAX_GRID_RUNS:
        problems.add(axes_line, f"axes give {n} runs, more than {MAX_GRID_RUNS}; split the grid")
    elif values and len(names) == len(axes):
        doc.axes = Axes(names, values, value_lines, axes_line)


__all__ = ["Axes", "Document", "RunItem", "parse"]
