"""A report as a document: sections of paragraphs, tables and figures with captions that state numbers.

:func:`budget_document`, :func:`fit_document` and :func:`sweep_document` turn the data of
:mod:`planner.report.gather` into a :class:`Document`; :mod:`planner.report.render` writes it as HTML or
Markdown. Every figure's caption says what it shows in numbers, so the text alone carries the answer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from planner import __version__
from planner.report import figures
from planner.report.gather import BudgetData, FitData, SweepData


@dataclass(frozen=True)
class Para:
    text: str
    kind: str = "p"  # "p", "lead" (the one-sentence answer), "warning", "note"


@dataclass(frozen=True)
class Table:
    columns: list[str]
    rows: list[list[str]]
    caption: str = ""
    highlight: tuple[int, ...] = ()
    numeric: tuple[int, ...] = ()  # column indices aligned right


@dataclass(frozen=True)
class Figure:
    name: str  # file stem in Markdown output; id in HTML
    svg: str
    caption: str
    alt: str


@dataclass(frozen=True)
class Bullets:
    items: list[str]


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    blocks: list = field(default_factory=list)


@dataclass(frozen=True)
class Document:
    title: str
    kind: str  # "budget", "fit", "sweep"
    summary: str
    sections: list[Section]
    version: str = __version__


# ------------------------------------------------------------------------------------------ format


def sci(x: float | None) -> str:
    """``1.23e+10`` style, or ``-`` for None/NaN."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{x:.3g}"


