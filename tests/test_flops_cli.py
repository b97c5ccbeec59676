"""``clipbudget flops``: per-sample costs through the CLI (in-process, capsys), checked against
open_clip's ``docs/model_profile.csv`` numbers (../shared/reference/published-numbers.md §2) and budget.flops.
"""

from __future__ import annotations

import json

import pytest

from budget.catalog import list_models
from budget.flops import sample_cost
from planner.cli.main import main

KEYS = {"model", "image_size", "context_length", "strategy", "image_gflops", "text_gflops", "forward_gflops",
        "train_gflops", "params_m"}
# open_clip docs/model_profile.csv: total GFLOPs and params (M), image 224, text 77.
PROFILE = {"ViT-B-32": (14.78, 151.28), "RN50": (18.18, 102.01), "ViT-B-16": (41.09, 149.62),
           "convnext_tiny": (14.87, 92.3)}


def run_cli(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_json_keys_and_values_match_open_clips_profile(capsys):
    rc, out, err = run_cli(capsys, "flops", *PROFILE, "--format", "json")
    assert rc == 0, err
    records = json.loads(out)
    assert [r["model"] for r in records] == list(PROFILE)
    for r in records:
        assert KEYS <= set(r)
        gflops, params = PROFILE[r["model"]]
        assert r["forward_gflops"] == pytest.approx(gflops, rel=0.01)
        assert r["params_m"] == pytest.approx(params, rel=0.01)
        assert r["train_gflops"] == pytest.approx(3 * r["forward_gflops"])
        assert r["forward_gflops"] == pytest.approx(r["image_gflops"] + r["text_gflops"])
        assert (r["image_size"], r["context_length"], r["strategy"]) == (224, 77, "clip")


def test_strategy_and_sizes_are_passed_through(capsys):
    rc, out, _ = run_cli(capsys, "flops", "ViT-B-16", "--strategy", "flip", "--flip-mask", "0.75",
                         "--image-size", "256", "--context-length", "16", "--format", "json")
    assert rc == 0
    (r,) = json.loads(out)
    want = sample_cost("ViT-B-16", "flip", image_size=256, context_length=16, flip_mask_ratio=0.75)
    assert (r["strategy"], r["image_size"], r["context_length"], r["flip_mask_ratio"]) == ("flip", 256, 16, 0.75)
    assert r["forward_gflops"] == pytest.approx(want.forward_gflops)
    rc, out, _ = run_cli(capsys, "flops", "ViT-B-32", "--strategy", "slip", "--format", "json")
    (slip,) = json.loads(out)
    assert slip["extra_gflops"] > 2 * slip["image_gflops"] > 0  # two more views + the SSL head


def test_table_names_the_convention(capsys):
    rc, out, _ = run_cli(capsys, "flops", "ViT-B-32", "RN50")
    assert rc == 0
    assert "14.78" in out and "18.18" in out and "2 x MACs" in out


def test_list_covers_the_catalog(capsys):
    rc, out, _ = run_cli(capsys, "flops", "--list", "--format", "json")
    assert rc == 0
    records = json.loads(out)
    assert [r["model"] for r in records] == list_models()
    by_name = {r["model"]: r for r in records}
    assert by_name["ViT-Ti-16"]["family"] == "vit"
    assert by_name["RN50"]["family"] == "modified_resnet"
    assert by_name["convnext_tiny"]["family"] == "convnext"
    assert any(r["tiny"] for r in records)
    rc, out, _ = run_cli(capsys, "flops", "--list")
    assert rc == 0 and f"{len(records)} models" in out


@pytest.mark.parametrize("argv, needle", [
    (["ViT-B-33"], "did you mean ViT-B-32"),
    ([], "--list"),
    (["RN50", "--strategy", "flip"], "ViT"),
    (["ViT-B-32", "--strategy", "slp"], "valid: clip"),
    (["ViT-B-32", "--image-size", "100"], "patch size"),
    (["ViT-B-32", "--image-size", "0"], "whole number"),
    (["ViT-B-32", "--flip-mask", "1"], "[0, 1)"),
    (["/nonexistent/x.json"], "does not exist"),
])
def test_bad_input_exits_2_with_one_line(capsys, argv, needle):
    rc, out, err = run_cli(capsys, "flops", *argv)
    assert rc == 2
    assert len(err.strip().splitlines()) == 1 and needle in err, err
    assert "Traceback" not in err and out == ""
