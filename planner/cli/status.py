"""``clipbudget status DIR``: the state of every run of a sweep and its budget ledger.

Works from any shell, after the submitting process is gone: it re-attaches to the jobs from the
sweep's manifest (``sacct`` for SLURM, the job processes for local runs) and reads the result rows.
States: pending, running, requeued, completed, failed, cancelled, unknown. The ledger gives training
FLOPs and GPU-hours planned vs spent vs remaining.

Example::

    clipbudget status sweeps/s1
    clipbudget status sweeps/s1 --watch          # refresh every 5 s with a progress bar until done
    clipbudget status sweeps/s1 --format json
"""

from __future__ import annotations

import argparse
import json
import sys
import time

_STYLE = {
    "completed": "green", "failed": "red", "cancelled": "yellow", "running": "cyan",
    "requeued": "magenta", "pending": "white", "unknown": "red",
}  # fmt: skip


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("status", help="state of every run of a sweep, and its budget ledger",
                              description=__doc__.split("\n\n")[0].replace("``", ""))
    p.add_argument("sweep_dir", metavar="DIR")
    from planner.cli._format import positive_number

    p.add_argument("--watch", nargs="?", const=5.0, type=positive_number, metavar="SECONDS",
                   help="refresh (default every 5 s) with a progress bar until no run is active")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(handler=run)
    return p


def _elapsed(s: float | None) -> str:
    if s is None:
        return "-"
    s = int(s)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def renderables(st) -> list:
    """The header line, the run table and the ledger lines of a SweepStatus, as rich renderables."""
    from rich.table import Table
    from rich.text import Text

    from planner.cli._format import human_count, sci

    counts = ", ".join(f"{n} {s}" for s, n in sorted(st.counts.items()))
    name = f" ({st.sweep_name})" if st.sweep_name else ""
    out: list = [Text(f"sweep {st.sweep_id}{name} in {st.sweep_dir}: {len(st.runs)} runs on {st.executor}: {counts}")]
    table = Table(header_style="bold")
    for label, justify in (("run_id", "left"), ("model", "left"), ("strategy", "left"), ("samples", "right"),
                           ("state", "left"), ("elapsed", "right"), ("job", "left"), ("requeues", "right"),
                           ("error", "left")):  # fmt: skip
        table.add_column(label, justify=justify, no_wrap=label != "error", overflow="fold")
    for r in st.runs:
        table.add_row(
            r.run_id, r.model, r.strategy, human_count(r.samples_seen),
            Text(r.state, style=_STYLE.get(r.state, "")), _elapsed(r.elapsed_s), r.job_id or "-",
            str(r.requeues) if r.requeues else "", Text((r.error or "")[:160]),
        )  # fmt: skip
    out.append(table)
    lg = st.ledger
    out.append(Text(
        f"budget, training FLOPs (paper convention): planned {sci(lg.planned_train_flops)}, "
        f"spent {sci(lg.spent_train_flops)}, remaining {sci(lg.remaining_train_flops)}"
    ))  # fmt: skip
    out.append(Text(
        f"GPU-hours: planned {sci(lg.planned_gpu_hours)}, spent {sci(lg.spent_gpu_hours)} (result rows), "
        f"remaining {sci(lg.remaining_gpu_hours)}; wall-clock of all attempts {sci(lg.wall_hours)} h"
    ))  # fmt: skip
    return out


def render(st, con) -> None:
    for item in renderables(st):
        con.print(item)


def run(args: argparse.Namespace) -> int:
    from runners.sweep import status

    if args.watch is None:
        st = status(args.sweep_dir)
        if args.format == "json":
            json.dump(st.to_dict(), sys.stdout, indent=1, default=str)
            sys.stdout.write("\n")
        else:
            from planner.cli._format import console

            render(st, console())
        return 0
    return _watch(args)


def _watch(args: argparse.Namespace) -> int:
    from rich.console import Group
    from rich.live import Live
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from planner.cli._format import console
    from runners.sweep import status

    con = console()
    st = status(args.sweep_dir)
    if args.format == "json":  # one JSON document per refresh, one per line
        while True:
            sys.stdout.write(json.dumps(st.to_dict(), default=str) + "\n")
            sys.stdout.flush()
            if st.done:
                return 0
            time.sleep(args.watch)
            st = status(args.sweep_dir)
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=con)  # fmt: skip
    task = progress.add_task("finished", total=len(st.runs))

    def frame(s):
        finished = sum(1 for r in s.runs if r.state in ("completed", "failed", "cancelled", "unknown"))
        progress.update(task, completed=finished, description=", ".join(f"{n} {k}" for k, n in sorted(s.counts.items())))
        return Group(*renderables(s), progress)

    with Live(frame(st), console=con, refresh_per_second=4) as live:
        while not st.done:
            time.sleep(args.watch)
            st = status(args.sweep_dir)
            live.update(frame(st))
    return 0
