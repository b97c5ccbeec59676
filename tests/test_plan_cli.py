"""``clipbudget plan``: the command users run first. In-process through ``planner.cli.main.main`` (capsys),
plus a few real subprocesses of the installed ``clipbudget`` script. Nothing is mocked.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from planner.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
BASE_KEYS = {"model", "strategy", "quality_fraction", "unique_samples", "samples_seen", "epochs",
             "gflops_per_sample", "total_gflops", "gpu_hours"}
RANK_KEYS = {"predicted_top1", "ci_low", "ci_high", "p_best", "recommended"}


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def plan_json(capsys, *argv: str) -> tuple[list[dict], str]:
    rc, out, err = run_cli(capsys, "plan", *argv, "--format", "json")
    assert rc == 0, err
    rows = json.loads(out)
    assert isinstance(rows, list)
    return rows, err


def test_json_is_a_plain_list_with_the_documented_keys(capsys):
    rows, err = plan_json(capsys, "--gflops", "1e10")
    assert len(rows) == 7 * 4 * 5 - 2 * 5  # 7 models x 4 strategies x 5 qualities, no FLIP for RN50/ConvNeXt
    for r in rows:
        assert BASE_KEYS <= set(r)
        assert r["total_gflops"] <= 1e10 * (1 + 1e-12)
    assert "Traceback" not in err


def test_csv_has_the_same_rows_and_columns(capsys):
    rows, _ = plan_json(capsys, "--gflops", "1e10", "--models", "ViT-B-32", "RN50")
    rc, out, _ = run_cli(capsys, "plan", "--gflops", "1e10", "--models", "ViT-B-32", "RN50", "--format", "csv")
    assert rc == 0
    table = list(csv.DictReader(io.StringIO(out)))
    assert len(table) == len(rows) == 2 * 4 * 5 - 5
    assert set(table[0]) == set(rows[0])
    assert [(t["model"], t["strategy"], float(t["quality_fraction"])) for t in table] == \
           [(r["model"], r["strategy"], r["quality_fraction"]) for r in rows]
    assert float(table[0]["samples_seen"]) == rows[0]["samples_seen"]


def test_table_header_states_every_convention_and_the_dropped_rows(capsys):
    rc, out, err = run_cli(capsys, "plan", "--gflops", "1e10")
    assert rc == 0, err
    for text in ("GFLOPs (paper convention", "1e+19 FLOPs", "5e+18 MACs", "Cherti", "training FLOPs",
                 "A100-hours", "FLOPs = 2 x MACs", "Fit:", "dropped 10 of 140", "flip needs a ViT image tower: 10",
                 "showing 20 of 130 rows"):
        assert text in out, text
    assert "* recommended" in out


def test_top_limits_table_rows_but_not_json(capsys):
    rc, out, _ = run_cli(capsys, "plan", "--gflops", "1e10", "--top", "3")
    assert rc == 0 and "showing 3 of 130 rows" in out
    body = [line for line in out.splitlines() if line.startswith("│")]
    assert len(body) == 3
    rows, _ = plan_json(capsys, "--gflops", "1e10", "--top", "3")
    assert len(rows) == 130


def test_huge_gflops_budget_warns_on_stderr_and_is_capped_by_the_pool(capsys):
    rows, err = plan_json(capsys, "--gflops", "1e19", "--models", "ViT-B-32", "--strategies", "clip")
    assert "DataComp" in err and "--flops 1e19" in err and "data pool" in err
    assert all(r["limited_by"] == "data" and r["epochs"] == pytest.approx(32) for r in rows)
    rc, out, _ = run_cli(capsys, "plan", "--gflops", "1e19", "--models", "ViT-B-32", "--strategies", "clip")
    assert rc == 0 and "warning: budget" in out and "unspent" in out


def test_a_budget_beyond_the_default_models_widens_the_candidates_and_says_so(capsys):
    """At 1e19 GFLOPs the compute-optimal model is larger than ViT-L-16, the largest default: the plan adds
    the larger catalog ViTs (H, g, bigG), recommends one of them and warns; at 1e10 it does not widen, and
    naming --models keeps the user's list."""
    rows, err = plan_json(capsys, "--gflops", "1e19", "--strategies", "clip")
    models = {r["model"] for r in rows}
    assert {"ViT-H-14", "ViT-g-14", "ViT-bigG-14"} <= models and "ViT-L-16" in models
    best = next(r for r in rows if r["recommended"])
    assert best["model"] in ("ViT-H-14", "ViT-g-14", "ViT-bigG-14"), best
    assert "widened" in err and "ViT-bigG-14" in err
    rows, err = plan_json(capsys, "--gflops", "1e10", "--strategies", "clip")
    assert "widened" not in err and not {r["model"] for r in rows} & {"ViT-H-14", "ViT-bigG-14"}
    rows, err = plan_json(capsys, "--gflops", "1e19", "--models", "ViT-L-16", "--strategies", "clip")
    assert {r["model"] for r in rows} == {"ViT-L-16"} and "widened" not in err


