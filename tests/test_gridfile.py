"""Grid files (``runners.gridfile``): format, line-located errors (all at once), duplicates, axes, round trip."""

from __future__ import annotations

import doctest
import os
from pathlib import Path

import pytest

import runners.gridfile
from budget.errors import ConfigError
from runners.config import RunConfig
from runners.gridfile import (
    Grid,
    Resources,
    load_grid,
    load_run_config,
    sweep_id_of,
    write_grid,
)


def write(tmp_path: Path, text: str, name: str = "grid.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text.lstrip("\n"))
    return p


CONTRACT_EXAMPLE = """
clipbudget_grid: 1
sweep_name: my-study            # optional
defaults: {train_data: shards/, eval_data: eval/, batch_size: 256}
resources: {gpus_per_node: 1, nodes: 1, cpus_per_task: 8, mem_gb: 64, time_min: 240}
runs:                            # a list of configs …
  - {model: ViT-B-32, strategy: clip, samples_seen: 1.36e9, quality_fraction: 0.4}
axes:                            # … and/or axes whose product is taken (merged over defaults)
  model: [ViT-S-16, ViT-B-32]
  quality_fraction: [0.4, 1.0]
"""


def test_contract_example_loads(tmp_path):
    """The example of docs/architecture.md; axes need strategy and samples_seen, so defaults give them here."""
    text = CONTRACT_EXAMPLE.replace("batch_size: 256}", "batch_size: 256, strategy: clip, samples_seen: 1e8}")
    grid = load_grid(write(tmp_path, text))
    assert len(grid) == 5 and grid.sweep_name == "my-study"
    first = grid.runs[0]
    assert (first.model, first.samples_seen, first.quality_fraction) == ("ViT-B-32", 1_360_000_000, 0.4)
    assert first.train_data == str(tmp_path / "shards") and first.eval_data == str(tmp_path / "eval")
    assert [(c.model, c.quality_fraction) for c in grid.runs[1:]] == [
        ("ViT-S-16", 0.4), ("ViT-S-16", 1.0), ("ViT-B-32", 0.4), ("ViT-B-32", 1.0)]  # fmt: skip
    assert all(r == Resources(gpus_per_node=1, cpus_per_task=8, mem_gb=64, time_min=240) for r in grid.resources)
    assert grid.lines == (6, 7, 7, 7, 7)
    assert grid.sweep_id == sweep_id_of(list(reversed(grid.run_ids))) and len(grid.sweep_id) == 12
    assert len(grid.by_resources()) == 1


def test_axes_product_order_and_size(tmp_path):
    p = write(tmp_path, """
clipbudget_grid: 1
defaults: {train_data: /s, eval_data: /e, samples_seen: 100000}
axes:
  model: [ViT-S-16, ViT-B-32, RN50]
  strategy: [clip, flip]
  seed: [0, 1]
""")
    grid = load_grid(p)
    assert len(grid) == 12
    assert [(c.model, c.strategy, c.seed) for c in grid.runs[:3]] == [
        ("ViT-S-16", "clip", 0), ("ViT-S-16", "clip", 1), ("ViT-S-16", "flip", 0)]  # fmt: skip
    assert len(set(grid.run_ids)) == 12


def test_all_errors_at_once_each_located_by_line(tmp_path):
    p = write(tmp_path, """
clipbudget_grid: 1
sweeps: 3
defaults:
  train_data: /s
  eval_data: /e
  lr: -0.1
resources: {gpus_per_node: -1, mem_gbs: 8}
runs:
  - model: ViT-B-32
    strategy: clipp
    samples_seen: 1e6
  - {model: ViT-B-99, strategy: clip, samples_seen: 100}
  - just a string
  - model: RN50
    strategy: clip
    samples_seen: 1e6
    resources: {time_min: 0}
axes:
  quality_fraction: [0.5, 2.0]
""")
    with pytest.raises(ConfigError) as info:
        load_grid(p)
    problems = info.value.problems
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(f"{len(problems)} problems in grid: ")
    lines = [int(prob[len(str(p)) + 1 :].split(":")[0]) for prob in problems]
    assert lines == sorted(lines)  # in file order
    expected = [
        f"{p}:2: unknown top-level key 'sweeps' (did you mean 'sweep_name'?",
        f"{p}:7: resources gpus_per_node must be ≥ 0, got -1",
        f"{p}:7: unknown resources key 'mem_gbs' (did you mean 'mem_gb'?)",
        f"{p}:6: lr must be > 0, got -0.1",
        f"{p}:10: unknown strategy 'clipp' (did you mean 'clip'",
        f"{p}:12: unknown model 'ViT-B-99'",
        f"{p}:12: samples_seen 100 is below one batch (batch_size 256)",
        f"{p}:13: a run must be a mapping of field: value, got 'just a string'",
        f"{p}:17: resources time_min must be ≥ 1, got 0",
        f"{p}:18: missing required key 'model'",
        f"{p}:19: quality_fraction must be in (0, 1], got 2.0",
    ]
    for part in expected:
        assert any(prob.startswith(part) for prob in problems), (part, problems)
    # the lr problem of the defaults is reported once, not once per run
    assert sum("lr must be > 0" in prob for prob in problems) == 1


def test_duplicates_name_both_lines(tmp_path):
    p = write(tmp_path, """
clipbudget_grid: 1
defaults: {train_data: /s, eval_data: /e, strategy: clip, samples_seen: 1e6}
runs:
  - {model: RN50, workers: 8}
  - {model: RN50, seed: 1}
  - {model: RN50, eval_batch_size: 64}
""")
    with pytest.raises(ConfigError, match=rf"^{p}:6: duplicate run: same config \(run_id \w{{16}}\) as line 4"):
        load_grid(p)


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "the grid file is empty"),
        ("clipbudget_grid: 1\n", ":1: the grid has no runs: add a 'runs:' list or 'axes:'"),
        ("clipbudget_grid: 1\nruns: []\n", "the grid has no runs"),
        ("runs:\n  - {model: RN50}\n", ":1: not a clipbudget grid: add 'clipbudget_grid: 1'"),
        ("clipbudget_grid: 2\nruns: []\n", ":1: clipbudget_grid 2 is not a supported grid version"),
        ("clipbudget_grid: 1\nruns:\n  - {model: RN50\n", ":4: invalid YAML"),
        ("clipbudget_grid: 1\nclipbudget_grid: 1\n", ":2: duplicate key 'clipbudget_grid' (first on line 1)"),
        ("- 1\n- 2\n", ":1: a run must be a mapping"),
        ("42\n", ":1: a grid must be a mapping"),
        ("clipbudget_grid: 1\naxes: {model: RN50}\n", ":2: axis 'model' must be a non-empty list"),
        ("clipbudget_grid: 1\naxes: {modle: [RN50]}\n", ":2: unknown axis 'modle' (did you mean 'model'?)"),
        ("clipbudget_grid: 1\ndefaults: [1]\nruns: []\n", ":2: defaults must be a mapping"),
    ],
)
def test_structural_errors(tmp_path, text, message):
    p = write(tmp_path, text) if text else tmp_path / "grid.yaml"
    if not text:
        p.write_text("")
    with pytest.raises(ConfigError) as info:
        load_grid(p)
    assert message in str(info.value)
    assert str(info.value).startswith(str(p)) or "problems in grid" in str(info.value)


