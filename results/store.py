"""The results store: a folder of parquet files, one per finished attempt, written atomically.

Layout: ``ROOT/<run_id>.<status>.<uuid8>.parquet``, each holding exactly one row of the v1 schema
(:mod:`results.schema`). A file is written once and never rewritten:

1. write the row to a temporary file in the same folder (``.<final name>.<pid>.tmp``: a leading dot and
   a ``.tmp`` suffix, both ignored by readers),
2. flush and ``fsync`` it,
3. ``os.replace`` it onto its final name (atomic on POSIX within one filesystem),
4. ``fsync`` the folder so the new name survives a crash.

Any number of processes (jobs of a sweep, on one node or many sharing a POSIX filesystem) may write at
once: each writes its own uniquely named file, so no lock is needed and no row is lost. A writer killed
at any point leaves either nothing, a temp file (ignored; :meth:`ResultStore.clean_temp` removes stale
ones) or the complete file. Files that cannot be read (foreign junk, a disk error) are skipped with a
warning and counted in :attr:`ResultStore.skipped`; a broken file never makes the folder unreadable.

Reading many one-row parquet files is slow (each costs milliseconds), so the store keeps a
*consolidated snapshot*, ``ROOT/_consolidated.parquet``: every row of the files it names, written
atomically the same way. A read takes the snapshot's rows whose files still exist plus the files not in
it; :meth:`ResultStore.consolidate` (called by :meth:`ResultStore.read` when enough new files piled up)
refreshes it. The per-run files stay the truth: the snapshot is a cache that is never required,
and a stale, missing or broken snapshot only costs time. Concurrent consolidations are safe (each
writes a complete snapshot; the last rename wins).

Example:
    >>> import tempfile
    >>> store = ResultStore(tempfile.mkdtemp())
    >>> _ = store.write({"run_id": "r1", "model": "ViT-B-32", "strategy": "clip",
    ...                  "samples_seen": 1000, "status": "failed", "error": "OOM"})
    >>> _ = store.write({"run_id": "r1", "model": "ViT-B-32", "strategy": "clip",
    ...                  "samples_seen": 1000, "status": "completed", "zeroshot_top1": 0.31})
    >>> df = store.read()
    >>> len(df), df.loc[0, "status"], len(store.read(latest=False))
    (1, 'completed', 2)
    >>> sorted(store.completed_run_ids())
    ['r1']
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from results.atomic import fsync_dir
from results.errors import ResultsError
from results.schema import COLUMNS, SCHEMA_VERSION, STATUSES, arrow_schema, validate_row

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

log = logging.getLogger(__name__)

SUFFIX = ".parquet"
TEMP_SUFFIX = ".tmp"
#: The consolidated snapshot: every row of the files it names, so reading a big store opens one file
#: plus the files written since (parquet's per-file cost, ~3-10 ms for 50 columns, dominates otherwise).
SNAPSHOT = "_consolidated.parquet"
#: :meth:`ResultStore.read` refreshes the snapshot when at least this many files are not in it.
AUTO_CONSOLIDATE_MIN_NEW = 32
_FILE_COL = "_file"

#: Test hooks (tests only): ``"before_rename"`` is called with the temp path after it is fsynced and
#: before it is renamed, so a test can kill a writer at the worst moment.
_test_hooks: dict[str, Callable[[Path], None]] = {}


def is_result_file(name: str) -> bool:
    """True for a finished result file name (not a temp file, not hidden, not the snapshot)."""
    return name.endswith(SUFFIX) and not name.startswith((".", "_")) and not name.endswith(TEMP_SUFFIX)


def parse_name(name: str) -> tuple[str, str] | None:
    """``(run_id, status)`` from ``<run_id>.<status>.<uuid8>.parquet``, or None for other names."""
    if not is_result_file(name):
        return None
    parts = name[: -len(SUFFIX)].rsplit(".", 2)
    if len(parts) != 3 or parts[1] not in STATUSES or not parts[0]:
        return None
    return parts[0], parts[1]


class ResultStore:
    """A folder of one-row parquet files; see the module docstring for the layout and guarantees.

    Args:
        root: the folder (created on the first write; reading a folder that does not exist yet gives an
            empty table).
    """

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)
        #: ``(path, reason)`` of every file the last :meth:`read`/:meth:`rows_for` could not read.
        self.skipped: list[tuple[Path, str]] = []

    def __repr__(self) -> str:
        return f"ResultStore({str(self.root)!r})"

    # ------------------------------------------------------------------ writing

    def write(self, row: Mapping[str, Any]) -> Path:
        """Validate ``row`` and write it as a new file atomically; return the final path.

        Raises :class:`results.errors.SchemaError` for an invalid row (nothing is written) and
        :class:`ResultsError` when the folder is not writable.
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        clean = validate_row(row)
        schema = arrow_schema()
        table = pa.Table.from_pylist([clean], schema=schema)
        name = f"{clean['run_id']}.{clean['status']}.{uuid.uuid4().hex[:8]}{SUFFIX}"
        final = self.root / name
        tmp = self.root / f".{name}.{os.getpid()}{TEMP_SUFFIX}"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as fh:
                pq.write_table(table, fh, compression="zstd")
                fh.flush()
                os.fsync(fh.fileno())
            hook = _test_hooks.get("before_rename")
            if hook is not None:
                hook(tmp)
            os.replace(tmp, final)
        except OSError as exc:
            try:
                tmp.unlink()
            except OSError:
                pass
            raise ResultsError(f"cannot write result {name} into {self.root}: {exc.strerror or exc}") from exc
        fsync_dir(self.root)
        log.debug("wrote %s", final)
        return final

    # ------------------------------------------------------------------ listing

    def files(self) -> list[Path]:
        """Finished result files, sorted by name (temp and hidden files excluded)."""
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return []
        except NotADirectoryError:
            raise ResultsError(f"results store {self.root} is a file, not a folder") from None
        return [self.root / n for n in sorted(names) if is_result_file(n)]

    def completed_run_ids(self) -> set[str]:
        """run_ids with at least one completed attempt (from file names alone: fast, no parquet read)."""
        out = set()
        for path in self.files():
            parsed = parse_name(path.name)
            if parsed and parsed[1] == "completed":
                out.add(parsed[0])
        return out

    def run_ids(self) -> dict[str, set[str]]:
        """run_id → statuses of its finished attempts (from file names alone)."""
        out: dict[str, set[str]] = {}
        for path in self.files():
            parsed = parse_name(path.name)
            if parsed:
                out.setdefault(parsed[0], set()).add(parsed[1])
        return out

    def clean_temp(self, older_than_s: float = 3600.0) -> int:
        """Remove temp files older than ``older_than_s`` seconds (left by killed writers); return how many."""
        removed = 0
        now = time.time()
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return 0
        for n in names:
            if n.startswith(".") and n.endswith(TEMP_SUFFIX):
                p = self.root / n
                try:
                    if now - p.stat().st_mtime >= older_than_s:
                        p.unlink()
                        removed += 1
                except FileNotFoundError:
                    continue
        return removed

    # ------------------------------------------------------------------ reading

    def _read_tables(self, paths: list[Path]):
        """Read each file as a table aligned to the schema, with a ``_file`` column (its name).

        Unreadable files go to :attr:`skipped`. Files are read by a small thread pool (parquet
        decoding releases the GIL; on network filesystems the latency of many small files dominates).
        """
        import pyarrow as pa

        if len(paths) > 16:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 2) * 2)) as pool:
                results = list(pool.map(_read_one, paths))
        else:
            results = [_read_one(p) for p in paths]
        tables = []
        for path, (table, reason) in zip(paths, results):
            if table is not None:
                tables.append(table.append_column(_FILE_COL, pa.array([path.name] * table.num_rows, pa.string())))
            elif reason is not None:
                self.skipped.append((path, reason))
                log.warning("skipping unreadable result file %s: %s", path, reason)
        return tables

    def _load_snapshot(self, names: set[str]):
        """(snapshot rows whose files still exist, the names it covers); empty if absent or unreadable."""
        import pyarrow as pa
        import pyarrow.compute as pc

        path = self.root / SNAPSHOT
        if not names or not path.exists():
            return None, set()
        table, reason = _read_one(path, snapshot=True)
        if table is None:
            if reason is not None:
                log.warning("ignoring unreadable results snapshot %s (%s); reading every file", path, reason)
            return None, set()
        files = table[_FILE_COL]
        keep = pc.is_in(files, value_set=pa.array(sorted(names), pa.string()))
        table = table.filter(keep)
        return table, set(table[_FILE_COL].to_pylist())

    def _all_rows(self, auto_consolidate: bool):
        """Arrow table of every readable row (with ``_file``), using and maybe refreshing the snapshot."""
        import pyarrow as pa

        self.skipped = []
        paths = self.files()
        snapshot, covered = self._load_snapshot({p.name for p in paths})
        new = [p for p in paths if p.name not in covered]
        tables = ([snapshot] if snapshot is not None and snapshot.num_rows else []) + self._read_tables(new)
        if not tables:
            return None
        table = pa.concat_tables(tables, promote_options="default") if len(tables) > 1 else tables[0]
        table = table.sort_by(_FILE_COL)  # file-name order, whatever came from the snapshot
        if auto_consolidate and len(new) - len(self.skipped) >= AUTO_CONSOLIDATE_MIN_NEW:
            self._write_snapshot(table)
        return table

    def _write_snapshot(self, table) -> bool:
        import pyarrow.parquet as pq

        final = self.root / SNAPSHOT
        tmp = self.root / f".{SNAPSHOT}.{os.getpid()}.{uuid.uuid4().hex[:8]}{TEMP_SUFFIX}"
        try:
            with open(tmp, "wb") as fh:
                pq.write_table(table, fh, compression="zstd")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, final)
        except OSError as exc:  # a read-only folder: reading still works, just slower
            log.debug("cannot write results snapshot %s: %s", final, exc)
            try:
                tmp.unlink()
            except OSError:
                pass
            return False
        fsync_dir(self.root)
        return True

    def consolidate(self) -> int:
        """Rewrite the snapshot to cover every readable file now in the store; return its row count."""
        table = self._all_rows(auto_consolidate=False)
        if table is None:
            return 0
        if not self._write_snapshot(table):
            raise ResultsError(f"cannot write the results snapshot into {self.root} (is it writable?)")
        return table.num_rows

    def _frame(self, table) -> pd.DataFrame:
        if table is None:
            return arrow_schema().empty_table().to_pandas()
        return table.drop_columns([_FILE_COL]).to_pandas()

    def read(self, latest: bool = True, *, consolidate: bool = True) -> pd.DataFrame:
        """Every row of the store as one DataFrame (columns in schema order, extras of newer versions after).

        With ``latest`` (default), one row per ``run_id``: a completed attempt wins over failed ones,
        then the newest ``finished_at`` (then the last file name). Files that cannot be read are skipped
        with a warning and listed in :attr:`skipped`. A folder that does not exist yet reads as empty.
        With ``consolidate`` (default), the snapshot is refreshed when many files are not in it yet.
        """
        df = self._frame(self._all_rows(auto_consolidate=consolidate))
        if latest and len(df):
            df = latest_rows(df)
        return df.reset_index(drop=True)

    def rows_for(self, run_id: str) -> list[dict[str, Any]]:
        """Every attempt of ``run_id`` as a dict, oldest ``finished_at`` first."""
        self.skipped = []
        paths = [p for p in self.files() if (parse_name(p.name) or ("",))[0] == run_id]
        tables = self._read_tables(paths)
        import pyarrow as pa

        df = self._frame(pa.concat_tables(tables, promote_options="default") if tables else None)
        if not len(df):
            return []
        df = df.assign(_t=_finish_times(df)).sort_values("_t", kind="stable").drop(columns="_t")
        return [
            {k: (None if _isna(v) else v) for k, v in rec.items()} for rec in df.to_dict(orient="records")
        ]


