"""Grid files: a YAML list of training runs (and/or axes whose product is taken) plus their resources.

A grid is what ``clipbudget plan --emit-grid`` writes, what ``clipbudget submit`` reads, and what a
person edits by hand::

    clipbudget_grid: 1
    sweep_name: my-study            # optional
    defaults: {train_data: shards/, eval_data: eval/, batch_size: 256}
    resources: {gpus_per_node: 1, nodes: 1, cpus_per_task: 8, mem_gb: 64, time_min: 240}
    runs:                            # a list of configs …
      - {model: ViT-B-32, strategy: clip, samples_seen: 1.36e9, quality_fraction: 0.4}
      - {model: RN50, strategy: clip, samples_seen: 1.36e9, resources: {time_min: 480}}
    axes:                            # … and/or axes: every combination, merged over defaults
      model: [ViT-S-16, ViT-B-32]
      quality_fraction: [0.4, 1.0]

The grid's runs are the ``runs`` entries plus every combination of the ``axes`` (their union), each
merged over ``defaults`` (an entry's own keys win). A run entry may carry its own ``resources``, merged
over the top-level ones. Relative paths (``train_data``, ``eval_data``, a model JSON) are relative to the
grid file's folder, so a grid means the same thing from any working directory. A top-level YAML list of
run mappings is accepted as a grid with only ``runs``. Numbers may be written ``1.36e9`` (YAML 1.2 style).

:func:`load_grid` validates everything before returning and reports every problem at once, each located
as ``FILE:LINE: message``. :func:`write_grid` writes a file that :func:`load_grid` reads back to the same
runs. This module imports neither torch nor pyarrow.

Example:
    >>> import tempfile, os
    >>> d = tempfile.mkdtemp(); path = os.path.join(d, "grid.yaml")
    >>> _ = open(path, "w").write('''
    ... clipbudget_grid: 1
    ... defaults: {train_data: /data/shards, eval_data: /data/eval, samples_seen: 1e6, model: ViT-B-32}
    ... axes:
    ...   strategy: [clip, flip]
    ...   seed: [0, 1]
    ... ''')
    >>> grid = load_grid(path, check_model=False)
    >>> len(grid), [c.strategy for c in grid.runs], len(grid.sweep_id)
    (4, ['clip', 'clip', 'flip', 'flip'], 12)
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import logging
import math
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from budget.errors import ConfigError
from results.atomic import write_atomic
from runners.config import FIELDS, RunConfig, check_config_dict, suggest

log = logging.getLogger(__name__)

GRID_VERSION = 1
TOP_LEVEL_KEYS: tuple[str, ...] = ("clipbudget_grid", "sweep_name", "defaults", "resources", "runs", "axes")
#: Refuse grids larger than this (an axes product gone wrong).
MAX_GRID_RUNS = 100_000
_PATH_FIELDS = ("train_data", "eval_data")
_URLISH = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")  # s3://…, pipe:…, demo:… — left as written


# ---------------------------------------------------------------------------------------------- YAML

# YAML 1.1 (PyYAML) reads 1e9 and 5e-4 as strings; grids use YAML 1.2 floats.
_FLOAT_RE = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?(?:[eE][-+]?[0-9]+)
        |[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+))$""",
    re.X,
)


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e9``/``5e-4`` as floats."""


class _Dumper(yaml.SafeDumper):
    """SafeDumper that quotes strings the loader would read as floats."""


for _cls in (_Loader, _Dumper):
    _cls.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_RE, list("-+0123456789."))


def _parse_yaml(text: str, name: str) -> tuple[Any, Any]:
    """(data, node) of a single-document YAML text; ConfigError located by line on a syntax error."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{name}{line}: invalid YAML: {problem}") from None
    finally:
        loader.dispose()
    return data, node


def _line(node: Any) -> int:
    return node.start_mark.line + 1


