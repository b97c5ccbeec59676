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
runs. The package imports neither torch nor pyarrow.

The reader runs in three steps, one module each: :mod:`.parse` (YAML → the grid's parts, with lines),
:mod:`.merge` (parts → one entry per run), :mod:`.validate` (entries → :class:`Grid`); :mod:`.write`
writes grids, :mod:`.paths` keeps relative paths relative to the grid's folder.

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

from runners.executors.resources import RESOURCE_FIELDS, Resources, check_resources_dict
from runners.gridfile.grid import GRID_VERSION, MAX_GRID_RUNS, TOP_LEVEL_KEYS, Grid, sweep_id_of
from runners.gridfile.load import grid_from_text, load_grid, load_run_config
from runners.gridfile.write import write_grid

__all__ = [
    "GRID_VERSION",
    "Grid",
    "MAX_GRID_RUNS",
    "RESOURCE_FIELDS",
    "Resources",
    "TOP_LEVEL_KEYS",
    "check_resources_dict",
    "grid_from_text",
    "load_grid",
    "load_run_config",
    "sweep_id_of",
    "write_grid",
]