def pct(x: float | None, digits: int = 1) -> str:
    """A fraction as a percentage (``0.6312`` → ``63.1 %``)."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{100 * x:.{digits}f} %"


def count(x: float | None) -> str:
    """A sample count, human-sized (``4.28e8`` → ``428M``)."""
    if x is None:
        return "-"
    x = float(x)
    for div, unit in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:.3g}{unit}"
    return f"{x:.3g}"


def hours(h: float | None) -> str:
    if h is None:
        return "-"
    return f"{h:.3g}"


def interval(r: dict) -> str:
    return f"{pct(r['predicted_top1'])} [{pct(r['ci_low'])}, {pct(r['ci_high'])}]"


def _config(r: dict) -> str:
    strat = r["strategy"] + (f" (mask {r.get('flip_mask_ratio', 0.5):.0%})" if r["strategy"] == "flip" else "")
    ep = float(r.get("epochs") or float(r["samples_seen"]) / float(r["unique_samples"]))
    return (f"{r['model']} {strat} on the top {float(r['quality_fraction']):.0%} of the pool "
            f"({count(r['unique_samples'])} unique samples), {count(r['samples_seen'])} samples seen "
            f"({ep:.3g} epoch{'' if abs(ep - 1) < 1e-9 else 's'})")


def _at(curve, x: float) -> int:
    return int(np.argmin(np.abs(np.log(np.asarray(curve.x, dtype=float)) - math.log(x))))


# ------------------------------------------------------------------------------------------ budget


def budget_document(d: BudgetData, *, top: int = 10) -> Document:
    b, c, rec = d.budget, d.conventions, d.recommended
    ranked = d.ranked
    tied = [r for r in ranked if r.get("tied") and not r.get("recommended")]
    lead = (f"Recommended: {_config(rec)} — predicted zero-shot top-1 {interval(rec)}, best in "
            f"{pct(rec['p_best'], 0)} of draws (parameters, assumptions, model discrepancy), "
            f"{hours(rec['gpu_hours'])} {c['gpu']}-hours.")
    if tied:
        lead += f" {len(tied)} other row{'s are' if len(tied) != 1 else ' is'} tied with it."
    sections = []

    conv_rows = [
        ["paper (forward GFLOPs × samples seen)", f"{sci(c['gflops'])} GFLOPs"],
        ["FLOPs (= 1e9 × GFLOPs)", f"{sci(c['flops'])} FLOPs"],
        ["MACs (Cherti et al., DataComp; FLOPs / 2)", f"{sci(c['macs'])} MACs"],
        ["training FLOPs (3 × forward)", f"{sci(c['train_flops'])} FLOPs"],
        [f"GPU-hours on {c['gpu']} at {c['mfu']:.0%} MFU", f"{hours(c['gpu_hours'])} GPU-hours"],
    ]
    blocks: list = [Table(["convention", "budget"], conv_rows, caption=f"The budget, given as {c['given_as']}, "
                          "in every convention.", numeric=(1,)),
                    Para(f"Scale: {d.position}.")]
    blocks += [Para(w, "warning") for w in d.warnings]
    sections.append(Section("budget", "The budget", blocks))

    shown = ranked[:top]
    fig = figures.interval_plot(shown)
    runner = ranked[1] if len(ranked) > 1 else None
    cap = (f"The top {len(shown)} of {len(ranked)} feasible configurations by predicted zero-shot top-1, with 95 % "
           f"intervals. Row 1 ({rec['model']} {rec['strategy']}, q={rec['quality_fraction']:g}) predicts "
           f"{interval(rec)}")
    if runner is not None:
        cap += (f"; row 2 ({runner['model']} {runner['strategy']}, q={runner['quality_fraction']:g}) "
                f"{interval(runner)}")
    cap += (f". Rows marked = are tied with the best ({len(tied)} here); * marks the recommendation "
            f"(best in {pct(rec['p_best'], 0)} of draws: parameters, assumptions, model discrepancy).")
    table_rows, hl = [], []
    for i, r in enumerate(shown):
        if r.get("recommended"):
            hl.append(i)
        table_rows.append([
            f"{'*' if r.get('recommended') else '=' if r.get('tied') else ''}{i + 1}", r["model"], r["strategy"],
            f"{r['quality_fraction']:g}", count(r["unique_samples"]), count(r["samples_seen"]), f"{r['epochs']:.3g}",
            sci(r["total_gflops"]), hours(r["gpu_hours"]),
            ("~" if r.get("extrapolation") else "") + interval(r), pct(r.get("p_best"), 0), r["limited_by"]])
    sections.append(Section("recommendation", "The recommendation", [
        Para(lead, "lead"),
        Figure("top-rows", fig, cap, f"Interval plot of the top {len(shown)} configurations"),
        Table(["#", "model", "strategy", "quality", "unique", "seen", "epochs", "total GFLOPs",
               f"{c['gpu']}-h", "top-1 (95 % CI)", "p best", "limited by"], table_rows,
              caption=f"Top {len(shown)} rows (~: outside the fitted compute range, an extrapolation).",
              highlight=tuple(hl), numeric=(0, 3, 4, 5, 6, 7, 8, 9, 10)),
        Para(f"Fit: {d.law_name}. Terms the recommendation rests on: "
             f"{', '.join(rec.get('finding_terms') or []) or 'none'}.", "note"),
    ]))

    # accuracy against compute
    fr = d.frontier
    i_b = _at(fr, b.gflops) if len(fr.x) else None
    at_budget = []
    for cv in d.model_curves:
        j = _at(cv, b.gflops)
        at_budget.append((cv.top1[j], cv))
    at_budget.sort(key=lambda t: -t[0])
    parts = [f"{cv.key[0]} {pct(cv.top1[_at(cv, b.gflops)])}" for _, cv in at_budget]
    lo, hi = d.compute_range_gflops
    cap = (f"Predicted zero-shot top-1 against total compute for each model ({rec['strategy']}, top "
           f"{rec['quality_fraction']:.0%} of the pool), 95 % bands, from {sci(float(d.compute_grid_gflops[0]))} to "
           f"{sci(float(d.compute_grid_gflops[-1]))} GFLOPs. At the budget ({sci(b.gflops)} GFLOPs): "
           f"{'; '.join(parts)}.")
    if i_b is not None:
        cap += (f" The dashed frontier (best of every model and strategy) reaches {pct(fr.top1[i_b])} there "
                f"[{pct(fr.ci_low[i_b])}, {pct(fr.ci_high[i_b])}].")
    cap += (f" Grey points: the {len(d.published.x)} published runs behind the fit; shaded: the fitted compute range "
            f"({sci(lo)}–{sci(hi)} GFLOPs); dotted: the data pool, not compute, limits the run.")
    winners = [[sci(a), sci(z), w] for a, z, w in d.frontier_winners]
    sections.append(Section("compute", "Accuracy against compute", [
        Figure("compute", figures.compute_plot(d.model_curves, budget_gflops=b.gflops, frontier=fr,
                                               points=d.published, fit_range=d.compute_range_gflops),
               cap, "Predicted accuracy against compute per model with bands, the budget and the frontier"),
        Table(["from GFLOPs", "to GFLOPs", "best configuration"], winners,
              caption="The compute-optimal frontier: which model and strategy is best over each compute range "
                      f"(top {rec['quality_fraction']:.0%} of the pool, log-spaced grid of {len(d.compute_grid_gflops)} "
                      "points).", numeric=(0, 1)),
    ]))

    # quality and repetition
    qc, ec = d.quality_curve, d.epochs_curve
    qi = int(np.argmax(qc.top1))
    q_full = int(np.argmin(np.abs(qc.x - 1.0)))
    q_cap = (f"Predicted top-1 of {rec['model']} {rec['strategy']} at this budget against the quality fraction "
             f"(top share of the {count(d.options.pool_size)}-pair pool): best at q={qc.x[qi]:g} with "
             f"{pct(qc.top1[qi])} [{pct(qc.ci_low[qi])}, {pct(qc.ci_high[qi])}], against {pct(qc.top1[q_full])} on "
             f"the whole pool (q={qc.x[q_full]:g}). The recommended q={rec['quality_fraction']:g} is marked.")
    ei = int(np.argmax(ec.top1))
    e_cap = (f"Predicted top-1 of {rec['model']} {rec['strategy']} at {count(rec['samples_seen'])} samples seen "
             f"(this budget) against epochs over a smaller subset of the top {rec['quality_fraction']:.0%}: "
             f"{pct(ec.top1[0])} at {ec.x[0]:g} epoch(s), {pct(ec.top1[-1])} at {ec.x[-1]:g}; best "
             f"{pct(ec.top1[ei])} at {ec.x[ei]:g}. Dotted: beyond --max-epochs {d.options.max_epochs:g}.")
    sections.append(Section("quality", "Data quality and repetition at this budget", [
        Figure("quality", figures.curve_plot(qc, xlabel="quality fraction (top share of the pool)",
                                             mark_x=float(rec["quality_fraction"])), q_cap,
               "Predicted accuracy against quality fraction at this budget"),
        Figure("epochs", figures.curve_plot(ec, xlabel="epochs (passes over the unique samples)",
                                            mark_x=float(rec["epochs"]), log_x=True), e_cap,
               "Predicted accuracy against epochs at this budget"),
    ]))

    # strategies
    sc = d.strategy_curves
    if sc:
        grid = d.compute_grid_gflops
        wins = []
        for k in range(len(grid)):
            best = None
            for cv in sc:
                idx = np.flatnonzero(np.isclose(cv.x, grid[k]))
                if len(idx) and (best is None or cv.top1[idx[0]] > best[0]):
                    best = (cv.top1[idx[0]], cv.key[1])
            if best:
                if wins and wins[-1][2] == best[1]:
                    wins[-1][1] = grid[k]
                else:
                    wins.append([grid[k], grid[k], best[1]])
        at = sorted(((cv.top1[_at(cv, b.gflops)], cv.key[1]) for cv in sc), reverse=True)
        s_cap = (f"{rec['model']} with each strategy against compute (top {rec['quality_fraction']:.0%} of the pool), "
                 f"95 % bands. At the budget: " + "; ".join(f"{s} {pct(v)}" for v, s in at) + ". Best by range: "
                 + "; ".join(f"{s} from {sci(a)} to {sci(z)} GFLOPs" for a, z, s in wins) + ".")
        sections.append(Section("strategies", "Strategies against compute", [
            Figure("strategies", figures.compute_plot(sc, budget_gflops=b.gflops, fit_range=d.compute_range_gflops),
                   s_cap, f"Predicted accuracy of {rec['model']} per training strategy against compute"),
        ]))

    sections.append(Section("assumptions", "Assumptions and validation",
                            _assumption_blocks(d.assumptions, d.validation, rec.get("finding_terms") or [])
                            + _discrepancy_note(d.discrepancy)))

    # data limits
    lim = [r for r in d.ranked if r["limited_by"] == "data"]
    rows = [[r["model"], r["strategy"], f"{r['quality_fraction']:g}", sci(r["gflops_per_sample"]),
             sci(r["data_limit_gflops"]), "yes" if r["limited_at_budget"] else "no"] for r in d.data_limits]
    text = (f"{len(lim)} of {len(d.ranked)} feasible rows are limited by the data pool at this budget "
            f"(more than {d.options.max_epochs:g} passes over their subset of a {count(d.options.pool_size)}-pair pool "
            "would be needed to spend it)." if lim else
            f"No row is limited by the data pool at this budget: every configuration spends the budget within "
            f"{d.options.max_epochs:g} passes over its subset of the {count(d.options.pool_size)}-pair pool.")
    sections.append(Section("data-limit", "Where the data pool, not compute, is the limit", [
        Para(text),
        Table(["model", "strategy", "quality", "GFLOPs/sample", "data-limited above (GFLOPs)", "at this budget"],
              rows, caption=f"The compute beyond which each model ({rec['strategy']}, q={rec['quality_fraction']:g}) "
                            f"would need more than {d.options.max_epochs:g} epochs: GFLOPs/sample × "
                            f"{d.options.max_epochs:g} × pool × quality.", numeric=(2, 3, 4)),
    ]))
    sections.append(Section("sources", "Sources", [Bullets([d.law_name] + list(d.sources))]))
    summary = f"{sci(b.gflops)} GFLOPs ({hours(c['gpu_hours'])} {c['gpu']}-hours): {rec['model']} {rec['strategy']}, " \
              f"q={rec['quality_fraction']:g}, {interval(rec)}"
    return Document(title=f"clipbudget report: a budget of {sci(b.gflops)} GFLOPs", kind="budget", summary=summary,
                    sections=sections)


def _discrepancy_note(disc: dict | None) -> list:
    if not disc or not disc.get("sigma_log_error"):
        return []
    known = disc.get("known_source")
    own = (f" A run of a source the fit has rows of takes sigma = {float(known['sigma_log_error']):.3g} "
           f"({known.get('method')}, n = {known.get('n')}).") if known else ""
    return [Para(f"The 95 % intervals include a model-discrepancy term: sigma = {float(disc['sigma_log_error']):.3g} on "
                 f"the log-error scale ({disc.get('method', 'calibrated on held-out results')}"
                 f"{', n = ' + str(disc['n']) if disc.get('n') else ''}).{own}", "note")]


def _assumption_blocks(assumptions: Sequence[dict], validation: Sequence[dict], used: Sequence[str]) -> list:
    rows = []
    for a in assumptions:
        v = a.get("value")
        rng = a.get("range")
        rows.append([a["name"], "-" if v is None else f"{float(v):.4g}",
                     "fitted" if a.get("fitted") else "assumed" + (f", drawn from [{rng[0]:.3g}, {rng[1]:.3g}]"
                                                                   if rng else ""),
                     "yes" if a["name"] in used else "", a.get("statement", ""), a.get("citation", "")])
    vrows = [[v["split"].replace("_", " "), str(v["n"]), sci(v["mae_points"]), sci(v["rmse_points"]),
              pct(v["coverage"], 0) if v.get("coverage") is not None else "not reported"] for v in validation]
    blocks = [
        Para(f"The scaling law has {len(assumptions)} term parameters beyond its core: "
             f"{sum(1 for a in assumptions if not a.get('fitted'))} are stated assumptions (no published number "
             "fixes them; every bootstrap draw samples them from their range), the rest are fitted. The "
             f"recommendation rests on: {', '.join(used) or 'no assumption'}."),
        Table(["term", "value", "status", "used by the recommendation", "assumption", "citation"], rows,
              caption="Assumptions behind the predictions, with values and citations.", numeric=(1,)),
    ]
    if vrows:
        blocks.append(Table(["held-out split", "n", "MAE (points)", "RMSE (points)", "95 % coverage"], vrows,
                            caption="Held-out validation of the fit: errors in points of top-1 on results the fit "
                                    "did not see, and the share inside their 95 % interval.", numeric=(1, 2, 3, 4)))
    else:
        blocks.append(Para("The fit reports no held-out validation.", "note"))
    return blocks


# --------------------------------------------------------------------------------------------- fit


def fit_document(d: FitData) -> Document:
    lo, hi = d.compute_range_gflops
    sections = []
    head = [Para(f"{d.law_name}: the {d.law_form} form fitted to {d.n_points if d.n_points is not None else '?'} "
                 f"results from {len(d.sources)} source(s), spanning {sci(lo)}–{sci(hi)} GFLOPs "
                 "(paper convention).", "lead")]
    head += [Para(w, "warning") for w in d.warnings]
    sections.append(Section("summary", "The fit", head))
    prow = [[p["name"], f"{p['value']:.4g}",
             f"{p['ci_low']:.4g} – {p['ci_high']:.4g}" if p["ci_low"] is not None else "-", p["status"]]
            for p in d.parameters]
    n_free = sum(1 for p in d.parameters if p["status"] == "fitted")
    sections.append(Section("parameters", "Parameters", [
        Table(["parameter", "value", "95 % interval", "status"], prow,
              caption=f"{len(prow)} parameters, {n_free} fitted (bootstrap 95 % percentile intervals), the rest fixed.",
              numeric=(1, 2)),
    ]))
    if d.residuals:
        parts = []
        rrows = []
        for s, r in d.residuals.items():
            parts.append(f"{s.replace('published:', '')} {np.mean(np.abs(r)):.2f}")
            rrows.append([s, str(len(r)), f"{np.mean(r):+.2f}", f"{np.mean(np.abs(r)):.2f}",
                          pct(d.coverage_in_sample.get(s), 0)])
        allr = np.concatenate(list(d.residuals.values()))
        cap = (f"Predicted minus observed top-1 (points) for the {len(allr)} results behind the fit, by source: "
               f"mean absolute residual {np.mean(np.abs(allr)):.2f} points overall; by source: {'; '.join(parts)}.")
        sections.append(Section("residuals", "Residuals by source", [
            Figure("residuals", figures.residual_plot(d.residuals), cap, "Residuals of the fit by source"),
            Table(["source", "n", "mean (points)", "MAE (points)", "inside 95 % interval"], rrows,
                  caption="In-sample residuals by source.", numeric=(1, 2, 3, 4)),
        ]))
    else:
        sections.append(Section("residuals", "Residuals by source", [
            Para("The results behind this fit are no longer readable (its input tables moved), so residuals "
                 "cannot be shown.", "note")]))
    vrows = [[v["split"].replace("_", " "), str(v["n"]), sci(v["mae_points"]), sci(v["rmse_points"]),
              pct(v["coverage"], 0) if v.get("coverage") is not None else "not reported"] for v in d.validation]
    sections.append(Section("validation", "Held-out validation", [
        Table(["held-out split", "n", "MAE (points)", "RMSE (points)", "95 % coverage"], vrows,
              caption="Errors on results the fit did not see.", numeric=(1, 2, 3, 4)) if vrows else
        Para("The fit reports no held-out validation.", "note"),
    ] + ([Para(f"Outlier sensitivity: refitting without each of the {len(d.sensitivity.get('dropped_rows', []))} "
               f"largest-residual points moves predictions by at most "
               f"{d.sensitivity.get('max_prediction_change_points', 0.0):.2f} points.", "note")]
         if d.sensitivity.get("dropped_rows") else []) + _discrepancy_note(d.discrepancy)))
    if d.model_curves:
        mid = math.sqrt(max(lo, 1e-9) * hi)
        parts = [f"{cv.key[0]} {pct(cv.top1[_at(cv, mid)])}" for cv in d.model_curves]
        cap = (f"The fit's curves for {len(d.model_curves)} models (CLIP, one epoch, whole pool) with 95 % bands "
               f"against compute, and the {len(d.points.x)} results behind the fit as points. At "
               f"{sci(mid)} GFLOPs: {'; '.join(parts)}.")
        sections.append(Section("curves", "Curves", [
            Figure("curves", figures.compute_plot(d.model_curves, points=d.points, fit_range=d.compute_range_gflops),
                   cap, "Fitted accuracy against compute per model")]))
    sections.append(Section("assumptions", "Assumptions", _assumption_blocks(d.assumptions, [], [])[:2]))
    sections.append(Section("sources", "Sources", [Bullets(d.sources or ["(none recorded)"])]))
    name = d.path or "the built-in prior"
    return Document(title=f"clipbudget report: fit {name}", kind="fit",
                    summary=f"{d.law_form} form, {d.n_points} points", sections=sections)


# ------------------------------------------------------------------------------------------- sweep


def sweep_document(d: SweepData, *, top: int = 10) -> Document:
    led = d.ledger
    sections = []
    done = d.counts.get("completed", 0)
    n = len(d.runs)
    lead = (f"{done} of {n} runs completed; {sci(led['spent_train_flops'])} of {sci(led['planned_train_flops'])} "
            f"planned training FLOPs spent, {sci(led['remaining_train_flops'])} remaining.")
    lrows = [["training FLOPs", sci(led["planned_train_flops"]), sci(led["spent_train_flops"]),
              sci(led["remaining_train_flops"])],
             ["GPU-hours", hours(led["planned_gpu_hours"]), hours(led["spent_gpu_hours"]),
              hours(led["remaining_gpu_hours"])],
             ["wall-clock hours", "-", hours(led.get("wall_hours")), "-"]]
    cap = (f"The sweep's budget: planned {sci(led['planned_train_flops'])} training FLOPs "
           f"({hours(led['planned_gpu_hours'])} GPU-hours), spent {sci(led['spent_train_flops'])} "
           f"({hours(led['spent_gpu_hours'])} GPU-hours recorded by the runs), remaining "
           f"{sci(led['remaining_train_flops'])} ({hours(led['remaining_gpu_hours'])} GPU-hours).")
    sections.append(Section("ledger", "The ledger", [
        Para(lead, "lead"),
        Figure("ledger", figures.ledger_plot(led), cap, "Planned, spent and remaining compute of the sweep"),
        Table(["", "planned", "spent", "remaining"], lrows, caption="Planned, spent and remaining compute.",
              numeric=(1, 2, 3)),
    ]))
    states = ", ".join(f"{k} {v}" for k, v in sorted(d.counts.items()))
    rrows = [[r["run_id"], r["model"], r["strategy"], count(r["samples_seen"]), r["state"], str(r["attempts"]),
              (r.get("error") or "")[:160]] for r in d.runs]
    sections.append(Section("runs", "Every run", [
        Table(["run", "model", "strategy", "seen", "state", "attempts", "error"], rrows,
              caption=f"{n} runs: {states}.", numeric=(3, 5)),
    ]))
    m = d.measured
    if m:
        meas = np.asarray([r["measured_top1"] for r in m])
        pred = np.asarray([r["predicted_top1"] for r in m])
        inside = sum(1 for r in m if r["ci_low"] <= r["measured_top1"] <= r["ci_high"])
        mae = float(np.mean(np.abs(meas - pred)) * 100)
        evals = sorted({str(r.get("eval_dataset") or "?") for r in m})
        cap = (f"Measured against predicted zero-shot top-1 for the {len(m)} completed runs, as predicted by "
               f"{d.law_name}: {inside} of {len(m)} inside their 95 % interval, mean absolute error {mae:.2f} "
               f"points. Measured on {', '.join(evals)}; that prediction is for the fit's evaluation set, so a "
               "different set shifts the level, not the shape.")
        if all(r.get("refit_top1") is not None for r in m):
            rmae = float(np.mean([abs(r["measured_top1"] - r["refit_top1"]) for r in m]) * 100)
            rin = sum(1 for r in m if r["refit_low"] <= r["measured_top1"] <= r["refit_high"])
            cap += (f" The refreshed fit (in sample) is off by {rmae:.2f} points on average, {rin} of {len(m)} "
                    "inside its interval.")
        mrows = [[r["run_id"], r["model"], r["strategy"], f"{r['quality_fraction'] or 1:g}", count(r["samples_seen"]),
                  sci(r["total_gflops"]), pct(r["measured_top1"]), interval(r),
                  f"{pct(r['refit_top1'])} [{pct(r['refit_low'])}, {pct(r['refit_high'])}]"
                  if r.get("refit_top1") is not None else "-"] for r in m]
        sections.append(Section("measured", "Measured against predicted", [
            Figure("measured", figures.measured_plot(m), cap, "Measured against predicted accuracy per run"),
            Table(["run", "model", "strategy", "quality", "seen", "total GFLOPs", "measured", "predicted (95 % CI)",
                   "refreshed fit (95 % CI)"], mrows, caption="Completed runs.", numeric=(3, 4, 5, 6, 7, 8)),
        ]))
    blocks: list = []
    if d.refit_name:
        blocks.append(Para(f"{d.refit_name}: the scaling law refitted with this sweep's completed runs, as "
                           f"'clipbudget fit {d.sweep_dir}/results' fits them.", "lead"))
        prow = [[p["name"], f"{p['value']:.4g}",
                 f"{p['ci_low']:.4g} – {p['ci_high']:.4g}" if p["ci_low"] is not None else "-", p["status"]]
                for p in d.refit_parameters]
        blocks += [Para(w, "warning") for w in d.refit_warnings]
        blocks.append(Table(["parameter", "value", "95 % interval", "status"], prow,
                            caption="Parameters of the refreshed fit.", numeric=(1, 2)))
        vrows = [[v["split"].replace("_", " "), str(v["n"]), sci(v["mae_points"]), sci(v["rmse_points"]),
                  pct(v["coverage"], 0) if v.get("coverage") is not None else "not reported"]
                 for v in d.refit_validation]
        if vrows:
            blocks.append(Table(["held-out split", "n", "MAE (points)", "RMSE (points)", "95 % coverage"], vrows,
                                caption="Held-out validation of the refreshed fit.", numeric=(1, 2, 3, 4)))
    else:
        blocks.append(Para(d.refit_note or "The fit was not refreshed.", "note"))
    sections.append(Section("refit", "The fit, refreshed", blocks))
    rec_blocks: list = []
    if d.recommendation:
        rec = d.recommendation[0]
        rec_blocks.append(Para(
            f"At this sweep's largest run's compute ({sci(d.recommendation_budget_gflops)} GFLOPs), over its models, "
            f"strategies and quality fractions, the {'refreshed fit' if d.refit_name else 'fit'} recommends "
            f"{_config(rec)}: {interval(rec)}, best in {pct(rec['p_best'], 0)} of draws.", "lead"))
        rows = [[f"{'*' if r.get('recommended') else '=' if r.get('tied') else ''}{i + 1}", r["model"], r["strategy"],
                 f"{r['quality_fraction']:g}", count(r["samples_seen"]), f"{r['epochs']:.3g}", interval(r),
                 pct(r["p_best"], 0)] for i, r in enumerate(d.recommendation[:top])]
        rec_blocks.append(Table(["#", "model", "strategy", "quality", "seen", "epochs", "top-1 (95 % CI)", "p best"],
                                rows, caption="Ranked configurations at that compute.", highlight=(0,),
                                numeric=(0, 3, 4, 5, 6, 7)))
    else:
        rec_blocks.append(Para("No recommendation could be made from these runs.", "note"))
    rec_blocks += [Para(w, "warning") for w in d.warnings]
    sections.append(Section("recommendation", "The recommendation that follows", rec_blocks))
    title = d.sweep_name or d.sweep_id[:12]
    return Document(title=f"clipbudget report: sweep {title}", kind="sweep",
                    summary=f"{done} of {n} runs completed", sections=sections)