def test_flops_and_gpu_hours_budgets_match_gflops(capsys):
    a, _ = plan_json(capsys, "--gflops", "1e10", "--models", "RN50", "--strategies", "clip")
    b, _ = plan_json(capsys, "--flops", "1e19", "--models", "RN50", "--strategies", "clip")
    assert [r["samples_seen"] for r in a] == [r["samples_seen"] for r in b]
    c, _ = plan_json(capsys, "--gpu-hours", "100", "--gpu", "H100", "--mfu", "0.5", "--models", "RN50",
                     "--strategies", "clip")
    assert all(r["gpu_hours"] == pytest.approx(100, rel=1e-6) for r in c)


def test_grid_options_flow_into_the_rows(capsys):
    rows, _ = plan_json(capsys, "--gflops", "1e9", "--models", "ViT-B-16", "--strategies", "flip", "--flip-mask",
                        "0.75", "--quality", "0.5", "--pool-size", "400M", "--image-size", "256",
                        "--context-length", "16", "--max-epochs", "4")
    (r,) = rows
    assert (r["flip_mask_ratio"], r["image_size"], r["context_length"], r["quality_fraction"], r["pool_size"]) == \
           (0.75, 256, 16, 0.5, 400_000_000)


def test_emit_grid_writes_a_loadable_grid(capsys, tmp_path):
    from runners.gridfile import load_grid

    grid = tmp_path / "g" / "grid.yaml"
    rows, err = plan_json(capsys, "--gflops", "1e10", "--models", "ViT-B-32", "ViT-S-16", "--strategies", "clip",
                          "flip", "--top", "3", "--emit-grid", str(grid), "--data", str(tmp_path / "shards"),
                          "--eval", str(tmp_path / "eval"))
    assert "wrote 3 runs" in err
    loaded = load_grid(grid)
    assert len(loaded.runs) == 3
    for cfg, r in zip(loaded.runs, rows[:3]):
        assert (cfg.model, cfg.strategy, cfg.samples_seen, cfg.unique_samples, cfg.quality_fraction) == \
               (r["model"], r["strategy"], r["samples_seen"], r["unique_samples"], r["quality_fraction"])
        assert cfg.train_data == str(tmp_path / "shards")
        assert cfg.batch_size >= 32
    rc, _, err = run_cli(capsys, "plan", "--gflops", "1e10", "--emit-grid", str(tmp_path / "x.yaml"))
    assert rc == 2 and "--data" in err and not (tmp_path / "x.yaml").exists()


def test_ranked_rows_carry_predictions_and_one_recommendation(capsys, tmp_path):
    rows, _ = plan_json(capsys, "--gflops", "1e10")
    assert all(RANK_KEYS <= set(r) for r in rows)
    assert sum(bool(r["recommended"]) for r in rows) == 1
    for r in rows:
        assert 0 <= r["ci_low"] <= r["predicted_top1"] <= r["ci_high"] <= 1
    # --fit reaches the ranker: the prior's own file ranks exactly as the built-in default
    prior = ROOT / "planner" / "prior" / "prior_fit.json"
    if prior.is_file():
        again, _ = plan_json(capsys, "--gflops", "1e10", "--fit", str(prior))
        assert [(r["model"], r["strategy"], r["quality_fraction"]) for r in again] == \
               [(r["model"], r["strategy"], r["quality_fraction"]) for r in rows]
    rc, _, err = run_cli(capsys, "plan", "--gflops", "1e10", "--fit", str(tmp_path / "missing.json"))
    assert rc == 2 and len(err.strip().splitlines()) == 1
    broken = tmp_path / "broken-fit.json"
    broken.write_text("{not json")
    rc, _, err = run_cli(capsys, "plan", "--gflops", "1e10", "--fit", str(broken))
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err


