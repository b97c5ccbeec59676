"""Is a compute budget inside the range where CLIP has been trained? Warnings, never refusals.

Published anchors, all converted to the paper convention (forward FLOPs = 2 × MACs, per-sample cost ×
samples seen; Cherti et al. and DataComp count MACs):

* Li, Xie, Cubuk 2024 ("Scaling (Down) CLIP", arXiv 2404.08197): compute axes from 1e8 to 1e11 GFLOPs,
  i.e. 1e17–1e20 FLOPs.
* DataComp (Gadre et al. 2023, arXiv 2304.14108, ``scale_configs.py``): small 9.5e16 MACs (1.9e17 FLOPs)
  … xlarge 1.1e21 MACs (2.2e21 FLOPs).
* Cherti et al. 2023 ("Reproducible scaling laws for contrastive language-image learning"): their fit spans
  C = 1.8e10 … 6.6e12 GMACs, i.e. 3.6e19 … 1.32e22 FLOPs.

So CLIP has been trained (and its scaling fitted) between about :data:`LOWEST_FLOPS` = 1e17 and
:data:`HIGHEST_FLOPS` = 1.32e22 forward FLOPs. :func:`check_budget` warns outside that range, says how far
outside, and, when the number looks like it was given in the wrong unit (``--gflops 1e19`` for 1e19
FLOPs, or ``--flops 1e10`` for 1e10 GFLOPs), suggests the other flag.

Example:
    >>> warnings = check_budget(1e19, flag="gflops")
    >>> "DataComp" in warnings[0] and "--flops 1e19" in warnings[0]
    True
    >>> check_budget(1e10, flag="gflops")
    []
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from budget.flops import FLOPS_PER_MAC


@dataclass(frozen=True)
class Anchor:
    """A published training compute, in forward FLOPs (paper convention), with its source."""

    name: str
    flops: float
    source: str


#: Published compute anchors, smallest first (see the module docstring for the sources).
ANCHORS: tuple[Anchor, ...] = (
    Anchor("the seed paper's smallest compute (1e8 GFLOPs)", 1e17, "Li, Xie, Cubuk 2024, compute axes"),
    Anchor("DataComp small (9.5e16 MACs)", 9.5e16 * FLOPS_PER_MAC, "Gadre et al. 2023, Table 1"),
    Anchor("Cherti et al.'s smallest fitted run (1.8e10 GMACs)", 1.8e10 * 1e9 * FLOPS_PER_MAC,
           "Cherti et al. 2023, scaling fit"),
    Anchor("the seed paper's largest compute (1e11 GFLOPs)", 1e20, "Li, Xie, Cubuk 2024, compute axes"),
    Anchor("DataComp xlarge (1.1e21 MACs)", 1.1e21 * FLOPS_PER_MAC, "Gadre et al. 2023, Table 1"),
    Anchor("Cherti et al.'s largest fitted run (6.6e12 GMACs)", 6.6e12 * 1e9 * FLOPS_PER_MAC,
           "Cherti et al. 2023, scaling fit"),
)
#: The smallest published CLIP training compute (forward FLOPs): the seed paper's axis start.
LOWEST_FLOPS = 1e17
#: The largest published CLIP training compute in a scaling fit (forward FLOPs): Cherti et al.'s 6.6e12 GMACs.
HIGHEST_FLOPS = 6.6e12 * 1e9 * FLOPS_PER_MAC
_DATACOMP_XLARGE_FLOPS = 1.1e21 * FLOPS_PER_MAC
_DATACOMP_SMALL_FLOPS = 9.5e16 * FLOPS_PER_MAC


def check_budget(budget: Any, flag: str | None = None, value: float | None = None) -> list[str]:
    """One-line warnings for a budget outside the published CLIP range (empty when inside).

    Args:
        budget: a :class:`budget.units.Budget` (anything with ``.gflops``) or a number of GFLOPs
            (paper convention).
        flag: the option the user gave (``"gflops"``, ``"flops"``, ``"gpu_hours"``), to suggest the other
            unit when the number looks like it was meant in it.
        value: the number the user typed (defaults to the budget in that flag's unit).
    """
    gflops = float(getattr(budget, "gflops", budget))
    if not math.isfinite(gflops) or gflops <= 0:
        return []
    flops = gflops * 1e9
    if value is None:
        value = gflops if flag == "gflops" else flops if flag == "flops" else None
    shown = f"{_num(value)} GFLOPs = " if value is not None and flag == "gflops" else ""
    warnings: list[str] = []
    if flops > HIGHEST_FLOPS:
        head = (f"budget {shown}{_num(flops)} FLOPs ({_num(flops / FLOPS_PER_MAC)} MACs) is "
                f"{_times(flops / _DATACOMP_XLARGE_FLOPS)} DataComp's largest run (xlarge, 1.1e21 MACs) and "
                f"{_times(flops / HIGHEST_FLOPS)} the largest run in Cherti et al.'s CLIP scaling fit "
                "(6.6e12 GMACs): no CLIP has been trained at this scale and predictions are extrapolation.")
        if unit_suggestion(budget, flag, value):
            head += f" Did you mean --flops {_num(value)} (= {_num(value / 1e9)} GFLOPs)?"
        warnings.append(head + " Planning anyway (the data pool caps each row).")
    elif flops < LOWEST_FLOPS:
        head = (f"budget {shown}{_num(flops)} FLOPs is below every published CLIP scaling study: "
                f"{_times(LOWEST_FLOPS / flops, below=True)} the seed paper's smallest compute (1e8 GFLOPs = "
                f"1e17 FLOPs) and DataComp small ({_num(_DATACOMP_SMALL_FLOPS)} FLOPs); predictions are "
                "extrapolation (fine for a CPU smoke test).")
        if unit_suggestion(budget, flag, value):
            head += f" Did you mean --gflops {_num(value)} (= {_num(value * 1e9)} FLOPs)?"
        warnings.append(head)
    return warnings


def unit_suggestion(budget: Any, flag: str | None, value: float | None) -> str | None:
    """The other budget flag when the number looks like it was typed in the wrong unit, else None.

    Example:
        >>> unit_suggestion(1e19, "gflops", 1e19), unit_suggestion(1e1, "flops", 1e10)
        ('--flops 1e19', '--gflops 1e10')
        >>> unit_suggestion(1e10, "gflops", 1e10) is None
        True
    """
    flops = float(getattr(budget, "gflops", budget)) * 1e9
    if value is None or not math.isfinite(flops):
        return None
    if flag == "gflops" and flops > HIGHEST_FLOPS and LOWEST_FLOPS / 10 <= value <= HIGHEST_FLOPS * 10:
        return f"--flops {_num(value)}"
    if flag == "flops" and flops < LOWEST_FLOPS and LOWEST_FLOPS / 10 <= value * 1e9 <= HIGHEST_FLOPS * 10:
        return f"--gflops {_num(value)}"
    return None


def position(budget: Any) -> str:
    """Where a budget sits among the published anchors, in words (for the plan header).

    Example:
        >>> position(1e10)
        "between DataComp small (9.5e16 MACs) and Cherti et al.'s smallest fitted run (1.8e10 GMACs)"
    """
    flops = float(getattr(budget, "gflops", budget)) * 1e9
    below = [a for a in ANCHORS if a.flops <= flops]
    above = [a for a in ANCHORS if a.flops > flops]
    if not below:
        return f"below {min(ANCHORS, key=lambda a: a.flops).name}"
    if not above:
        return f"above {max(ANCHORS, key=lambda a: a.flops).name}"
    lo = max(below, key=lambda a: a.flops)
    hi = min(above, key=lambda a: a.flops)
    return f"between {lo.name} and {hi.name}"


def _num(x: float) -> str:
    """1e19 → '1e19', 1.36e9 → '1.36e9', 2.5 → '2.5'."""
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    mantissa, exponent = f"{x:.3g}".partition("e")[::2] if "e" in f"{x:.3g}" else (f"{x:.3g}", "")
    if not exponent:
        exp = math.floor(math.log10(abs(x)))
        if abs(exp) < 4:
            return mantissa
        mantissa, exponent = f"{x / 10 ** exp:.3g}", str(exp)
    return f"{mantissa}e{int(exponent)}"


def _times(ratio: float, below: bool = False) -> str:
    """'about 4.5 million times' / 'about 300 times' (below: '... times less than')."""
    if ratio >= 1e12:
        words = f"about {ratio:.2g} times"
    elif ratio >= 1e9:
        words = f"about {ratio / 1e9:.2g} billion times"
    elif ratio >= 1e6:
        words = f"about {ratio / 1e6:.2g} million times"
    elif ratio >= 1e3:
        words = f"about {ratio / 1e3:.3g} thousand times"
    else:
        words = f"about {ratio:.2g} times"
    return words + (" less than" if below else "")
