"""Atomic file writes: a temp file in the same folder, fsync, rename, fsync of the folder.

A crash (SIGKILL included) at any point leaves either the old file or the new one under the final name,
never half of one; a temp file left behind starts with a dot and is ignored by every reader here.
Used by the results store, the sweep manifest, checkpoints, shards and grid files.

Example:
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "manifest.json"
    >>> _ = write_atomic(p, '{"ok": true}')
    >>> p.read_text()
    '{"ok": true}'
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Make a rename inside ``path`` durable (a no-op where folders cannot be fsynced)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory file descriptors
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some filesystems refuse fsync on folders
        pass
    finally:
        os.close(fd)


def temp_name(path: Path) -> Path:
    """The hidden temp file that :func:`atomic_open` writes before renaming onto ``path``."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "wb", *, durable: bool = True) -> Iterator[IO]:
    """Open a temp file beside ``path``; on a clean exit fsync it and rename it onto ``path``.

    On an exception the temp file is removed and ``path`` is left as it was. ``durable=False`` skips
    the fsyncs (caches that can be rebuilt). Creates the parent folder.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(path)
    try:
        with open(tmp, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as fh:
            yield fh
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    if durable:
        fsync_dir(path.parent)


def write_atomic(path: str | os.PathLike[str], data: bytes | str, *, durable: bool = True) -> Path:
    """Write ``data`` (bytes, or text as UTF-8) to ``path`` atomically; return the path."""
    with atomic_open(path, "wb" if isinstance(data, bytes) else "w", durable=durable) as fh:
        fh.write(data)
    return Path(path)


__all__ = ["atomic_open", "fsync_dir", "temp_name", "write_atomic"]
