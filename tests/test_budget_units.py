"""Budget parsing, conventions and the GPU table."""

from __future__ import annotations

import doctest
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import budget.catalog
import budget.flops
import budget.hardware
import budget.units
from budget.errors import ConfigError
from budget.hardware import GPUS, get_gpu, gpu_hours
from budget.units import Budget, parse_budget


@pytest.mark.parametrize("module", [budget.catalog, budget.flops, budget.hardware, budget.units])
def test_docstring_examples(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


def test_conventions():
    b = parse_budget(gflops=1e10)
    assert (b.flops, b.macs, b.train_flops) == (1e19, 5e18, 3e19)
    assert b.gpu_hours("A100", 0.4) == pytest.approx(3e19 / (312e12 * 0.4) / 3600)
    c = b.conventions("H100", 0.5)
    assert c["gpu"] == "H100-SXM" and c["gpu_hours"] == pytest.approx(3e19 / (989e12 * 0.5) / 3600)
    assert parse_budget(flops="1e19").gflops == pytest.approx(1e10)
    line = b.describe()
    assert "paper convention" in line and "MACs" in line and "training FLOPs" in line and "A100-hours" in line


def test_gpu_hours_round_trip():
    b = parse_budget(gpu_hours=1000, gpu="h200", mfu=0.35)
    assert b.given_as == "gpu_hours" and b.gpu == "H200"
    assert b.gflops == pytest.approx(1000 * 3600 * 989e12 * 0.35 / 3 / 1e9)
    assert b.gpu_hours() == pytest.approx(1000)


@pytest.mark.parametrize("kwargs, needle", [
    ({}, "exactly one"),
    ({"gflops": 1e10, "flops": 1e19}, "--gflops, --flops"),
    ({"gflops": 0}, "positive"),
    ({"gflops": -5}, "positive"),
    ({"gflops": float("nan")}, "positive"),
    ({"flops": float("inf")}, "positive"),
    ({"gflops": "1e10x"}, "positive number"),
    ({"gflops": True}, "positive number"),
    ({"gpu_hours": 10, "gpu": "K80"}, "unknown GPU"),
    ({"gpu_hours": 10, "mfu": 0}, "mfu"),
    ({"gpu_hours": 10, "mfu": 1.5}, "mfu"),
    ({"gpu_hours": 10, "mfu": "high"}, "mfu"),
])
def test_bad_budgets(kwargs, needle):
    with pytest.raises(ConfigError) as err:
        parse_budget(**kwargs)
    assert needle in str(err.value) and "\n" not in str(err.value)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=12), st.floats(allow_nan=True, allow_infinity=True), st.integers()))
def test_parse_budget_never_crashes(raw):
    try:
        b = parse_budget(gflops=raw)
    except ConfigError as exc:
        assert "\n" not in str(exc)
    else:
        assert isinstance(b, Budget) and math.isfinite(b.gflops) and b.gflops > 0


def test_gpu_table():
    expected = {"V100": 125, "A100": 312, "H100-SXM": 989, "H100-PCIe": 756, "H200": 989, "L40S": 362.05,
                "L4": 121, "A10G": 70, "RTX-4090": 165.2, "RTX-A6000": 154.8, "T4": 65, "MI250X": 383,
                "MI300X": 1307.4}
    for name, tflops in expected.items():
        assert GPUS[name].peak_bf16_tflops == tflops and GPUS[name].source
    assert get_gpu("h100 sxm").name == get_gpu("H100").name == "H100-SXM"
    assert get_gpu("rtx4090").name == "RTX-4090"
    with pytest.raises(ConfigError) as err:
        get_gpu("TPUv4")
    assert "A100" in str(err.value) and "MI300X" in str(err.value)
    assert gpu_hours(312e12 * 3600, "A100", mfu=1.0) == pytest.approx(1.0)
    with pytest.raises(ConfigError):
        gpu_hours(-1.0)


