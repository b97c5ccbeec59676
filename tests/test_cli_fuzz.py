"""Property-based: random argument lists thrown at ``clipbudget plan`` and ``clipbudget flops`` (in-process)
never raise and never print a traceback; the exit code is 0 (a plan/cost was printed) or 2 (one line on
stderr saying what is wrong).
"""

from __future__ import annotations

import contextlib
import io

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner.cli.main import main

PLAN_FLAGS = ["--gflops", "--flops", "--gpu-hours", "--gpu", "--mfu", "--pool-size", "--quality", "--models",
              "--strategies", "--min-epochs", "--max-epochs", "--flip-mask", "--image-size", "--context-length",
              "--fit", "--format", "--top", "--data", "--eval", "--bogus", "-v"]
FLOPS_FLAGS = ["--image-size", "--context-length", "--strategy", "--flip-mask", "--format", "--list", "--bogus"]
VALUES = ["1e10", "1e19", "1e-3", "0", "-1", "-1e10", "nan", "inf", "-inf", "1e400", "1e300", "abc", "", " ", "3.4e9",
          "400M", "1.5", "0.5", "1", "2", "32", "224", "16", "77", "240", "100", "ViT-B-32", "RN50", "ViT-Ti-16",
          "convnext_tiny", "tiny-vit-28", "ViT-B-33", "clip", "flip", "slip", "clip_aug", "slp", "A100", "H100", "A1000",
          "json", "csv", "table", "xml", "/nonexistent.json", "/", "--", "-", "é", "\x00", "1_000", "0x10"]

token = st.one_of(st.sampled_from(VALUES), st.text(max_size=8))


def _argv(flags: list[str]) -> st.SearchStrategy[list[str]]:
    return st.lists(st.one_of(st.sampled_from(flags), token), max_size=10)


def _run(argv: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(argv)
        except SystemExit as exc:  # only --help/--version exit through argparse, with 0
            rc = exc.code
    return rc, err.getvalue()


def _check(argv: list[str]) -> None:
    rc, err = _run(argv)
    assert rc in (0, 2), (argv, rc, err)
    assert "Traceback" not in err, (argv, err)
    if rc == 2:
        errors = [line for line in err.splitlines() if "error:" in line]
        assert len(errors) == 1, (argv, err)


FUZZ = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)


@FUZZ
@given(_argv(PLAN_FLAGS))
def test_plan_random_arguments(args):
    _check(["plan", *args])


@FUZZ
@given(st.sampled_from(["--gflops", "--flops", "--gpu-hours"]), st.sampled_from(VALUES), _argv(PLAN_FLAGS))
def test_plan_random_arguments_with_a_budget(flag, value, args):
    _check(["plan", flag, value, *args])


# Well-formed flag/value pairs (mostly valid values) reach deep into the plan: filters, caps, formats.
PAIRS = {
    "--pool-size": ["1", "1000", "3.4e9", "400M", "1e15"],
    "--quality": ["0.2", "1", "0.01", "1e-9"],
    "--models": ["ViT-B-32", "RN50", "ViT-Ti-16", "convnext_tiny", "tiny-vit-28", "ViT-L-16"],
    "--strategies": ["clip", "flip", "slip", "clip_aug"],
    "--min-epochs": ["1", "2", "32", "1e-3"],
    "--max-epochs": ["1", "4", "32", "1e6"],
    "--flip-mask": ["0", "0.5", "0.99"],
    "--image-size": ["32", "224", "256", "1024"],
    "--context-length": ["16", "77", "1"],
    "--format": ["table", "json", "csv"],
    "--top": ["1", "5", "1000"],
    "--gpu": ["A100", "H100", "V100"],
    "--mfu": ["0.4", "1", "0.01"],
}
pair = st.sampled_from(sorted(PAIRS)).flatmap(lambda k: st.tuples(st.just(k), st.sampled_from(PAIRS[k])))


@settings(FUZZ, max_examples=40)
@given(st.sampled_from(["--gflops", "--flops", "--gpu-hours"]), st.sampled_from(["1e3", "1e10", "1e13", "1e19", "5"]),
       st.lists(pair, max_size=6))
def test_plan_well_formed_arguments(flag, value, pairs):
    _check(["plan", flag, value, *(x for p in pairs for x in p)])


@FUZZ
@given(_argv(FLOPS_FLAGS + VALUES[20:30]))
def test_flops_random_arguments(args):
    _check(["flops", *args])


def test_the_fuzzer_reaches_both_exit_codes():
    assert _run(["plan", "--gflops", "1e10", "--models", "RN50", "--format", "csv"])[0] == 0
    assert _run(["plan", "--gflops", "nan"])[0] == 2
    assert _run(["flops", "ViT-B-32"])[0] == 0
    assert _run(["flops", "--strategy", "flip", "RN50"])[0] == 2
