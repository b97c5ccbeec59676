"""The report's figures: matplotlib drawn to SVG text, deterministically (same data → same bytes).

Each function takes plain data (:mod:`planner.report.gather`) and returns one SVG document as a string.
Accuracies are drawn in percent of top-1; compute on a log axis in GFLOPs (paper convention). No pyplot:
figures are :class:`matplotlib.figure.Figure` objects on the Agg/SVG canvas, so nothing global changes.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np

from planner.report.gather import Curve, Points

#: Figure size in inches (width, height) for the wide and the short figures.
WIDE = (7.0, 4.0)
SHORT = (7.0, 3.2)
#: Colour-blind-safe cycle (Okabe & Ito 2008), then greys.
COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000", "#777777")
_RC = {
    "svg.hashsalt": "clipbudget-report",  # stable ids of clip paths
    "svg.fonttype": "none",  # text stays text (small, selectable, readable by screen readers)
    "font.size": 9.0,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "legend.fontsize": 7.5,
    "legend.frameon": False,
}


def _figure(size: tuple[float, float]):
    from matplotlib.figure import Figure

    return Figure(figsize=size, layout="constrained")


def to_svg(fig) -> str:
    """The figure as an SVG document (no date, stable ids)."""
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context(_RC):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": "clipbudget report"})
    return buf.getvalue()


def _styled(draw):
    """Run ``draw`` (which builds and returns a Figure) under the report's rc settings, return the SVG."""
    import matplotlib

    def wrapper(*args, **kwargs) -> str:
        with matplotlib.rc_context(_RC):
            fig = draw(*args, **kwargs)
            return to_svg(fig)

    wrapper.__name__ = draw.__name__
    wrapper.__doc__ = draw.__doc__
    return wrapper


def _band(ax, c: Curve, color: str, *, lw: float = 1.4, label: str | None = None) -> None:
    x = np.asarray(c.x, dtype=float)
    ax.fill_between(x, 100 * c.ci_low, 100 * c.ci_high, color=color, alpha=0.15, lw=0)
    y = 100 * np.asarray(c.top1)
    limited = np.asarray(c.data_limited, dtype=bool)
    solid = np.where(limited, np.nan, y)
    ax.plot(x, solid, color=color, lw=lw, label=label or c.label)
    if limited.any():  # the data pool limits these points: dotted, continuing the line
        dotted = np.where(limited | np.roll(limited, -1) | np.roll(limited, 1), y, np.nan)
        ax.plot(x, dotted, color=color, lw=lw, ls=":")


@_styled
def interval_plot(rows: Sequence[dict]):
    """Top rows as horizontal 95 % intervals, best at the top; the recommended row filled, tied rows marked."""
    n = len(rows)
    fig = _figure((7.0, max(1.6, 0.32 * n + 0.9)))
    ax = fig.add_subplot()
    y = np.arange(n)[::-1]
    for yi, r in zip(y, rows):
        p, lo, hi = 100 * r["predicted_top1"], 100 * r["ci_low"], 100 * r["ci_high"]
        color = COLORS[1] if r.get("recommended") else COLORS[0] if r.get("tied") else "#555555"
        ax.plot([lo, hi], [yi, yi], color=color, lw=2.2, solid_capstyle="butt")
        ax.plot([p], [yi], "o", color=color, ms=5.5, mfc=color if (r.get("recommended") or r.get("tied")) else "white")
    labels = [_row_label(i, r) for i, r in enumerate(rows)]
    ax.set_yticks(y, labels, fontsize=7.5)
    ax.set_xlabel("predicted zero-shot top-1 (%), 95 % interval")
    ax.grid(axis="y", alpha=0)
    ax.set_ylim(-0.7, n - 0.3)
    return fig


def _row_label(i: int, r: dict) -> str:
    mark = "* " if r.get("recommended") else "= " if r.get("tied") else ""
    strat = r["strategy"] + (f" {r.get('flip_mask_ratio', 0.5):.0%}" if r["strategy"] == "flip" else "")
    return f"{mark}{i + 1}. {r['model']} {strat}, q={r['quality_fraction']:g}, {r['epochs']:.3g} ep"


@_styled
def compute_plot(curves: Sequence[Curve], *, budget_gflops: float | None = None, frontier: Curve | None = None,
                 points: Points | None = None, fit_range: tuple[float, float] | None = None):
    """Predicted top-1 against total compute (log GFLOPs) with 95 % bands; budget line, frontier, points."""
    fig = _figure((7.0, 4.6))
    ax = fig.add_subplot()
    if fit_range is not None:
        ax.axvspan(fit_range[0], fit_range[1], color="#000000", alpha=0.035, lw=0)
    if points is not None and len(points.x):
        ax.scatter(points.x, 100 * points.y, s=9, color="#888888", alpha=0.7, lw=0, label="published runs", zorder=2)
    for i, c in enumerate(curves):
        _band(ax, c, COLORS[i % len(COLORS)])
    if frontier is not None and len(frontier.x):
        ax.plot(frontier.x, 100 * frontier.top1, color="#000000", lw=1.0, ls="--", label="frontier (best of all)")
    if budget_gflops is not None:
        ax.axvline(budget_gflops, color=COLORS[1], lw=1.0)
        ax.annotate("budget", (budget_gflops, 1.0), xycoords=("data", "axes fraction"), xytext=(3, -10),
                    textcoords="offset points", color=COLORS[1], fontsize=8)
    ax.set_xscale("log")
    xs = [np.asarray(c.x) for c in curves if len(c.x)]
    if xs:
        lo, hi = min(float(x.min()) for x in xs), max(float(x.max()) for x in xs)
        ax.set_xlim(lo, hi)
    ax.set_xlabel("total compute (GFLOPs, paper convention: forward × samples seen)")
    ax.set_ylabel("zero-shot top-1 (%)")
    fig.legend(loc="outside lower center", ncols=4)
    return fig


