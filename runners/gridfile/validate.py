"""Step 3 of reading a grid: :class:`~.merge.Entry` list → :class:`~.grid.Grid`, or every problem at once.

Each run is checked as a whole (:func:`runners.config.check_config_dict`, including the model name unless
``check_model`` is False) with its resources (:func:`~runners.executors.resources.check_resources_dict`);
two entries with the same config (same run_id) are a problem naming both lines; so is an empty grid.
"""

from __future__ import annotations

import os

from budget.errors import ConfigError
from runners.config import RunConfig, check_config_dict
from runners.executors.resources import Resources, check_resources_dict
from runners.gridfile.grid import Grid, sweep_id_of
from runners.gridfile.merge import Entry
from runners.gridfile.parse import Document
from runners.gridfile.paths import map_paths, resolve_path
from runners.gridfile.yaml_lines import Problems


def validate(doc: Document, entries: list[Entry], problems: Problems, *, base: str, check_model: bool) -> Grid:
    """The grid of ``entries`` (paths resolved against ``base``); raise with all ``problems`` if any."""
    if not entries and not problems.items:
        problems.add(doc.line, "the grid has no runs: add a 'runs:' list or 'axes:'")
    runs: list[RunConfig] = []
    run_resources: list[Resources] = []
    run_lines: list[int] = []
    first_line: dict[str, int] = {}
    for e in entries:
        values, config_problems = check_config_dict(map_paths(e.fields, base, resolve_path), check_model=check_model)
        for key, msg in config_problems:
            problems.add(e.lines.get(str(key), e.line) if key else e.line, msg)
        rvalues, resource_problems = check_resources_dict(e.resources)
        for key, msg in resource_problems:
            if key in doc.resources and e.resources.get(key) == doc.resources[key]:
                continue  # reported once, by the parser
            problems.add(e.resource_lines.get(str(key), e.line) if key else e.line, msg)
        if config_problems or resource_problems:
            continue
        try:
            cfg = RunConfig.from_dict(values, check_model=False)  # model already checked above
        except ConfigError as exc:  # pragma: no cover - check_config_dict found nothing, so should not happen
            problems.add(e.line, str(exc))
            continue
        rid = cfg.run_id
        if rid in first_line:
            problems.add(e.line, f"duplicate run: same config (run_id {rid}) as line {first_line[rid]}; "
                         "remove one or change a field such as seed")  # fmt: skip
            continue
        first_line[rid] = e.line
        runs.append(cfg)
        run_resources.append(Resources(**rvalues))
        run_lines.append(e.line)
    problems.raise_any()
    name = problems.name
    return Grid(
        runs=tuple(runs),
        resources=tuple(run_resources),
        sweep_id=sweep_id_of(list(first_line)),
        path=os.path.abspath(name) if name else None,
        sweep_name=doc.sweep_name,
        lines=tuple(run_lines),
    )


__all__ = ["validate"]
