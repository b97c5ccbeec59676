"""Compute budgets and their conventions.

The canonical unit is the **paper convention** (Li, Xie, Cubuk 2024): per-sample *forward* GFLOPs of image +
text tower (FLOPs = 2 × MACs) × samples seen. The same budget in the other conventions:

* FLOPs: ``gflops × 1e9`` (forward, paper convention);
* MACs (Cherti et al. 2023 ``arch_info.csv``; DataComp ``scale_configs.py``): ``FLOPs / 2``;
* training FLOPs: ``3 × FLOPs`` (forward + backward ≈ 2 × forward);
* GPU-hours on a GPU at an MFU: ``training FLOPs / (peak · mfu) / 3600`` (:mod:`budget.hardware`).

Conversely a GPU-hour budget becomes ``gflops = gpu_hours · 3600 · peak · mfu / 3 / 1e9``.

Example:
    >>> from budget.units import parse_budget
    >>> b = parse_budget(gflops=1e10)
    >>> b.flops, b.macs, b.train_flops
    (1e+19, 5e+18, 3e+19)
    >>> round(b.gpu_hours("A100", 0.4), 1)
    66.8
    >>> round(parse_budget(gpu_hours=66.77, gpu="A100", mfu=0.4).gflops / 1e10, 3)
    1.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from budget.coerce import to_float
from budget.errors import ConfigError
from budget.flops import TRAIN_FLOPS_PER_FORWARD
from budget.hardware import (
    DEFAULT_GPU,
    DEFAULT_MFU,
    check_mfu,
    flops_in_gpu_hours,
    get_gpu,
    gpu_hours,
)

_FLAGS = ("gflops", "flops", "gpu_hours")


@dataclass(frozen=True)
class Budget:
    """A compute budget in paper-convention GFLOPs (forward, 2 × MACs, × samples seen).

    ``given_as`` records the flag the user gave (``gflops``, ``flops`` or ``gpu_hours``), and ``gpu``/``mfu``
    the conversion used for ``gpu_hours`` budgets (also the defaults of :meth:`gpu_hours`).
    """

    gflops: float
    given_as: str = "gflops"
    gpu: str = DEFAULT_GPU
    mfu: float = DEFAULT_MFU

    @property
    def flops(self) -> float:
        """Forward FLOPs (paper convention)."""
        return self.gflops * 1e9

    @property
    def macs(self) -> float:
        """Forward multiply-accumulates (Cherti et al., DataComp): FLOPs / 2."""
        return self.flops / 2.0

    @property
    def train_flops(self) -> float:
        """Training FLOPs: 3 × forward FLOPs."""
        return self.flops * TRAIN_FLOPS_PER_FORWARD

    def gpu_hours(self, gpu: str | None = None, mfu: float | None = None) -> float:
        """GPU-hours of the training FLOPs on ``gpu`` (default: the budget's) at ``mfu``."""
        return gpu_hours(self.train_flops, gpu or self.gpu, self.mfu if mfu is None else mfu)

    def conventions(self, gpu: str | None = None, mfu: float | None = None) -> dict[str, Any]:
        """The budget in every convention (a JSON-ready dict; keys carry the units)."""
        g = get_gpu(gpu or self.gpu)
        m = check_mfu(self.mfu if mfu is None else mfu)
        return {
            "convention": "paper: per-sample forward GFLOPs (2 x MACs) x samples seen",
            "given_as": self.given_as,
            "gflops": self.gflops,
            "flops": self.flops,
            "macs": self.macs,
            "train_flops": self.train_flops,
            "gpu": g.name,
            "mfu": m,
            "gpu_hours": self.gpu_hours(g.name, m),
        }

    def describe(self, gpu: str | None = None, mfu: float | None = None) -> str:
        """One line stating the convention and the budget in the others.

        Example:
            >>> parse_budget(gflops=1e10).describe()
            '1e+10 GFLOPs (paper convention: forward, FLOPs = 2 x MACs, x samples seen) = 1e+19 FLOPs = 5e+18 MACs (Cherti et al./DataComp) = 3e+19 training FLOPs (3 x forward) = 66.8 A100-hours at 40% MFU'
        """
        c = self.conventions(gpu, mfu)
        return (f"{_g(c['gflops'])} GFLOPs (paper convention: forward, FLOPs = 2 x MACs, x samples seen)"
                f" = {_g(c['flops'])} FLOPs = {_g(c['macs'])} MACs (Cherti et al./DataComp)"
                f" = {_g(c['train_flops'])} training FLOPs (3 x forward)"
                f" = {format_hours(c['gpu_hours'])} {c['gpu']}-hours at {c['mfu']:.0%} MFU")


def parse_budget(
    gflops: Any = None, flops: Any = None, gpu_hours: Any = None, gpu: str = DEFAULT_GPU, mfu: Any = DEFAULT_MFU
) -> Budget:
    """Build a :class:`Budget` from exactly one of ``gflops``, ``flops``, ``gpu_hours`` (numbers or numeric strings).

    ``gpu_hours`` is converted with ``gpu`` and ``mfu`` through training FLOPs = 3 × forward.
    Raises ConfigError (one line) for none or several budgets, zero, negative, NaN, infinite or non-numeric values,
    an unknown GPU or an MFU outside (0, 1].
    """
    given = {k: v for k, v in (("gflops", gflops), ("flops", flops), ("gpu_hours", gpu_hours)) if v is not None}
    if len(given) != 1:
        which = ", ".join(f"--{k.replace('_', '-')}" for k in given) or "none"
        raise ConfigError(f"give exactly one budget (--gflops, --flops or --gpu-hours), got {which}")
    (kind, raw), = given.items()
    value = _positive(raw, kind)
    g = get_gpu(gpu).name
    m = check_mfu(mfu)
    if kind == "gflops":
        total = value
    elif kind == "flops":
        total = value / 1e9
    else:
        total = flops_in_gpu_hours(value, g, m) / TRAIN_FLOPS_PER_FORWARD / 1e9
    if not math.isfinite(total) or total <= 0:
        raise ConfigError(f"--{kind.replace('_', '-')} {raw!r} gives a budget of {total!r} GFLOPs; give a positive finite value")
    return Budget(gflops=total, given_as=kind, gpu=g, mfu=m)


def format_hours(hours: float) -> str:
    """GPU-hours with sensible precision (``0.0012``, ``3.4``, ``66.8``, ``1.2e+06``)."""
    if hours == 0:
        return "0"
    if hours >= 1e5:
        return f"{hours:.2g}"
    if hours >= 10:
        return f"{hours:.1f}"
    return f"{hours:.2g}"


def _g(x: float) -> str:
    return f"{x:.3g}"


def _positive(raw: Any, kind: str) -> float:
    flag = f"--{kind.replace('_', '-')}"
    try:
        value = to_float(raw, finite=False)
    except ValueError as exc:
        if str(exc) == "not finite":  # ±inf
            raise ConfigError(f"{flag} must be a positive finite number (e.g. 1e10), got {raw!r}") from None
        raise ConfigError(f"{flag} must be a positive number (e.g. 1e10), got {raw!r}") from None
    if math.isnan(value) or value <= 0:
        raise ConfigError(f"{flag} must be a positive finite number (e.g. 1e10), got {raw!r}")
    return value