BAD = [
    (["--gflops", "0"], "positive"),
    (["--gflops", "-1e10"], "positive"),
    (["--gflops", "nan"], "positive"),
    (["--gflops", "inf"], "positive"),
    (["--flops", "lots"], "not a number"),
    (["--gflops", "1e10", "--flops", "1e19"], "not allowed with"),
    ([], "required"),
    (["--gflops", "1e10", "--models", "ViT-B-33"], "did you mean ViT-B-32"),
    (["--gflops", "1e10", "--strategies", "slp"], "did you mean 'slip'"),
    (["--gpu-hours", "10", "--gpu", "A1000"], "A1000"),
    (["--gflops", "1e10", "--quality", "1.5"], r"(0, 1]"),
    (["--gflops", "1e10", "--quality", "0"], r"(0, 1]"),
    (["--gflops", "1e10", "--min-epochs", "40", "--max-epochs", "50"], "fewer epochs than --min-epochs"),
    (["--gflops", "1e10", "--models", "RN50", "--strategies", "flip"], "flip needs a ViT"),
    (["--gflops", "1e300"], "too large"),
    (["--gflops", "1e10", "--mfu", "0"], r"(0, 1]"),
    (["--gflops", "1e10", "--format", "xml"], "invalid choice"),
    (["--gflops", "1e10", "--fit", "/nonexistent/fit.json"], "does not exist"),
    (["--gflops", "1e10", "--pool-size", "3.5"], "whole number"),
]


@pytest.mark.parametrize("argv, needle", BAD, ids=[" ".join(a) or "no-budget" for a, _ in BAD])
def test_bad_input_exits_2_with_one_line(capsys, argv, needle):
    rc, out, err = run_cli(capsys, "plan", *argv)
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert needle in lines[0]
    assert "usage:" not in err and "Traceback" not in err and out == ""


@pytest.mark.parametrize("content", ["{not json", json.dumps({"embed_dim": 512}), "[]"])
def test_unreadable_custom_config_exits_2(capsys, tmp_path, content):
    path = tmp_path / "broken.json"
    path.write_text(content)
    rc, _, err = run_cli(capsys, "plan", "--gflops", "1e10", "--models", str(path))
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "broken.json" in err
    rc, _, err = run_cli(capsys, "plan", "--gflops", "1e10", "--models", str(tmp_path / "absent.json"))
    assert rc == 2 and "does not exist" in err


def _cli(*argv: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("clipbudget")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "planner.cli.main"]
    return subprocess.run([*cmd, *argv], capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "COLUMNS": "200"})


def test_installed_script_plans_and_fails_cleanly():
    ok = _cli("plan", "--gflops", "1e10", "--format", "json")
    assert ok.returncode == 0, ok.stderr
    assert len(json.loads(ok.stdout)) == 130
    bad = _cli("plan", "--gflops", "nan")
    assert bad.returncode == 2
    assert len(bad.stderr.strip().splitlines()) == 1 and "Traceback" not in bad.stderr
    both = _cli("plan", "--gflops", "1e10", "--gpu-hours", "5")
    assert both.returncode == 2 and len(both.stderr.strip().splitlines()) == 1


