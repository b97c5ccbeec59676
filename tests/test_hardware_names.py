"""GPU identification by the name torch reports (``torch.cuda.get_device_name()``), over real name strings.

Substring matching once read "NVIDIA A100-SXM4-80GB" as an A10 (peak 125 instead of 312 TFLOP/s: MFU 2.5×
too high). Every string below is one that drivers report (nvidia-smi / torch on the named machines).
"""

from __future__ import annotations

import pytest

from budget.hardware import GPUS, gpu_from_device_name

REAL_NAMES = [
    ("NVIDIA A100-SXM4-80GB", "A100"),
    ("NVIDIA A100-SXM4-40GB", "A100"),
    ("NVIDIA A100-PCIE-40GB", "A100"),
    ("NVIDIA A100 80GB PCIe", "A100"),
    ("A100-SXM-80GB", "A100"),
    ("NVIDIA A10G", "A10G"),
    ("NVIDIA A10", "A10"),
    ("NVIDIA A40", "A40"),
    ("NVIDIA H100 80GB HBM3", "H100-SXM"),
    ("NVIDIA H100 SXM5 80GB", "H100-SXM"),
    ("NVIDIA H100 PCIe", "H100-PCIe"),
    ("NVIDIA H100 NVL", "H100-NVL"),
    ("NVIDIA H200", "H200"),
    ("NVIDIA H200 NVL", "H200-NVL"),
    ("NVIDIA B200", "B200"),
    ("NVIDIA L4", "L4"),
    ("NVIDIA L40S", "L40S"),
    ("Tesla V100-SXM2-16GB", "V100"),
    ("Tesla V100-SXM2-32GB", "V100"),
    ("Tesla V100-PCIE-32GB", "V100"),
    ("Tesla T4", "T4"),
    ("NVIDIA GeForce RTX 4090", "RTX-4090"),
    ("NVIDIA RTX A6000", "RTX-A6000"),
    ("AMD Instinct MI300X", "MI300X"),
    ("AMD Instinct MI250X", "MI250X"),
]

NOT_IN_TABLE = ["NVIDIA A30", "NVIDIA L40", "NVIDIA H800", "NVIDIA GH200 480GB", "NVIDIA RTX 6000 Ada Generation",
                "NVIDIA A100-SXM4-40GB MIG 3g.20gb", "NVIDIA GeForce RTX 3090", "cpu", ""]


@pytest.mark.parametrize("device_name,expected", REAL_NAMES)
def test_real_device_names_resolve_exactly(device_name, expected):
    gpu = gpu_from_device_name(device_name)
    assert gpu is not None and gpu.name == expected


@pytest.mark.parametrize("device_name", NOT_IN_TABLE)
def test_chips_not_in_the_table_have_no_peak(device_name):
    assert gpu_from_device_name(device_name) is None


def test_every_nvidia_entry_of_the_table_is_reached_by_a_real_name():
    reached = {expected for _, expected in REAL_NAMES}
    assert set(GPUS) - reached == set(), sorted(set(GPUS) - reached)
    assert len(REAL_NAMES) == 25