def test_missing_grid_file(tmp_path):
    with pytest.raises(ConfigError, match="no such grid file"):
        load_grid(tmp_path / "nope.yaml")


def test_bare_list_and_per_run_resources(tmp_path):
    p = write(tmp_path, """
- {model: RN50, strategy: clip, samples_seen: 1e6, train_data: /s, eval_data: /e}
- {model: RN50, strategy: slip, samples_seen: 1e6, train_data: /s, eval_data: /e}
""")
    grid = load_grid(p)
    assert [c.strategy for c in grid.runs] == ["clip", "slip"] and grid.resources == (Resources(),) * 2
    p = write(tmp_path, """
clipbudget_grid: 1
defaults: {train_data: /s, eval_data: /e, strategy: clip, samples_seen: 1e6}
resources: {gpus_per_node: 1, partition: gpu}
runs:
  - {model: RN50}
  - {model: ViT-B-32, resources: {gpus_per_node: 4, time_min: 600}}
""", "g2.yaml")  # fmt: skip
    grid = load_grid(p)
    assert grid.resources[0] == Resources(gpus_per_node=1, partition="gpu")
    assert grid.resources[1] == Resources(gpus_per_node=4, time_min=600, partition="gpu")
    assert grid.resources[1].tasks_per_node == 4 and grid.resources[1].total_gpus == 4
    assert [len(v) for v in grid.by_resources().values()] == [1, 1]