def _mapping_lines(node: Any, name: str, errors: list[str]) -> dict[str, tuple[int, Any]]:
    """key -> (line of the key, value node) of a mapping node; reports duplicate keys."""
    out: dict[str, tuple[int, Any]] = {}
    if not isinstance(node, yaml.MappingNode):
        return out
    for key_node, value_node in node.value:
        key = str(key_node.value)
        if key in out:
            errors.append(f"{name}:{_line(key_node)}: duplicate key {key!r} (first on line {out[key][0]})")
        out[key] = (_line(key_node), value_node)
    return out


def _sequence_lines(node: Any) -> list[tuple[int, Any]]:
    if not isinstance(node, yaml.SequenceNode):
        return []
    return [(_line(item), item) for item in node.value]


# ---------------------------------------------------------------------------------------------- resources


@dataclass(frozen=True)
class Resources:
    """What one job of a run needs (per node), in submitit's / SLURM's units.

    ``gpus_per_node=0`` means a CPU job; multi-GPU jobs run one task per GPU. ``mem_gb`` is GiB of RAM
    per node (fractions allowed, as in submitit), ``time_min`` the wall-time limit in minutes.
    ``partition``, ``account``, ``qos`` and ``constraint`` pass through to SLURM (None: the cluster's
    default). ``gpu`` names the GPU model (a ``budget.hardware.GPUS`` key such as ``A100``) for planned
    GPU-hours; None means the sweep's default.
    """

    gpus_per_node: int = 0
    nodes: int = 1
    cpus_per_task: int = 4
    mem_gb: float = 16
    time_min: int = 60
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    gpu: str | None = None

    def __post_init__(self) -> None:
        _, problems = check_resources_dict(dataclasses.asdict(self))
        if problems:
            raise ConfigError("; ".join(msg for _, msg in problems))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, where: str = "") -> Resources:
        """Build from a mapping, reporting every problem (unknown keys with suggestions, bad values)."""
        values, problems = check_resources_dict(d)
        if problems:
            prefix = f"{where}: " if where else ""
            raise ConfigError("; ".join(prefix + msg for _, msg in problems))
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def tasks_per_node(self) -> int:
        """Processes per node: one per GPU, or one on CPU."""
        return max(1, self.gpus_per_node)

    @property
    def total_gpus(self) -> int:
        return self.gpus_per_node * self.nodes


RESOURCE_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Resources))
_RESOURCE_MINIMUM = {"gpus_per_node": 0, "nodes": 1, "cpus_per_task": 1, "time_min": 1}


def check_resources_dict(d: Any) -> tuple[dict[str, Any], list[tuple[str | None, str]]]:
    """Coerce and check a resources mapping: ``(values, [(key, message), …])``."""
    if not isinstance(d, Mapping):
        return {}, [(None, f"resources must be a mapping, got {type(d).__name__}")]
    values: dict[str, Any] = {}
    problems: list[tuple[str | None, str]] = []
    for key, value in d.items():
        if key not in RESOURCE_FIELDS:
            problems.append((key, f"unknown resources key {str(key)!r}{suggest(str(key), RESOURCE_FIELDS)} "
                             f"(valid: {', '.join(RESOURCE_FIELDS)})"))  # fmt: skip
            continue
        if key == "mem_gb":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                problems.append((key, f"resources mem_gb must be a number > 0 (GiB), got {value!r}"))
                continue
            value = int(value) if float(value).is_integer() else float(value)
        elif key in _RESOURCE_MINIMUM:
            ok = not isinstance(value, bool) and (
                isinstance(value, int) or (isinstance(value, float) and math.isfinite(value) and value.is_integer())
            )
            if not ok:
                problems.append((key, f"resources {key} must be a whole number, got {value!r}"))
                continue
            value = int(value)
            if value < _RESOURCE_MINIMUM[key]:
                problems.append((key, f"resources {key} must be ≥ {_RESOURCE_MINIMUM[key]}, got {value}"))
                continue
        elif value is not None:
            if isinstance(value, (int, float)) and not isinstance(value, bool) and key == "partition":
                value = str(value)
            if not isinstance(value, str) or not value.strip():
                problems.append((key, f"resources {key} must be a non-empty string, got {value!r}"))
                continue
            if key == "gpu":
                known = _known_gpus()
                if known and value not in known:
                    problems.append((key, f"unknown resources gpu {value!r}{suggest(value, known)} "
                                     f"(valid: {', '.join(known)})"))  # fmt: skip
                    continue
        values[key] = value
    return values, problems