def test_ranking_contract_is_shown_in_every_format(capsys, monkeypatch, tmp_path):
    """The plan side of the rank_plan contract (docs/architecture.md), with a stand-in ranker.

    The stand-in replaces planner.scaling.rank so that this test pins what plan does with any Ranking
    (columns, order, the recommended mark, --fit pass-through) whether or not the real module is present;
    the real ranker is exercised by test_ranked_rows_carry_predictions_and_one_recommendation.
    """
    import types
    from dataclasses import dataclass, field

    calls = []

    @dataclass
    class Ranking:
        rows: list
        fit_name: str = "stand-in fit"
        warnings: list = field(default_factory=lambda: ["stand-in warning"])
        extrapolation: bool = True
        sources: list = field(default_factory=lambda: ["published:test"])

    def rank_plan(rows, fit=None, data_pool=None):
        calls.append((len(rows), fit))
        ranked = []
        for r in rows:  # bigger models predicted better, more samples better: any deterministic order will do
            p = min(0.9, 0.3 + r.params_m / 1000 + r.samples_seen / 1e11)
            ranked.append({**r.to_dict(), "predicted_top1": p, "ci_low": p - 0.02, "ci_high": p + 0.02,
                           "p_best": 0.0, "recommended": False})
        ranked.sort(key=lambda d: -d["predicted_top1"])
        ranked[0].update(p_best=0.7, recommended=True)
        return Ranking(rows=ranked)

    module = types.ModuleType("planner.scaling.rank")
    module.rank_plan = rank_plan
    monkeypatch.setitem(sys.modules, "planner.scaling.rank", module)

    fit = tmp_path / "fit.json"
    fit.write_text("{}")  # only passed through: the stand-in does not read it
    rows, err = plan_json(capsys, "--gflops", "1e10", "--models", "ViT-B-32", "ViT-L-16", "--fit", str(fit))
    assert calls == [(2 * 4 * 5, str(fit))]
    assert list(rows[0])[-5:] == ["predicted_top1", "ci_low", "ci_high", "p_best", "recommended"]
    assert rows[0]["recommended"] is True and sum(r["recommended"] for r in rows) == 1
    assert [r["predicted_top1"] for r in rows] == sorted((r["predicted_top1"] for r in rows), reverse=True)
    assert "stand-in warning" in err

    rc, out, _ = run_cli(capsys, "plan", "--gflops", "1e10", "--models", "ViT-B-32", "ViT-L-16", "--top", "4")
    assert rc == 0
    assert "Fit: stand-in fit; sources: published:test" in out and "extrapolation" in out
    assert "* recommended: row 1" in out and "top-1 (95% CI)" in out and "p_best" in out
    assert "stand-in warning" in out
    first = next(line for line in out.splitlines() if line.startswith("│"))
    assert "*1" in first and "ViT-L-16" in first and "70%" in first

    rc, out, _ = run_cli(capsys, "plan", "--gflops", "1e10", "--models", "RN50", "--format", "csv")
    header = out.splitlines()[0].split(",")
    assert rc == 0 and header[-5:] == ["predicted_top1", "ci_low", "ci_high", "p_best", "recommended"]
    assert out.splitlines()[1].endswith(",true")

    grid = tmp_path / "grid.yaml"
    plan_json(capsys, "--gflops", "1e10", "--models", "ViT-B-32", "--top", "2", "--emit-grid", str(grid),
              "--data", "shards", "--eval", "evalset")
    text = grid.read_text()
    assert text.count("predicted top-1") == 2


def test_a_budget_in_the_wrong_unit_that_buys_nothing_says_which_flag_was_meant(capsys):
    rc, _, err = run_cli(capsys, "plan", "--flops", "1e10", "--models", "ViT-B-32")
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert "less than one sample" in err and "did you mean --gflops 1e10?" in err


def test_every_subcommand_help_renders(capsys):
    from planner.cli.main import COMMANDS

    assert {"plan", "flops", "predict", "fit", "submit"} <= set(COMMANDS)
    for argv in [["--help"], *([c, "--help"] for c in COMMANDS)]:  # every listed module exists
        with pytest.raises(SystemExit) as info:
            main(argv)
        out, err = capsys.readouterr()
        assert info.value.code == 0, (argv, err)
        assert "usage: clipbudget" in out


def test_a_missing_subcommand_module_fails_loudly():
    # No "not built yet" fallback: a listed subcommand whose module is missing breaks the parser at once.
    from planner.cli.main import build_parser

    with pytest.raises(ModuleNotFoundError, match="planner.cli.no_such_verb"):
        build_parser(("plan", "no-such-verb"))
