"""The validated grid: its runs, the resources of each, and the sweep id that names them."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from budget.errors import ConfigError
from runners.config import RunConfig
from runners.executors.resources import Resources

GRID_VERSION = 1
TOP_LEVEL_KEYS: tuple[str, ...] = ("clipbudget_grid", "sweep_name", "defaults", "resources", "runs", "axes")
#: Refuse grids larger than this (an axes product gone wrong).
MAX_GRID_RUNS = 100_000


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


__all__ = ["GRID_VERSION", "Grid", "MAX_GRID_RUNS", "TOP_LEVEL_KEYS", "sweep_id_of"]