def _known_gpus() -> tuple[str, ...]:
    """GPU names of budget.hardware (empty if that module is unavailable)."""
    try:
        from budget.hardware import GPUS
    except ImportError:  # pragma: no cover - budget.hardware is part of the package
        return ()
    return tuple(GPUS)


# ---------------------------------------------------------------------------------------------- the grid


def sweep_id_of(run_ids: Sequence[str]) -> str:
    """12 hex chars: sha256 of the sorted run_ids, one per line (order of the grid does not matter)."""
    return hashlib.sha256("\n".join(sorted(run_ids)).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Grid:
    """A validated grid: ``runs[i]`` needs ``resources[i]``; ``lines[i]`` is where it comes from."""

    runs: tuple[RunConfig, ...]
    resources: tuple[Resources, ...]
    sweep_id: str
    path: str | None = None
    sweep_name: str | None = None
    lines: tuple[int, ...] = ()

    def __len__(self) -> int:
        return len(self.runs)

    def __iter__(self) -> Iterator[tuple[RunConfig, Resources]]:
        return iter(zip(self.runs, self.resources))

    @property
    def run_ids(self) -> tuple[str, ...]:
        return tuple(c.run_id for c in self.runs)

    def by_resources(self) -> dict[Resources, list[RunConfig]]:
        """Runs grouped by resource shape (one job array each), in grid order."""
        out: dict[Resources, list[RunConfig]] = {}
        for cfg, res in self:
            out.setdefault(res, []).append(cfg)
        return out

    @classmethod
    def from_configs(
        cls,
        configs: Sequence[RunConfig],
        resources: Resources | Sequence[Resources] | None = None,
        *,
        sweep_name: str | None = None,
        path: str | None = None,
    ) -> Grid:
        """A grid from configs in memory (duplicates and an empty list are ConfigErrors)."""
        configs = tuple(configs)
        if not configs:
            raise ConfigError("the grid has no runs")
        res = _per_run_resources(resources, len(configs))
        seen: dict[str, int] = {}
        for i, cfg in enumerate(configs):
            if cfg.run_id in seen:
                raise ConfigError(f"runs {seen[cfg.run_id] + 1} and {i + 1} are the same config (run_id {cfg.run_id})")
            seen[cfg.run_id] = i
        return cls(configs, res, sweep_id_of(list(seen)), path=path, sweep_name=sweep_name)


def _per_run_resources(resources: Resources | Sequence[Resources] | None, n: int) -> tuple[Resources, ...]:
    if resources is None:
        return (Resources(),) * n
    if isinstance(resources, Resources):
        return (resources,) * n
    if isinstance(resources, Mapping):
        return (Resources.from_dict(resources),) * n
    res = tuple(r if isinstance(r, Resources) else Resources.from_dict(r) for r in resources)
    if len(res) != n:
        raise ConfigError(f"got {len(res)} resources for {n} runs; give one, or one per run")
    return res


def _resolve_path(value: Any, base: str) -> Any:
    """A relative local path made absolute against ``base``; URLs and absolute paths unchanged."""
    if not isinstance(value, str) or not value.strip() or _URLISH.match(value):
        return value
    value = os.path.expanduser(value)
    if os.path.isabs(value):
        return value
    return os.path.normpath(os.path.join(base, value))


def _looks_like_model_path(value: Any) -> bool:
    return isinstance(value, str) and (value.endswith(".json") or "/" in value)


def _resolve_paths(cfg: dict[str, Any], base: str) -> dict[str, Any]:
    out = dict(cfg)
    for key in _PATH_FIELDS:
        if key in out:
            out[key] = _resolve_path(out[key], base)
    if _looks_like_model_path(out.get("model")):
        out["model"] = _resolve_path(out["model"], base)
    return out


def load_grid(path: str | os.PathLike[str], *, check_model: bool = True) -> Grid:
    """Read and validate a grid file; every problem at once in one ConfigError (``FILE:LINE: message``).

    Checks: YAML syntax, the ``clipbudget_grid: 1`` marker, unknown top-level keys, the types of
    ``defaults``/``resources``/``runs``/``axes``, every run config (see :meth:`RunConfig.from_dict`,
    including the model name unless ``check_model`` is False), every resources entry, duplicate runs
    (same run_id; both lines named) and an empty grid.
    """
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{name}: no such grid file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{name}: cannot read grid file: {getattr(exc, 'strerror', None) or exc}") from None
    base = os.path.dirname(os.path.abspath(name))
    return _grid_from_text(text, name, base, check_model=check_model)


def _grid_from_text(text: str, name: str, base: str, *, check_model: bool) -> Grid:
    data, node = _parse_yaml(text, name)
    errors: list[str] = []

    def err(line: int | None, msg: str) -> None:
        loc = f"{name}:{line}" if line else name
        text_ = f"{loc}: {msg}"
        if text_ not in errors:
            errors.append(text_)

    if data is None:
        raise ConfigError(f"{name}: the grid file is empty; see 'runners.grid' for the format")
    if isinstance(data, list):  # a bare list of runs
        data = {"clipbudget_grid": GRID_VERSION, "runs": data}
        top = {"runs": (_line(node), node)}
    elif isinstance(data, dict):
        top = _mapping_lines(node, name, errors)
    else:
        raise ConfigError(f"{name}:{_line(node)}: a grid must be a mapping (clipbudget_grid: 1, runs/axes, …), "
                          f"got {type(data).__name__}")  # fmt: skip

    for key in data:
        if key not in TOP_LEVEL_KEYS:
            err(top.get(str(key), (None,))[0], f"unknown top-level key {str(key)!r}{suggest(str(key), TOP_LEVEL_KEYS)} "
                f"(valid: {', '.join(TOP_LEVEL_KEYS)})")  # fmt: skip
    version = data.get("clipbudget_grid")
    if "clipbudget_grid" not in data:
        err(_line(node), "not a clipbudget grid: add 'clipbudget_grid: 1' at the top")
    elif version != GRID_VERSION:
        err(top["clipbudget_grid"][0], f"clipbudget_grid {version!r} is not a supported grid version (valid: 1)")
    sweep_name = data.get("sweep_name")
    if sweep_name is not None and not isinstance(sweep_name, str):
        err(top["sweep_name"][0], f"sweep_name must be a string, got {sweep_name!r}")
        sweep_name = None

    # defaults
    defaults: dict[str, Any] = {}
    default_lines: dict[str, int] = {}
    if data.get("defaults") is not None:
        d_line, d_node = top["defaults"]
        if not isinstance(data["defaults"], dict):
            err(d_line, f"defaults must be a mapping of run fields, got {type(data['defaults']).__name__}")
        else:
            defaults = dict(data["defaults"])
            default_lines = {k: ln for k, (ln, _) in _mapping_lines(d_node, name, errors).items()}
            if "resources" in defaults:
                err(default_lines.get("resources", d_line), "put resources at the top level, not under defaults")
                defaults.pop("resources")

    # resources
    base_resources: dict[str, Any] = {}
    resource_lines: dict[str, int] = {}
    if data.get("resources") is not None:
        r_line, r_node = top["resources"]
        if not isinstance(data["resources"], dict):
            err(r_line, f"resources must be a mapping, got {type(data['resources']).__name__}")
        else:
            base_resources = dict(data["resources"])
            resource_lines = {k: ln for k, (ln, _) in _mapping_lines(r_node, name, errors).items()}
            _, problems = check_resources_dict(base_resources)
            for key, msg in problems:
                err(resource_lines.get(str(key), r_line), msg)

    # entries: (merged raw config, key -> line, entry line, resources dict, resources key -> line)
    entries: list[tuple[dict[str, Any], dict[str, int], int, dict[str, Any], dict[str, int]]] = []
    if data.get("runs") is not None:
        runs_line, runs_node = top["runs"]
        if not isinstance(data["runs"], list):
            err(runs_line, f"runs must be a list of run mappings, got {type(data['runs']).__name__}")
        else:
            for (line, item_node), item in zip(_sequence_lines(runs_node), data["runs"]):
                if not isinstance(item, dict):
                    err(line, f"a run must be a mapping of field: value, got {item!r}")
                    continue
                item = dict(item)
                item_lines = {k: ln for k, (ln, _) in _mapping_lines(item_node, name, errors).items()}
                res = dict(base_resources)
                res_lines = dict(resource_lines)
                if "resources" in item:
                    own = item.pop("resources")
                    own_line = item_lines.pop("resources", line)
                    if not isinstance(own, dict):
                        err(own_line, f"a run's resources must be a mapping, got {own!r}")
                    else:
                        res.update(own)
                        res_lines.update({k: own_line for k in own})
                        own_node = dict(_mapping_lines(item_node, name, []))["resources"][1]
                        res_lines.update({k: ln for k, (ln, _) in _mapping_lines(own_node, name, []).items()})
                merged = {**defaults, **item}
                lines = {**default_lines, **item_lines}
                entries.append((merged, lines, line, res, res_lines))

    if data.get("axes") is not None:
        axes_line, axes_node = top["axes"]
        axes = data["axes"]
        if not isinstance(axes, dict):
            err(axes_line, f"axes must be a mapping of field: [values], got {type(axes).__name__}")
        else:
            axis_info = _mapping_lines(axes_node, name, errors)
            names, values, value_lines = [], [], []
            for key, vals in axes.items():
                k_line, v_node = axis_info.get(str(key), (axes_line, None))
                if key == "resources":
                    err(k_line, "resources cannot be an axis; give each run its own resources under runs")
                    continue
                if key not in FIELDS:
                    err(k_line, f"unknown axis {str(key)!r}{suggest(str(key), FIELDS)}")
                    continue
                if not isinstance(vals, list) or not vals:
                    err(k_line, f"axis {key!r} must be a non-empty list of values, got {vals!r}")
                    continue
                item_lines = [ln for ln, _ in _sequence_lines(v_node)] or [k_line] * len(vals)
                names.append(key)
                values.append(vals)
                value_lines.append(item_lines)
            n = math.prod(len(v) for v in values) if values else 0
            if n > MAX_GRID_RUNS:
                err(axes_line, f"axes give {n} runs, more than {MAX_GRID_RUNS}; split the grid")
            elif values and len(names) == len(axes):
                for combo in itertools.product(*(range(len(v)) for v in values)):
                    point = {k: values[j][i] for j, (k, i) in enumerate(zip(names, combo))}
                    lines = dict(default_lines)
                    lines.update({k: value_lines[j][i] for j, (k, i) in enumerate(zip(names, combo))})
                    merged = {**defaults, **point}
                    entries.append((merged, lines, axes_line, dict(base_resources), dict(resource_lines)))

    if not entries and not errors:
        err(_line(node), "the grid has no runs: add a 'runs:' list or 'axes:'")

    runs: list[RunConfig] = []
    run_resources: list[Resources] = []
    run_lines: list[int] = []
    first_line: dict[str, int] = {}
    for merged, lines, entry_line, res, res_lines in entries:
        values_, problems = check_config_dict(_resolve_paths(merged, base), check_model=check_model)
        for key, msg in problems:
            err(lines.get(str(key), entry_line) if key else entry_line, msg)
        rvalues, rproblems = check_resources_dict(res)
        for key, msg in rproblems:
            if key in base_resources and res.get(key) == base_resources[key]:
                continue  # reported once above
            err(res_lines.get(str(key), entry_line) if key else entry_line, msg)
        if problems or rproblems:
            continue
        try:
            cfg = RunConfig.from_dict(values_, check_model=False)  # model already checked above
        except ConfigError as exc:  # pragma: no cover - check_config_dict found nothing, so should not happen
            err(entry_line, str(exc))
            continue
        rid = cfg.run_id
        if rid in first_line:
            err(entry_line, f"duplicate run: same config (run_id {rid}) as line {first_line[rid]}; "
                "remove one or change a field such as seed")  # fmt: skip
            continue
        first_line[rid] = entry_line
        runs.append(cfg)
        run_resources.append(Resources(**rvalues))
        run_lines.append(entry_line)

    if errors:
        errors.sort(key=lambda e: _line_of(e, name))  # file order (stable within a line)
        exc = ConfigError(f"{len(errors)} problem{'s' if len(errors) > 1 else ''} in grid: " + "; ".join(errors)
                          if len(errors) > 1 else errors[0])  # fmt: skip
        exc.problems = errors  # type: ignore[attr-defined]
        raise exc
    return Grid(
        runs=tuple(runs),
        resources=tuple(run_resources),
        sweep_id=sweep_id_of(list(first_line)),
        path=os.path.abspath(name) if name else None,
        sweep_name=sweep_name,
        lines=tuple(run_lines),
    )


def _line_of(error: str, name: str) -> int:
    rest = error[len(name) + 1 :] if error.startswith(name + ":") else ""
    head = rest.split(":", 1)[0]
    return int(head) if head.isdigit() else 0


def load_run_config(path: str | os.PathLike[str], *, check_model: bool = True) -> RunConfig:
    """One run from a file: a mapping of RunConfig fields, or a grid with exactly one run.

    This is what ``clipbudget run CONFIG.yaml`` takes. Relative paths are relative to the file's folder;
    a ``resources`` key is validated and ignored (``run`` uses the machine it is on).
    """
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{name}: no such config file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{name}: cannot read config file: {getattr(exc, 'strerror', None) or exc}") from None
    base = os.path.dirname(os.path.abspath(name))
    data, node = _parse_yaml(text, name)
    is_grid = isinstance(data, dict) and any(k in data for k in ("clipbudget_grid", "runs", "axes"))
    if isinstance(data, list) or is_grid:
        grid = _grid_from_text(text, name, base, check_model=check_model)
        if len(grid) != 1:
            raise ConfigError(f"{name}: holds {len(grid)} runs; 'clipbudget run' takes one "
                              "(use 'clipbudget submit' for a grid)")  # fmt: skip
        return grid.runs[0]
    if not isinstance(data, dict):
        line = f":{_line(node)}" if node is not None else ""
        raise ConfigError(f"{name}{line}: a run config must be a mapping of field: value, "
                          f"got {type(data).__name__ if data is not None else 'an empty file'}")  # fmt: skip
    errors: list[str] = []
    lines = {k: ln for k, (ln, _) in _mapping_lines(node, name, errors).items()}
    data = dict(data)
    if "resources" in data:
        _, rproblems = check_resources_dict(data.pop("resources"))
        errors.extend(f"{name}:{lines.get('resources', 1)}: {msg}" for _, msg in rproblems)
    values, problems = check_config_dict(_resolve_paths(data, base), check_model=check_model)
    for key, msg in problems:
        errors.append(f"{name}:{lines.get(str(key), _line(node)) if key else _line(node)}: {msg}")
    if errors:
        exc = ConfigError("; ".join(errors))
        exc.problems = errors  # type: ignore[attr-defined]
        raise exc
    return RunConfig.from_dict(values, check_model=False)


# ---------------------------------------------------------------------------------------------- writing


def _implicit(key: str, cfg: RunConfig) -> Any:
    """The value ``key`` takes when a grid entry does not give it."""
    if key == "flip_mask_ratio":
        return 0.5 if cfg.strategy == "flip" else 0.0
    if key == "aug":
        return "stacked_randaug" if cfg.strategy == "clip_aug" else "none"
    return _FIELD_DEFAULTS.get(key, dataclasses.MISSING)


_FIELD_DEFAULTS: dict[str, Any] = {
    f.name: f.default for f in dataclasses.fields(RunConfig) if f.default is not dataclasses.MISSING
}


#: Fields written on every run line (so each line says what it trains), even when shared.
_ALWAYS_WRITTEN = ("model", "strategy", "samples_seen")


def _rel_path(value: Any, base: str) -> Any:
    """A relative path re-expressed against the grid's folder (what load_grid resolves it against).

    Paths inside the grid's folder are written relative to it (the folder can move); others absolute.
    """
    if not isinstance(value, str) or not value or _URLISH.match(value):
        return value
    if os.path.isabs(value):
        return value
    target = os.path.abspath(value)
    rel = os.path.relpath(target, base)
    return target if rel == ".." or rel.startswith(".." + os.sep) else rel


def _flow(d: Mapping[str, Any]) -> str:
    return yaml.dump(dict(d), Dumper=_Dumper, default_flow_style=True, sort_keys=False, width=1 << 30).strip()


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

    dicts = []
    for cfg in configs:
        d = cfg.to_dict()
        for key in _PATH_FIELDS:
            d[key] = _rel_path(d[key], base)
        if _looks_like_model_path(d["model"]):
            d["model"] = _rel_path(d["model"], base)
        dicts.append(d)
    if defaults is None:
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
        defaults = chosen
    else:
        defaults = dict(defaults)
        unknown = [k for k in defaults if k not in FIELDS]
        if unknown:
            raise ConfigError(f"unknown defaults key(s) {', '.join(map(repr, unknown))}{suggest(unknown[0], FIELDS)}")
        for key in _PATH_FIELDS:
            if key in defaults:
                defaults[key] = _rel_path(defaults[key], base)

    lines: list[str] = []
    if comments:
        for c in [comments] if isinstance(comments, str) else comments:
            lines.extend(f"# {x}".rstrip() for x in str(c).splitlines() or [""])
    lines.append(f"clipbudget_grid: {GRID_VERSION}")
    if sweep_name:
        lines.append(f"sweep_name: {_flow({'x': sweep_name})[4:-1]}")
    res_dict = {k: v for k, v in top_res.to_dict().items() if v is not None}
    lines.append(f"resources: {_flow(res_dict)}")
    if defaults:
        lines.append("defaults:")
        for key, value in defaults.items():
            lines.append(f"  {_flow({key: value})[1:-1]}")
    lines.append(f"runs:  # {len(configs)} run{'s' if len(configs) != 1 else ''}")
    top_dict = top_res.to_dict()
    for i, (cfg, d) in enumerate(zip(configs, dicts)):
        entry: dict[str, Any] = {}
        for key in FIELDS:
            baseline = defaults[key] if key in defaults else _implicit(key, cfg)
            if key in _ALWAYS_WRITTEN or d[key] != baseline or type(d[key]) is not type(baseline):
                entry[key] = d[key]
        if per_run[i] is not None:
            own = {k: v for k, v in per_run[i].to_dict().items() if v != top_dict[k]}
            if own:
                entry["resources"] = own
        line = f"  - {_flow(entry)}"
        if run_comments is not None and run_comments[i]:
            line += f"  # {' '.join(str(run_comments[i]).split())}"
        lines.append(line)
    text = "\n".join(lines) + "\n"

    return write_atomic(path, text)


# ---------------------------------------------------------------------------------------------- defaults


#: Small runs keep at least this many optimizer steps (see :func:`default_hyperparameters`).
MIN_STEPS = 200


def _is_tiny(model_name: str) -> bool:
    from budget.catalog import get_model

    try:
        return bool(get_model(model_name).tiny)
    except ConfigError:
        return False


def default_hyperparameters(model_name: str, samples_seen: int, *, n_gpus: int = 1) -> dict[str, Any]:
    """Batch size, peak lr, warm-up and weight decay for an AdamW run of ``samples_seen`` pairs.

    Sources and rules (counts are image-text pairs; steps are optimizer steps):

    * batch: the largest power of two ≤ min(32768, samples_seen // MIN_STEPS), at least 32 (and at most
      samples_seen), rounded down to a multiple of ``n_gpus``. Large runs approach the batches of the
      seed paper (16k; 32k for FLIP) and OpenCLIP/DataComp (32k-90k); small runs keep ≥ 200 optimizer
      steps (fewer barely move a contrastive model off its initialisation).
    * lr = 5e-4 × batch / 4096 (linear scaling), clipped to [1e-4, 1e-3]: OpenCLIP and DataComp use AdamW
      with lr 5e-4 to 1e-3 at batch 4k-90k; the seed paper used lr 1e-3 with Adafactor at batch 16k.
      The catalog's tiny CPU configs take 1e-3 at any batch (measured here: tiny-vit-s-28 on
      Fashion-MNIST reaches 0.78 zero-shot top-1 at lr 1e-3, batch 128, 40k samples).
    * weight_decay = 0.2 (OpenCLIP/DataComp AdamW; the seed paper's 1e-4 belongs to Adafactor).
    * warmup_steps = min(10000, 5 % of the steps) (OpenCLIP/DataComp warm up for 2k-10k steps).

    ``model_name`` is checked against the catalog (a ConfigError names the nearest models); beyond the
    tiny configs, the rules do not depend on the model's size.

    >>> default_hyperparameters("ViT-B-32", 1_360_000_000)
    {'batch_size': 32768, 'lr': 0.001, 'warmup_steps': 2075, 'weight_decay': 0.2}
    >>> default_hyperparameters("ViT-B-32", 10_000)
    {'batch_size': 32, 'lr': 0.0001, 'warmup_steps': 16, 'weight_decay': 0.2}
    >>> default_hyperparameters("tiny-vit-28", 400_000)
    {'batch_size': 1024, 'lr': 0.001, 'warmup_steps': 20, 'weight_decay': 0.2}
    """
    from runners.config import _model_problem, _to_int

    try:
        samples = _to_int(samples_seen)
    except ValueError:
        raise ConfigError(f"samples_seen must be a whole number, got {samples_seen!r}") from None
    if samples < 1:
        raise ConfigError(f"samples_seen must be ≥ 1, got {samples}")
    if isinstance(n_gpus, bool) or not isinstance(n_gpus, int) or n_gpus < 1:
        raise ConfigError(f"n_gpus must be a whole number ≥ 1, got {n_gpus!r}")
    problem = _model_problem(model_name) if model_name else "model name is empty"
    if problem:
        raise ConfigError(problem)
    cap = min(32768, samples // MIN_STEPS)
    batch = 1 << max(0, cap.bit_length() - 1) if cap >= 1 else 1
    batch = max(batch, 32)
    batch = min(batch, 1 << (samples.bit_length() - 1))  # never above the run itself
    if batch >= n_gpus:
        batch -= batch % n_gpus
    else:
        batch = n_gpus if n_gpus <= samples else batch
    lr = min(1e-3, max(1e-4, 5e-4 * batch / 4096))
    if _is_tiny(model_name):
        lr = 1e-3
    steps = -(-samples // batch)
    warmup = min(10000, round(0.05 * steps))
    return {"batch_size": batch, "lr": lr, "warmup_steps": warmup, "weight_decay": 0.2}


__all__ = [
    "GRID_VERSION",
    "Grid",
    "RESOURCE_FIELDS",
    "Resources",
    "check_resources_dict",
    "default_hyperparameters",
    "load_grid",
    "load_run_config",
    "sweep_id_of",
    "write_grid",
]
