"""What one job asks of a back-end: :class:`Resources` (whole) and :class:`ResourceOverrides` (partial).

A grid gives each run a whole ``Resources`` (its ``resources:`` merged over the top-level ones, the rest
defaults); the command line's ``--time-min``, ``--mem-gb``, ... travel as one ``ResourceOverrides`` from
``clipbudget submit``/``resubmit`` to the back-end, applied with :meth:`Resources.override`. Both check
their values on construction with :func:`check_resources_dict` (every problem at once, one line).

Example:
    >>> r = Resources(gpus_per_node=2, time_min=30)
    >>> r.override(ResourceOverrides(time_min=10, partition="gpu")).to_dict()["time_min"]
    10
    >>> r.tasks_per_node, ResourceOverrides(mem_gb=8).to_dict()
    (2, {'mem_gb': 8})
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from budget.coerce import to_float, to_int
from budget.errors import ConfigError
from runners.config import suggest


@dataclass(frozen=True)
class Resources:
    """What one job of a run needs (per node), in submitit's / SLURM's units.

    ``gpus_per_node=0`` means a CPU job; multi-GPU jobs run one task per GPU. ``mem_gb`` is GiB of RAM
    per node (fractions allowed, as in submitit), ``time_min`` the wall-time limit in minutes.
    ``partition``, ``account``, ``qos`` and ``constraint`` pass through to SLURM (None: the cluster's
    default). ``gpu`` names the GPU model (a ``budget.hardware.GPUS`` key such as ``A100``) for planned
    GPU-hours; None means the sweep's default. Jobs of equal :attr:`job_shape` share one job array.
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
        _raise_problems(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, where: str = "") -> Resources:
        """Build from a mapping, reporting every problem (unknown keys with suggestions, bad values)."""
        return cls(**_raise_problems(d, where))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def override(self, partial: ResourceOverrides | None) -> Resources:
        """These resources with the fields ``partial`` sets replaced (the command line wins)."""
        return dataclasses.replace(self, **partial.to_dict()) if partial else self

    @property
    def job_shape(self) -> Resources:
        """What the scheduler sees: these resources without the ``gpu`` name (used for cost only)."""
        return dataclasses.replace(self, gpu=None)

    @property
    def tasks_per_node(self) -> int:
        """Processes per node: one per GPU, or one on CPU (the runner sets up torch.distributed)."""
        return max(1, self.gpus_per_node)

    @property
    def total_gpus(self) -> int:
        return self.gpus_per_node * self.nodes


RESOURCE_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Resources))


class ResourceOverrides:
    """A partial :class:`Resources`: the fields given on the command line (None: keep the grid's).

    Takes the field names of :class:`Resources` as keywords (a misspelt one raises, naming the valid
    ones); values are checked as :class:`Resources` checks them. Immutable; unset fields read as None.
    """

    __slots__ = ("_values",)

    def __init__(self, **fields: Any) -> None:
        values = _raise_problems({k: v for k, v in fields.items() if v is not None})
        object.__setattr__(self, "_values", MappingProxyType(values))

    def __getattr__(self, name: str) -> Any:
        if name in RESOURCE_FIELDS:
            return self._values.get(name)
        raise AttributeError(name)

    def __setattr__(self, name: str, value: Any) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")

    def to_dict(self) -> dict[str, Any]:
        """The fields that are set."""
        return dict(self._values)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> ResourceOverrides:
        return cls(**(d or {}))

    def merged(self, newer: ResourceOverrides | None) -> ResourceOverrides:
        """These overrides with ``newer``'s set fields on top."""
        return ResourceOverrides(**{**self._values, **newer.to_dict()}) if newer else self

    def __bool__(self) -> bool:
        return bool(self._values)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ResourceOverrides) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(tuple(sorted(self._values.items())))

    def __reduce__(self) -> tuple[Any, ...]:  # pickle/copy through the constructor
        return (ResourceOverrides.from_dict, (self.to_dict(),))

    def __repr__(self) -> str:
        return f"ResourceOverrides({', '.join(f'{k}={v!r}' for k, v in self._values.items())})"


_RESOURCE_MINIMUM = {"gpus_per_node": 0, "nodes": 1, "cpus_per_task": 1, "time_min": 1}


def _raise_problems(d: Mapping[str, Any], where: str = "") -> dict[str, Any]:
    values, problems = check_resources_dict(d)
    if problems:
        prefix = f"{where}: " if where else ""
        raise ConfigError("; ".join(prefix + msg for _, msg in problems))
    return values


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
            try:
                gib = to_float(value)
            except ValueError:
                gib = 0.0
            if gib <= 0:
                problems.append((key, f"resources mem_gb must be a positive number of GiB, got {value!r}"))
                continue
            value = int(gib) if gib.is_integer() else gib
        elif key in _RESOURCE_MINIMUM:
            try:
                value = to_int(value)
            except ValueError:
                problems.append((key, f"resources {key} must be a whole number, got {value!r}"))
                continue
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
                from budget.hardware import GPUS

                if value not in GPUS:
                    problems.append((key, f"unknown resources gpu {value!r}{suggest(value, GPUS)} "
                                     f"(valid: {', '.join(GPUS)})"))  # fmt: skip
                    continue
        values[key] = value
    return values, problems


__all__ = ["RESOURCE_FIELDS", "ResourceOverrides", "Resources", "check_resources_dict"]
