"""Writing grid files: :func:`write_grid` writes a file that :func:`~runners.gridfile.load_grid` reads
back to the same runs (shared fields once under ``defaults:``, each run on one line)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from budget.errors import ConfigError
from results.atomic import write_atomic
from runners.config import FIELDS, RunConfig, suggest
from runners.executors.resources import Resources
from runners.gridfile.grid import GRID_VERSION, Grid
from runners.gridfile.paths import PATH_FIELDS, map_paths, rel_path
from runners.gridfile.yaml_lines import flow

_FIELD_DEFAULTS: dict[str, Any] = {
    f.name: f.default for f in dataclasses.fields(RunConfig) if f.default is not dataclasses.MISSING
}
#: Fields written on every run line (so each line says what it trains), even when shared.
_ALWAYS_WRITTEN = ("model", "strategy", "samples_seen")


def _implicit(key: str, cfg: RunConfig) -> Any:
    """The value ``key`` takes when a grid entry does not give it."""
    from budget.vocabulary import default_aug, default_flip_mask_ratio

    if key == "flip_mask_ratio":
        return default_flip_mask_ratio(cfg.strategy)
    if key == "aug":
        return default_aug(cfg.strategy)
    return _FIELD_DEFAULTS.get(key, dataclasses.MISSING)


def _shared_defaults(dicts: list[dict[str, Any]]) -> dict[str, Any]:
    """The fields every run shares (and that differ from RunConfig's defaults), to write once."""
    chosen: dict[str, Any] = {}
    for key in FIELDS:
        if key in ("flip_mask_ratio", "aug") or key in _ALWAYS_WRITTEN:
            continue  # implicit values depend on the strategy; identity stays on each run line
        vals = [d[key] for d in dicts]
        if all(v == vals[0] and type(v) is type(vals[0]) for v in vals) and (
            len(dicts) > 1 or key in ("train_data", "eval_data")
        ):
            if vals[0] != _FIELD_DEFAULTS.get(key, dataclasses.MISSING):
                chosen[key] = vals[0]
    return chosen


def _given_defaults(defaults: Mapping[str, Any], base: str) -> dict[str, Any]:
    out = dict(defaults)
    unknown = [k for k in out if k not in FIELDS]
    if unknown:
        raise ConfigError(f"unknown defaults key(s) {', '.join(map(repr, unknown))}{suggest(unknown[0], FIELDS)}")
    for key in PATH_FIELDS:
        if key in out:
            out[key] = rel_path(out[key], base)
    return out


def _run_line(cfg: RunConfig, d: dict[str, Any], defaults: dict[str, Any], own: dict[str, Any],
              comment: str | None) -> str:  # fmt: skip
    entry: dict[str, Any] = {}
    for key in FIELDS:
        baseline = defaults[key] if key in defaults else _implicit(key, cfg)
        if key in _ALWAYS_WRITTEN or d[key] != baseline or type(d[key]) is not type(baseline):
            entry[key] = d[key]
    if own:
        entry["resources"] = own
    line = f"  - {flow(entry)}"
    if comment:
        line += f"  # {' '.join(str(comment).split())}"
    return line


def write_grid(
    path: str | os.PathLike[str],
    configs: Sequence[RunConfig],
    defaults: Mapping[str, Any] | None = None,
    resources: Resources | Mapping[str, Any] | None = None,
    *,
    sweep_name: str | None = None,
    run_resources: Sequence[Resources | None] | None = None,
    comments: str | Sequence[str] | None = None,
    run_comments: Sequence[str | None] | None = None,
) -> Path:
    """Write ``configs`` as a grid file that :func:`load_grid` reads back to the same runs.

    Args:
        path: the file to write (its folder is created; the write is atomic: temp file + rename).
        configs: the runs, in order (duplicates are a ConfigError).
        defaults: fields written once under ``defaults:``; None chooses them (fields every run shares).
        resources: the top-level resources (None: :class:`Resources` defaults).
        sweep_name: optional name.
        run_resources: per-run resources overriding the top-level ones (None entries: the top level).
        comments: lines written as ``# …`` at the top of the file.
        run_comments: one trailing ``# …`` comment per run (e.g. the planner's predicted accuracy).

    Relative data paths in the configs (relative to the current folder) are written relative to the
    grid's folder, so they keep pointing at the same place.
    """
    configs = list(configs)
    path = Path(path)
    base = os.path.dirname(os.path.abspath(path))
    top_res = resources if isinstance(resources, Resources) else Resources.from_dict(resources or {})
    per_run = list(run_resources) if run_resources is not None else [None] * len(configs)
    if len(per_run) != len(configs):
        raise ConfigError(f"run_resources has {len(per_run)} entries for {len(configs)} configs")
    if run_comments is not None and len(run_comments) != len(configs):
        raise ConfigError(f"run_comments has {len(run_comments)} entries for {len(configs)} configs")
    Grid.from_configs(configs, [r or top_res for r in per_run])  # duplicates / empty → ConfigError

    dicts = [map_paths(cfg.to_dict(), base, rel_path) for cfg in configs]
    defaults = _shared_defaults(dicts) if defaults is None else _given_defaults(defaults, base)

    lines: list[str] = []
    if comments:
        for c in [comments] if isinstance(comments, str) else comments:
            lines.extend(f"# {x}".rstrip() for x in str(c).splitlines() or [""])
    lines.append(f"clipbudget_grid: {GRID_VERSION}")
    if sweep_name:
        lines.append(f"sweep_name: {flow({'x': sweep_name})[4:-1]}")
    top_dict = top_res.to_dict()
    lines.append(f"resources: {flow({k: v for k, v in top_dict.items() if v is not None})}")
    if defaults:
        lines.append("defaults:")
        lines.extend(f"  {flow({key: value})[1:-1]}" for key, value in defaults.items())
    lines.append(f"runs:  # {len(configs)} run{'s' if len(configs) != 1 else ''}")
    for i, (cfg, d) in enumerate(zip(configs, dicts)):
        own = {k: v for k, v in per_run[i].to_dict().items() if v != top_dict[k]} if per_run[i] is not None else {}
        lines.append(_run_line(cfg, d, defaults, own, run_comments[i] if run_comments is not None else None))
    return write_atomic(path, "\n".join(lines) + "\n")


__all__ = ["write_grid"]
