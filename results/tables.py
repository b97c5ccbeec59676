"""Read a results table from wherever it lives: a CSV file, a parquet file, a store or a sweep folder.

``clipbudget fit`` and ``report`` take any of these; published tables can be fitted as they are.

Example:
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = p.write_text("model,samples_seen,unique_samples,zeroshot_top1\\nViT-B-32,2.5e9,4e8,0.571\\n")
    >>> df = read_table(p, required=("model", "zeroshot_top1"))
    >>> df.loc[0, "model"], float(df.loc[0, "zeroshot_top1"])
    ('ViT-B-32', 0.571)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from results.errors import ResultsError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

#: File suffixes read_table understands (a folder is read as a results store).
CSV_SUFFIXES = (".csv", ".csv.gz", ".tsv")
PARQUET_SUFFIXES = (".parquet", ".pq")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def read_table(
    path: str | os.PathLike[str], *, required: Sequence[str] = (), latest: bool = True
) -> pd.DataFrame:
    """Read a results table as a DataFrame.

    Args:
        path: a ``.csv``/``.csv.gz``/``.tsv`` or ``.parquet``/``.pq`` file; a results-store folder
            (``*.parquet`` rows, see :class:`results.store.ResultStore`); or a sweep folder holding
            ``results/``.
        required: columns that must be present (the error names the missing ones and the ones found).
        latest: for a store, one row per run_id (see :meth:`ResultStore.read`).

    Raises:
        ResultsError: the path is missing, unreadable, of an unknown kind, has no rows, or lacks a
            ``required`` column.
    """
    import pandas as pd

    p = Path(path)
    if not p.exists():
        raise ResultsError(f"no results table at {p} (give a .csv or .parquet file or a results folder)")
    name = p.name.lower()
    if p.is_dir():
        from results.store import ResultStore

        root = p / "results" if (p / "results").is_dir() and not any(p.glob("*.parquet")) else p
        store = ResultStore(root)
        df = store.read(latest=latest)
        if not len(df):
            extra = f" ({len(store.skipped)} unreadable file(s) skipped)" if store.skipped else ""
            raise ResultsError(f"results folder {root} holds no result rows{extra}")
    elif name.endswith(CSV_SUFFIXES):
        try:
            df = pd.read_csv(p, sep="\t" if name.endswith(".tsv") else ",")
        except pd.errors.EmptyDataError:
            raise ResultsError(f"results table {p} is empty") from None
        except (OSError, ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise ResultsError(f"cannot read results table {p}: {_first_line(exc)}") from None
    elif name.endswith(PARQUET_SUFFIXES):
        try:
            import pyarrow.parquet as pq

            df = pq.read_table(p).to_pandas()
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a bad file
            raise ResultsError(f"cannot read results table {p}: {_first_line(exc)}") from None
    else:
        raise ResultsError(
            f"unknown results table type {p.name!r}: use {', '.join(CSV_SUFFIXES + PARQUET_SUFFIXES)} "
            "or a results folder"
        )
    if not len(df):
        raise ResultsError(f"results table {p} has no rows")
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ResultsError(
            f"results table {p} lacks column(s) {', '.join(missing)} (has: {', '.join(map(str, df.columns))})"
        )
    return df


__all__ = ["read_table"]
