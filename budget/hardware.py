"""Accelerator peak throughput and GPU-hour estimates.

Peaks are **dense** (no structured sparsity) tensor-core TFLOP/s in bf16, or fp16 where the chip has no bf16
(V100, T4), with fp32 accumulation, from the vendor datasheets cited per entry. Datasheets often print
the 2:4-sparsity figure, which is twice the dense one; the table halves it where that is the only number given.

``gpu_hours = train_flops / (peak · mfu) / 3600``, where MFU (model FLOPs utilisation, PaLM, Chowdhery et
al. 2022, App. B) is the fraction of the peak a training job achieves on the model's FLOPs; 0.3–0.5 is
typical for CLIP ViTs on A100/H100 with good data loading.

Example:
    >>> from budget.hardware import get_gpu, gpu_hours
    >>> get_gpu("h100").name, get_gpu("H100 SXM").peak_bf16_tflops
    ('H100-SXM', 989.0)
    >>> round(gpu_hours(1e21, "A100", mfu=0.4), 1)
    2225.8
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from budget.errors import ConfigError

#: Default model-FLOPs utilisation for GPU-hour estimates.
DEFAULT_MFU = 0.4
#: Default GPU for GPU-hour estimates.
DEFAULT_GPU = "A100"


@dataclass(frozen=True)
class GPU:
    """One accelerator: dense peak tensor TFLOP/s (``peak_bf16_tflops``; fp16 where ``dtype`` says so)."""

    name: str
    peak_bf16_tflops: float
    memory_gb: float
    dtype: str  # the precision the peak is for: "bf16" or "fp16"
    source: str
    notes: str = ""

    @property
    def peak_flops(self) -> float:
        """Dense peak in FLOP/s."""
        return self.peak_bf16_tflops * 1e12


#: The table, by canonical name.
GPUS: dict[str, GPU] = {g.name: g for g in (
    GPU("V100", 125.0, 32, "fp16", "NVIDIA Tesla V100 datasheet (SXM2): 125 TFLOPS tensor performance",
        "no bf16; PCIe variant 112"),
    GPU("T4", 65.0, 16, "fp16", "NVIDIA T4 datasheet: 65 TFLOPS mixed-precision (FP16/FP32)", "no bf16"),
    GPU("A10", 125.0, 24, "bf16", "NVIDIA A10 datasheet: BF16 tensor 125 TFLOPS (250 with sparsity)"),
    GPU("A10G", 70.0, 24, "bf16", "AWS EC2 G5 (A10G); no NVIDIA datasheet. 70 dense bf16/fp16 is the figure "
        "commonly quoted for the AWS part", "uncertain: check your instance; the A10 datasheet gives 125"),
    GPU("A40", 149.7, 48, "bf16", "NVIDIA A40 datasheet: BF16 tensor 149.7 TFLOPS (299.4 with sparsity)"),
    GPU("A100", 312.0, 80, "bf16", "NVIDIA A100 datasheet: BF16 tensor 312 TFLOPS (624 with sparsity)",
        "SXM and PCIe, 40 and 80 GB: same peak"),
    GPU("RTX-A6000", 154.8, 48, "bf16", "NVIDIA RTX A6000 datasheet: tensor 309.7 TFLOPS with sparsity; dense = half"),
    GPU("RTX-4090", 165.2, 24, "bf16", "NVIDIA Ada Lovelace architecture whitepaper: RTX 4090 FP16/BF16 tensor with "
        "FP32 accumulate 165.2 TFLOPS dense", "330.3 with FP16 accumulate; training uses FP32 accumulate"),
    GPU("L4", 121.0, 24, "bf16", "NVIDIA L4 datasheet: BF16 tensor 242 TFLOPS with sparsity; dense = half"),
    GPU("L40S", 362.05, 48, "bf16", "NVIDIA L40S datasheet: BF16 tensor 362.05 TFLOPS (733 with sparsity)"),
    GPU("H100-SXM", 989.0, 80, "bf16", "NVIDIA H100 datasheet (SXM5): BF16 tensor 1,979 TFLOPS with sparsity; "
        "dense = half"),
    GPU("H100-PCIe", 756.0, 80, "bf16", "NVIDIA H100 datasheet (PCIe): BF16 tensor 1,513 TFLOPS with sparsity; "
        "dense = half"),
    GPU("H100-NVL", 835.5, 94, "bf16", "NVIDIA H100 NVL product brief: BF16 tensor 1,671 TFLOPS with sparsity per "
        "GPU; dense = half"),
    GPU("H200", 989.0, 141, "bf16", "NVIDIA H200 datasheet (SXM): BF16 tensor 1,979 TFLOPS with sparsity; dense = half"),
    GPU("H200-NVL", 835.5, 141, "bf16", "NVIDIA H200 NVL datasheet: BF16 tensor 1,671 TFLOPS with sparsity; "
        "dense = half"),
    GPU("B200", 2250.0, 180, "bf16", "NVIDIA HGX B200 datasheet: FP16/BF16 tensor 4.5 PFLOPS with sparsity per GPU; "
        "dense = half"),
    GPU("MI250X", 383.0, 128, "bf16", "AMD Instinct MI250X datasheet: peak BF16/FP16 383 TFLOPS (dense)"),
    GPU("MI300X", 1307.4, 192, "bf16", "AMD Instinct MI300X datasheet: peak BF16/FP16 1307.4 TFLOPS dense "
        "(2614.9 with sparsity)"),
)}

# Extra spellings (normalised: lower case, letters and digits only).
_ALIASES = {
    "h100": "H100-SXM", "h100sxm5": "H100-SXM", "a6000": "RTX-A6000", "4090": "RTX-4090",
    "v100sxm2": "V100", "a100sxm": "A100", "a100pcie": "A100", "h200sxm": "H200",
}


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


_INDEX = {**{_key(n): n for n in GPUS}, **_ALIASES}


def get_gpu(name: str | GPU) -> GPU:
    """Look a GPU up by name, case- and punctuation-insensitively (``h100``, ``H100 SXM``, ``rtx4090``).

    Raises ConfigError listing the valid names for an unknown GPU.
    """
    if isinstance(name, GPU):
        return name
    if not isinstance(name, str) or _key(name) not in _INDEX:
        raise ConfigError(f"unknown GPU {name!r}; valid: {', '.join(GPUS)}")
    return GPUS[_INDEX[_key(name)]]


#: ``torch.cuda.get_device_name()`` → table entry. Each pattern matches a whole model number (``a10`` never
#: matches ``A100``), tried in order; the memory size, form factor suffixes and "NVIDIA"/"Tesla" prefixes vary.
_DEVICE_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"\bh100\b.*\bnvl\b", "H100-NVL"),
    (r"\bh100\b.*\bpcie\b", "H100-PCIe"),
    (r"\bh100\b", "H100-SXM"),  # "NVIDIA H100 80GB HBM3" is the SXM5 part
    (r"\bh200\b.*\bnvl\b", "H200-NVL"),
    (r"\bh200\b", "H200"),
    (r"\bb200\b", "B200"),
    (r"\ba100\b", "A100"),
    (r"\ba10g\b", "A10G"),
    (r"\ba10\b", "A10"),
    (r"\ba40\b", "A40"),
    (r"\bl40s\b", "L40S"),
    (r"\bl4\b", "L4"),
    (r"\bv100s?\b", "V100"),
    (r"\bt4\b", "T4"),
    (r"\brtx 4090\b", "RTX-4090"),
    (r"\brtx a6000\b", "RTX-A6000"),
    (r"\bmi300x\b", "MI300X"),
    (r"\bmi250x?\b", "MI250X"),
)


def gpu_from_device_name(device_name: str) -> GPU | None:
    """The table entry of a device name as torch reports it (``torch.cuda.get_device_name()``), or None.

    Exact model numbers, not substrings: ``NVIDIA A100-SXM4-80GB`` is an A100 (not an A10),
    ``NVIDIA A10G`` an A10G, ``NVIDIA H100 80GB HBM3`` the SXM H100, ``NVIDIA H100 PCIe`` and
    ``NVIDIA H100 NVL`` their own entries. Chips not in :data:`GPUS` (A30, L40, H800, GH200, RTX 6000 Ada, …)
    and MIG slices give None: no peak is better than a wrong one.

    >>> [gpu_from_device_name(n).name for n in ("NVIDIA A100-SXM4-80GB", "NVIDIA A10G", "Tesla V100-SXM2-32GB")]
    ['A100', 'A10G', 'V100']
    >>> gpu_from_device_name("NVIDIA A30") is None
    True
    """
    text = re.sub(r"[-_/,()]", " ", str(device_name).lower())
    text = re.sub(r"\s+", " ", text).strip()
    if re.search(r"\bmig\b", text):  # a MIG slice has a fraction of the chip's peak
        return None
    if re.search(r"\bgh200\b|\bh800\b|\bl40\b(?!s)|\ba30\b|\ba800\b", text):
        return None
    for pattern, name in _DEVICE_PATTERNS:
        if re.search(pattern, text):
            return GPUS[name]
    return None


def check_mfu(mfu: float) -> float:
    """Return ``mfu`` as a float in (0, 1], or raise ConfigError."""
    try:
        value = float(mfu)
    except (TypeError, ValueError):
        raise ConfigError(f"mfu must be a number in (0, 1] (fraction of peak), got {mfu!r}") from None
    if not 0.0 < value <= 1.0:  # also rejects NaN
        raise ConfigError(f"mfu must be in (0, 1] (fraction of peak, e.g. 0.4), got {mfu!r}")
    return value


def gpu_hours(train_flops: float, gpu: str | GPU = DEFAULT_GPU, mfu: float = DEFAULT_MFU) -> float:
    """GPU-hours to execute ``train_flops`` training FLOPs on ``gpu`` at utilisation ``mfu``.

    ``train_flops`` is the whole run's training compute (≈ 3 × forward FLOPs, see :mod:`budget.flops`).
    """
    g = get_gpu(gpu)
    m = check_mfu(mfu)
    try:
        flops = float(train_flops)
    except (TypeError, ValueError):
        raise ConfigError(f"train_flops must be a number, got {train_flops!r}") from None
    if not math.isfinite(flops) or flops < 0:
        raise ConfigError(f"train_flops must be finite and ≥ 0, got {train_flops!r}")
    return flops / (g.peak_flops * m) / 3600.0


def flops_in_gpu_hours(hours: float, gpu: str | GPU = DEFAULT_GPU, mfu: float = DEFAULT_MFU) -> float:
    """Training FLOPs that ``hours`` GPU-hours on ``gpu`` at ``mfu`` execute (inverse of :func:`gpu_hours`)."""
    return float(hours) * 3600.0 * get_gpu(gpu).peak_flops * check_mfu(mfu)
