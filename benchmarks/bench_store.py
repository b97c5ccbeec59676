"""Speed of the results store and of grid files, as ratios measured side by side in one run.

    .venv/bin/python benchmarks/bench_store.py [--rows 200] [--repeat 5]

Prints medians (ms) and ratios:

* store write: one atomic row (temp + fsync + rename + fsync dir) vs a plain ``pq.write_table``
  of the same row (the price of durability);
* store read of N one-row files, without and with the consolidated snapshot, vs ``pd.read_parquet`` of
  one N-row file (the price of one file per run);
* ``completed_run_ids()`` (file names only) vs the full ``read()``;
* ``load_grid`` of an N-run grid vs ``yaml.safe_load`` of the same text (the price of validation),
  and ``write_grid`` of N configs.

Timings on a shared machine are noisy; the ratios are the point.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def _median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq
    import yaml

    from results.schema import arrow_schema, validate_row
    from results.store import ResultStore
    from runners.config import RunConfig
    from runners.gridfile import load_grid, write_grid

    tmp = Path(tempfile.mkdtemp(prefix="bench_store_"))
    store = ResultStore(tmp / "results")

    def row(i: int) -> dict:
        return {"run_id": f"run{i:06d}", "model": "ViT-B-32", "strategy": "clip", "samples_seen": 10**6,
                "status": "completed", "zeroshot_top1": 0.3, "finished_at": "2026-01-01T00:00:00Z",
                "config_json": "{}"}  # fmt: skip

    counter = iter(range(10**9))
    plain_dir = tmp / "plain"
    plain_dir.mkdir()
    schema = arrow_schema()

    def plain_write():
        i = next(counter)
        pq.write_table(pa.Table.from_pylist([validate_row(row(i))], schema=schema), plain_dir / f"{i}.parquet")

    store.write(row(10**8))  # warm-up (first use imports pandas inside pyarrow)
    w_store = _median_ms(lambda: store.write(row(next(counter))), args.repeat * 4)
    w_plain = _median_ms(plain_write, args.repeat * 4)
    print(f"write one row: store {w_store:.2f} ms, plain pq.write_table {w_plain:.2f} ms, ratio {w_store / w_plain:.2f}")

    store = ResultStore(tmp / "results_n")
    for i in range(args.rows):
        store.write(row(i))
    one = tmp / "one.parquet"
    pq.write_table(pa.Table.from_pylist([validate_row(row(i)) for i in range(args.rows)], schema=schema), one)
    r_cold = _median_ms(lambda: store.read(consolidate=False), args.repeat)
    store.consolidate()
    store.write(row(10**7))  # one file newer than the snapshot
    r_warm = _median_ms(lambda: store.read(), args.repeat)
    r_one = _median_ms(lambda: pd.read_parquet(one), args.repeat)
    r_names = _median_ms(lambda: store.completed_run_ids(), args.repeat)
    print(f"read {args.rows} rows: one parquet file {r_one:.1f} ms; store without snapshot (one file per row) "
          f"{r_cold:.1f} ms, ratio {r_cold / r_one:.1f}; store with snapshot + 1 new file {r_warm:.1f} ms, "
          f"ratio {r_warm / r_one:.1f}")  # fmt: skip
    print(f"completed_run_ids (file names only) {r_names:.2f} ms; the full read takes {r_warm / r_names:.0f}x as long")

    configs = [
        RunConfig(model=m, strategy=s, samples_seen=10**6 * (1 + i), train_data="/d/shards", eval_data="/d/eval")
        for i in range(max(1, args.rows // 8))
        for m in ("ViT-B-32", "RN50")
        for s in ("clip", "flip", "slip", "clip_aug")
    ][: args.rows]
    path = tmp / "grid.yaml"
    w_grid = _median_ms(lambda: write_grid(path, configs), args.repeat)
    text = path.read_text()
    l_grid = _median_ms(lambda: load_grid(path), args.repeat)
    l_yaml = _median_ms(lambda: yaml.safe_load(text), args.repeat)
    print(f"grid of {len(configs)} runs: write_grid {w_grid:.1f} ms; load_grid {l_grid:.1f} ms vs yaml.safe_load "
          f"{l_yaml:.1f} ms, ratio {l_grid / l_yaml:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
