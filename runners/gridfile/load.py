"""Reading grid files: :func:`load_grid` (parse → merge → validate) and :func:`load_run_config` (one run)."""

from __future__ import annotations

import os
from pathlib import Path

from budget.errors import ConfigError
from runners.config import RunConfig, check_config_dict
from runners.executors.resources import check_resources_dict
from runners.gridfile.grid import Grid
from runners.gridfile.merge import merge
from runners.gridfile.parse import parse
from runners.gridfile.paths import map_paths, resolve_path
from runners.gridfile.validate import validate
from runners.gridfile.yaml_lines import Problems, key_lines, line_of, parse_yaml


def _read(path: str | os.PathLike[str], what: str) -> tuple[str, str, str]:
    """(text, name, folder) of a grid or config file; ConfigError if it cannot be read."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{name}: no such {what} file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{name}: cannot read {what} file: {getattr(exc, 'strerror', None) or exc}") from None
    return text, name, os.path.dirname(os.path.abspath(name))


def grid_from_text(text: str, name: str, base: str, *, check_model: bool = True) -> Grid:
    """The grid in ``text`` (file ``name``, relative paths against folder ``base``): parse, merge, validate."""
    problems = Problems(name)
    doc = parse(text, problems)
    return validate(doc, merge(doc), problems, base=base, check_model=check_model)


def load_grid(path: str | os.PathLike[str], *, check_model: bool = True) -> Grid:
    """Read and validate a grid file; every problem at once in one ConfigError (``FILE:LINE: message``).

    Checks: YAML syntax, the ``clipbudget_grid: 1`` marker, unknown top-level keys, the types of
    ``defaults``/``resources``/``runs``/``axes``, every run config (see :meth:`RunConfig.from_dict`,
    including the model name unless ``check_model`` is False), every resources entry, duplicate runs
    (same run_id; both lines named) and an empty grid.
    """
    text, name, base = _read(path, "grid")
    return grid_from_text(text, name, base, check_model=check_model)


def load_run_config(path: str | os.PathLike[str], *, check_model: bool = True) -> RunConfig:
    """One run from a file: a mapping of RunConfig fields, or a grid with exactly one run.

    This is what ``clipbudget run CONFIG.yaml`` takes. Relative paths are relative to the file's folder;
    a ``resources`` key is validated and ignored (``run`` uses the machine it is on).
    """
    text, name, base = _read(path, "config")
    data, node = parse_yaml(text, name)
    is_grid = isinstance(data, dict) and any(k in data for k in ("clipbudget_grid", "runs", "axes"))
    if isinstance(data, list) or is_grid:
        grid = grid_from_text(text, name, base, check_model=check_model)
        if len(grid) != 1:
            raise ConfigError(f"{name}: holds {len(grid)} runs; 'clipbudget run' takes one "
                              "(use 'clipbudget submit' for a grid)")  # fmt: skip
        return grid.runs[0]
    if not isinstance(data, dict):
        line = f":{line_of(node)}" if node is not None else ""
        raise ConfigError(f"{name}{line}: a run config must be a mapping of field: value, "
                          f"got {type(data).__name__ if data is not None else 'an empty file'}")  # fmt: skip
    problems = Problems(name)
    lines = key_lines(node, problems)
    data = dict(data)
    if "resources" in data:
        for _, msg in check_resources_dict(data.pop("resources"))[1]:
            problems.add(lines.get("resources", 1), msg)
    values, config_problems = check_config_dict(map_paths(data, base, resolve_path), check_model=check_model)
    for key, msg in config_problems:
        problems.add(lines.get(str(key), line_of(node)) if key else line_of(node), msg)
    problems.raise_any(in_file_order=False)
    return RunConfig.from_dict(values, check_model=False)


__all__ = ["grid_from_text", "load_grid", "load_run_config"]