def _read_one(path: Path, snapshot: bool = False):
    """``(table aligned to the schema, None)``, ``(None, reason)`` if unreadable, ``(None, None)`` if gone.

    A snapshot keeps its ``_file`` column (last).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = arrow_schema()
    try:
        table = pq.ParquetFile(path).read(use_threads=False)
        if table.num_rows == 0 and not snapshot:
            raise ValueError("no rows")
        if snapshot:
            if _FILE_COL not in table.column_names:
                raise ValueError(f"no {_FILE_COL} column")
            names = table[_FILE_COL]
            table = table.drop_columns([_FILE_COL])
        if table.schema.equals(schema, check_metadata=False):
            return (table.append_column(_FILE_COL, names) if snapshot else table), None  # the common case
        missing = [c for c in ("run_id", "status") if c not in table.column_names]
        if missing:
            raise ValueError(f"missing column(s) {', '.join(missing)}")
        columns, fields = [], []
        for field in schema:
            if field.name in table.column_names:
                columns.append(table[field.name].cast(field.type))
            else:  # an older schema version: the newer optional column is null
                columns.append(pa.nulls(table.num_rows, field.type))
            fields.append(field)
        for name in table.column_names:  # a newer schema version: keep its extra columns
            if name not in schema.names:
                columns.append(table[name])
                fields.append(table.schema.field(name))
        if snapshot:
            columns.append(names)
            fields.append(pa.field(_FILE_COL, pa.string()))
        return pa.Table.from_arrays(columns, schema=pa.schema(fields)), None
    except FileNotFoundError:  # removed between listing and reading
        return None, None
    except Exception as exc:  # noqa: BLE001 - any unreadable file is skipped, never fatal
        text = str(exc).strip()
        return None, text.splitlines()[0] if text else type(exc).__name__


def _isna(value: Any) -> bool:
    try:
        return bool(value != value) or value is None  # NaN or None
    except (TypeError, ValueError):
        return False


def _finish_times(df: pd.DataFrame):
    import pandas as pd

    return pd.to_datetime(df["finished_at"], utc=True, errors="coerce", format="ISO8601")


def latest_rows(df: pd.DataFrame) -> pd.DataFrame:
    """One row per ``run_id``: completed beats failed, then the newest ``finished_at`` (null = oldest).

    The input order breaks remaining ties (later wins), so pass rows in file order.
    """
    rank = (df["status"] == "completed").astype(int)
    t = _finish_times(df)
    order = df.assign(_rank=rank, _t=t, _pos=range(len(df)))
    order = order.sort_values(["run_id", "_rank", "_t", "_pos"], na_position="first", kind="stable")
    out = order.drop_duplicates("run_id", keep="last").drop(columns=["_rank", "_t", "_pos"])
    return out.sort_values(["run_id"], kind="stable")


__all__ = ["COLUMNS", "SCHEMA_VERSION", "SNAPSHOT", "ResultStore", "is_result_file", "latest_rows", "parse_name"]
