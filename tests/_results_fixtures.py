"""Helpers for the results tests (module-level so that multiprocessing workers can import them)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any


def make_row(run_id: str, status: str = "completed", **extra: Any) -> dict[str, Any]:
    """A plausible result row of the v1 schema."""
    row: dict[str, Any] = {
        "run_id": run_id,
        "sweep_id": "sweep0001",
        "model": "ViT-B-32",
        "strategy": "clip",
        "samples_seen": 1_000_000,
        "unique_samples": 500_000,
        "quality_fraction": 0.4,
        "epochs": 2.0,
        "batch_size": 256,
        "lr": 5e-4,
        "gflops_per_sample": 14.78,
        "total_gflops": 14.78e6,
        "status": status,
        "started_at": "2026-11-28T12:00:00+00:00",
        "finished_at": "2026-11-28T13:00:00+00:00",
        "hostname": "node1",
    }
    if status == "completed":
        row["zeroshot_top1"] = 0.25
    else:
        row["error"] = "RuntimeError: boom"
    row.update(extra)
    return row


def payload(run_id: str, k: int) -> str:
    """A large, checkable payload: torn writes would break it."""
    return (f"{run_id}:{k};" * 4000)[:50_000]


def concurrent_writer(root: str, worker: int, n_rows: int, barrier: Any) -> list[str]:
    """Write ``n_rows`` rows into the store at ``root``, starting together with the other workers."""
    from results.store import ResultStore

    store = ResultStore(root)
    barrier.wait(timeout=120)
    names = []
    for k in range(n_rows):
        rid = f"w{worker:02d}-r{k}"
        path = store.write(make_row(rid, config_json=payload(rid, k), steps=k))
        names.append(path.name)
    return names


def killed_writer(root: str, marker: str) -> None:
    """Write one row but stop forever between fsync and rename (the parent SIGKILLs this process)."""
    from results import store as store_mod

    def hang(tmp: Path) -> None:
        Path(marker).write_text(str(tmp))
        while True:
            time.sleep(1)

    store_mod._test_hooks["before_rename"] = hang
    store_mod.ResultStore(root).write(make_row("killed-run", config_json=payload("killed-run", 0)))


def reader_loop(root: str, stop_file: str, out_file: str) -> None:
    """Read the store repeatedly while writers write; record the counts and any skipped file."""
    from results.store import ResultStore

    store = ResultStore(root)
    reads = skipped = torn = 0
    counts = []
    while True:  # at least one read, and one more after the writers are done
        done = os.path.exists(stop_file)
        df = store.read(latest=False)
        counts.append(len(df))
        skipped += len(store.skipped)
        reads += 1
        for rid, steps, cfg in zip(df["run_id"], df["steps"], df["config_json"]):
            torn += cfg != payload(rid, int(steps))
        if done:
            break
    Path(out_file).write_text(f"{reads} {skipped} {torn} {max(counts) if counts else 0}")


def endless_writer(root: str, marker: str) -> None:
    """Write rows as fast as possible until killed (the kill lands at an arbitrary point of a write)."""
    from results.store import ResultStore

    store = ResultStore(root)
    k = 0
    while True:
        rid = f"endless-{k}"
        store.write(make_row(rid, config_json=payload(rid, k), steps=k))
        if k == 0:
            Path(marker).write_text("started")
        k += 1