@_styled
def curve_plot(curve: Curve, *, xlabel: str, mark_x: float | None = None, log_x: bool = False,
               mark_label: str = "recommended"):
    """One curve with its band against a non-compute axis (quality fraction, epochs)."""
    fig = _figure(SHORT)
    ax = fig.add_subplot()
    _band(ax, curve, COLORS[0])
    if mark_x is not None:
        ax.axvline(mark_x, color=COLORS[1], lw=1.0)
        ax.annotate(mark_label, (mark_x, 1.0), xycoords=("data", "axes fraction"), xytext=(3, -10),
                    textcoords="offset points", color=COLORS[1], fontsize=8)
    if log_x:
        ax.set_xscale("log", base=2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("zero-shot top-1 (%)")
    ax.legend(loc="lower left")
    return fig


@_styled
def residual_plot(residuals: dict[str, np.ndarray]):
    """Predicted − observed top-1 (points) per source, one row of dots per source."""
    names = list(residuals)
    fig = _figure((7.0, max(1.8, 0.45 * len(names) + 1.0)))
    ax = fig.add_subplot()
    rng = np.random.default_rng(0)  # fixed jitter: deterministic output
    for i, name in enumerate(names):
        r = np.asarray(residuals[name], dtype=float)
        yy = len(names) - 1 - i + rng.uniform(-0.15, 0.15, len(r))
        ax.scatter(r, yy, s=12, color=COLORS[i % len(COLORS)], lw=0)
    ax.axvline(0.0, color="#000000", lw=0.8)
    ax.set_yticks(np.arange(len(names))[::-1], [n.replace("published:", "") for n in names], fontsize=8)
    ax.set_xlabel("predicted − observed zero-shot top-1 (points)")
    ax.grid(axis="y", alpha=0)
    return fig


@_styled
def measured_plot(rows: Sequence[dict]):
    """Measured against predicted top-1 for completed runs, with the 95 % interval of the prediction; the
    refreshed fit's predictions (``refit_top1``) as a second series where present."""
    fig = _figure((7.0, 3.8))
    ax = fig.add_subplot()
    meas = np.asarray([100 * r["measured_top1"] for r in rows])
    series = [("predicted_top1", "ci_low", "ci_high", COLORS[0], "as predicted")]
    if all(r.get("refit_top1") is not None for r in rows):
        series.append(("refit_top1", "refit_low", "refit_high", COLORS[2], "refreshed fit"))
    allv = [meas]
    for key, lo_key, hi_key, color, label in series:
        pred = np.asarray([100 * r[key] for r in rows])
        lo = np.asarray([100 * r[lo_key] for r in rows])
        hi = np.asarray([100 * r[hi_key] for r in rows])
        ax.errorbar(pred, meas, xerr=[pred - lo, hi - pred], fmt="o", color=color, ms=4, lw=1, capsize=2,
                    label=label)
        allv += [pred, lo, hi]
    v = np.concatenate(allv)
    a, b = float(v.min()), float(v.max())
    pad = max(1.0, 0.05 * (b - a))
    ax.plot([a - pad, b + pad], [a - pad, b + pad], color="#000000", lw=0.8, ls="--", label="measured = predicted")
    ax.set_xlabel("predicted zero-shot top-1 (%), 95 % interval")
    ax.set_ylabel("measured top-1 (%)")
    ax.legend(loc="upper left")
    return fig


@_styled
def ledger_plot(ledger: dict):
    """Planned, spent and remaining GPU-hours (and training FLOPs) of a sweep, as horizontal bars."""
    fig = _figure((7.0, 1.9))
    axes = fig.subplots(1, 2)
    for ax, unit, label in ((axes[0], "train_flops", "training FLOPs"), (axes[1], "gpu_hours", "GPU-hours")):
        vals = [ledger.get(f"planned_{unit}", 0.0), ledger.get(f"spent_{unit}", 0.0),
                ledger.get(f"remaining_{unit}", 0.0)]
        ax.barh([2, 1, 0], vals, color=[COLORS[0], COLORS[1], COLORS[2]])
        ax.set_yticks([2, 1, 0], ["planned", "spent", "remaining"])
        ax.set_xlabel(label)
        ax.grid(axis="y", alpha=0)
    return fig