def test_write_grid_round_trip(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    configs = [
        RunConfig(model=m, strategy=s, samples_seen=n, train_data="data/shards", eval_data="sweeps/evalset",
                  quality_fraction=q, pool_size=10_000_000, lr=lr, data_pool="1e3")  # fmt: skip
        for m in ("ViT-B-32", "RN50")
        for s in ("clip", "flip", "clip_aug", "slip")
        for n, q, lr in ((1_000_000, 0.4, 5e-4), (2_000_000, 1.0, 1e-6))
    ]
    configs.append(configs[0].replace(strategy="flip", flip_mask_ratio=0.75, seed=3, aug="none"))
    res = Resources(gpus_per_node=2, mem_gb=32, partition="gpu")
    own = [None] * (len(configs) - 1) + [Resources(gpus_per_node=8, nodes=2)]
    out = write_grid(tmp_path / "sweeps" / "grid.yaml", configs, resources=res, sweep_name="rt",
                     run_resources=own, comments="written by a test\nsecond line",
                     run_comments=[f"#{i}" for i in range(len(configs))])  # fmt: skip
    text = out.read_text()
    assert text.startswith("# written by a test\n# second line\nclipbudget_grid: 1\nsweep_name: rt\n")
    assert f"train_data: {tmp_path}/data/shards\n" in text  # outside the grid's folder: absolute
    assert "eval_data: evalset\n" in text  # inside it: relative to the grid's folder
    grid = load_grid(out)
    expected = [
        c.replace(train_data=str(tmp_path / "data" / "shards"), eval_data=str(tmp_path / "sweeps" / "evalset"))
        for c in configs
    ]
    assert list(grid.runs) == expected
    assert grid.resources[:-1] == (res,) * (len(configs) - 1)
    assert grid.resources[-1] == own[-1]  # a run's own Resources is whole, not merged
    assert grid.sweep_name == "rt"
    # a second round trip is the identity, wherever the process runs
    monkeypatch.chdir("/")
    again = write_grid(tmp_path / "copy.yaml", grid.runs, resources=res, run_resources=list(grid.resources))
    assert load_grid(again).runs == grid.runs and load_grid(again).resources == grid.resources
    assert load_grid(again).sweep_id == grid.sweep_id


def test_write_grid_with_explicit_defaults_and_errors(tmp_path):
    a = RunConfig(model="RN50", strategy="clip", samples_seen=10_000, train_data="/s", eval_data="/e")
    b = a.replace(strategy="flip")
    p = write_grid(tmp_path / "g.yaml", [a, b], defaults={"flip_mask_ratio": 0.5, "train_data": "/s"})
    assert load_grid(p).runs == (a, b)
    with pytest.raises(ConfigError, match="same config"):
        write_grid(tmp_path / "dup.yaml", [a, a.replace(workers=9)])
    with pytest.raises(ConfigError, match="no runs"):
        write_grid(tmp_path / "empty.yaml", [])
    with pytest.raises(ConfigError, match="unknown defaults key"):
        write_grid(tmp_path / "bad.yaml", [a], defaults={"lrr": 1})
    assert not (tmp_path / "dup.yaml").exists() and not (tmp_path / "empty.yaml").exists()


def test_load_run_config_mapping_and_one_run_grid(tmp_path):
    p = write(tmp_path, "model: RN50\nstrategy: clip_aug\nsamples_seen: 2e4\ntrain_data: s\neval_data: e\n"
              "resources: {gpus_per_node: 1}\n", "run.yaml")  # fmt: skip
    c = load_run_config(p)
    assert (c.aug, c.samples_seen, c.train_data) == ("stacked_randaug", 20_000, str(tmp_path / "s"))
    one = write_grid(tmp_path / "one.yaml", [c])
    assert load_run_config(one) == c
    two = write_grid(tmp_path / "two.yaml", [c, c.replace(seed=1)])
    with pytest.raises(ConfigError, match="holds 2 runs; 'clipbudget run' takes one"):
        load_run_config(two)
    bad = write(tmp_path, "model: RN50\nstrategy: clip\nsamples_seen: 10\nbatch_size: 64\ntrain_data: s\n", "bad.yaml")
    with pytest.raises(ConfigError) as info:
        load_run_config(bad)
    assert info.value.problems == [
        f"{bad}:1: missing required key 'eval_data'",
        f"{bad}:3: samples_seen 10 is below one batch (batch_size 64)",
    ]
    with pytest.raises(ConfigError, match="no such config file"):
        load_run_config(tmp_path / "nope.yaml")


def test_urls_and_absolute_paths_are_kept(tmp_path):
    p = write(tmp_path, """
clipbudget_grid: 1
runs:
  - {model: RN50, strategy: clip, samples_seen: 1e6, train_data: "pipe:cat /x/{0..9}.tar", eval_data: ~/eval}
""")
    c = load_grid(p).runs[0]
    assert c.train_data == "pipe:cat /x/{0..9}.tar" and c.eval_data == os.path.expanduser("~/eval")


def test_grid_from_configs():
    a = RunConfig(model="RN50", strategy="clip", samples_seen=10_000, train_data="/s", eval_data="/e")
    g = Grid.from_configs([a, a.replace(seed=1)], Resources(gpus_per_node=1))
    assert len(g) == 2 and g.sweep_id == sweep_id_of([c.run_id for c in g.runs])
    with pytest.raises(ConfigError, match="got 1 resources for 2 runs"):
        Grid.from_configs([a, a.replace(seed=1)], [Resources()])


def test_docstring_examples_run():
    result = doctest.testmod(runners.gridfile)
    assert result.attempted >= 4 and result.failed == 0
