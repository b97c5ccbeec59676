"""Where a study lives: an Optuna storage named by a URL, opened or created, checked to hold *this* study.

URLs (Optuna's own, plus a scheme for its journal file):

* ``sqlite:///PATH`` — a SQLite file (the default: ``SWEEP_DIR/study.db``);
* ``journal:///PATH`` (or ``journal://RELATIVE``) — Optuna's journal file storage, for shared file systems
  where SQLite's locks are unreliable (NFS, Lustre);
* ``mysql[+driver]://``, ``mariadb[+driver]://``, ``postgresql[+driver]://`` — a database server (Optuna's
  RDB storage through SQLAlchemy), so that submitters and workers on a cluster share one study;
* ``memory://`` — Optuna's in-memory storage: this process only, nothing to resume (benchmarks).

A study records its specification (target, plan options, rungs, budget, seed, policy) as the user attribute
:data:`SPEC_ATTR`; re-opening it with a different one is an error, so a re-run continues the same study
or refuses, never mixes two.

Example:
    >>> check_url("sqlite:///tmp/s/study.db")
    'sqlite'
    >>> check_url("redis://localhost")
    Traceback (most recent call last):
    ...
    budget.errors.ConfigError: unknown storage URL scheme 'redis' in 'redis://localhost'; valid: sqlite:///FILE, journal:///FILE, mysql://, mariadb://, postgresql:// (optionally +driver, e.g. mysql+pymysql://), memory://
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from budget.errors import ConfigError

#: Study user attribute holding the study's specification (JSON-able dict).
SPEC_ATTR = "clipbudget_spec"
#: Schemes (before any ``+driver``) that name Optuna RDB storages.
RDB_SCHEMES = ("sqlite", "mysql", "mariadb", "postgresql")
VALID = ("sqlite:///FILE, journal:///FILE, mysql://, mariadb://, postgresql:// (optionally +driver, e.g. "
         "mysql+pymysql://), memory://")


def default_url(sweep_dir: str | os.PathLike) -> str:
    """``sqlite:///<absolute sweep dir>/study.db``."""
    return f"sqlite:///{Path(sweep_dir).resolve() / 'study.db'}"


def check_url(url: str) -> str:
    """The storage kind (``sqlite``, ``journal``, ``mysql``, ``mariadb``, ``postgresql``, ``memory``) or ConfigError."""
    if "://" not in url:
        raise ConfigError(f"storage {url!r} is not a URL; valid: {VALID}")
    scheme = url.split("://", 1)[0].lower()
    base = scheme.split("+", 1)[0]
    if base == "journal" and "+" not in scheme:
        if not url.split("://", 1)[1]:
            raise ConfigError(f"journal storage {url!r} names no file; give journal:///PATH/study.log")
        return "journal"
    if base in RDB_SCHEMES:
        return base
    if scheme == "memory":
        return "memory"
    raise ConfigError(f"unknown storage URL scheme {scheme!r} in {url!r}; valid: {VALID}")


def display_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for messages)."""
    import re

    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def journal_path(url: str) -> Path:
    """The file of a ``journal://`` URL (``journal:///abs`` or ``journal://relative``)."""
    return Path(url.split("://", 1)[1])


def open_storage(url: str) -> Any:
    """The Optuna storage object for ``url`` (the same object must serve every read and write of a study)."""
    import optuna

    kind = check_url(url)
    if kind == "memory":
        return optuna.storages.InMemoryStorage()
    if kind == "journal":
        from optuna.storages.journal import JournalFileBackend

        path = journal_path(url)
        path.parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    if kind == "sqlite":
        path = Path(url.split(":///", 1)[1]) if ":///" in url else None
        if path is not None and str(path) not in ("", ":memory:"):
            path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return optuna.storages.get_storage(optuna.storages.RDBStorage(url, engine_kwargs=_engine_kwargs(kind, url)))
    except ImportError as exc:
        raise ConfigError(f"storage {display_url(url)!r} needs a database driver that is not installed: {exc}") from None


def _engine_kwargs(kind: str, url: str) -> dict[str, Any]:
    """SQLite: write-ahead log and ``synchronous=NORMAL`` (a commit costs no fsync; a killed process loses
    nothing, a power cut at most the last commits), waiting up to 60 s for another process's lock."""
    if kind != "sqlite":
        return {"pool_pre_ping": True}
    path = url.split(":///", 1)[1] if ":///" in url else ""
    if path in ("", ":memory:"):
        return {}

    def connect() -> Any:
        import sqlite3

        conn = sqlite3.connect(path, timeout=60, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    return {"creator": connect}


def spec_json(spec: Mapping[str, Any]) -> dict[str, Any]:
    """``spec`` round-tripped through JSON (what the storage holds), so comparisons see the same types."""
    return json.loads(json.dumps(spec, sort_keys=True))


def open_study(storage: Any, name: str, spec: Mapping[str, Any], *, sampler: Any = None, pruner: Any = None,
               url: str = "") -> Any:
    """Load study ``name`` from ``storage`` if it exists (its spec must equal ``spec``), else create it.

    Raises ConfigError when the storage holds a study of that name with another (or no) clipbudget spec.
    """
    import optuna

    want = spec_json(spec)
    names = {s.study_name: s for s in optuna.get_all_study_summaries(storage, include_best_trial=False)}
    if name in names:
        have = names[name].user_attrs.get(SPEC_ATTR)
        if have is None:
            raise ConfigError(f"storage {display_url(url) if url else storage} holds a study {name!r} that clipbudget did not create; "
                              "give another --study-name, --sweep-dir or --storage")
        if have != want:
            diff = sorted(k for k in set(have) | set(want) if have.get(k) != want.get(k))
            shown = "; ".join(f"{k}: stored {have.get(k)!r}, now {want.get(k)!r}" for k in diff[:3])
            raise ConfigError(f"storage {display_url(url) if url else storage} holds a different study {name!r} ({shown}); re-run with "
                              "the same options to resume it, or give another --study-name, --sweep-dir or --storage")
        return optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner)
    try:
        study = optuna.create_study(study_name=name, storage=storage, direction="maximize", sampler=sampler,
                                    pruner=pruner, load_if_exists=False)
    except optuna.exceptions.DuplicatedStudyError:  # another process created it just now
        return open_study(storage, name, spec, sampler=sampler, pruner=pruner, url=url)
    study.set_user_attr(SPEC_ATTR, want)
    return study


class DriverLock:
    """One driving process per study at a time: a second ``clipbudget study`` on the same study waits.

    Two drivers acting on one study at once would both promote the same configuration and run it twice.
    The lock lives where the study does and dies with its holder (a killed driver frees it):

    * SQLite and journal files: an ``fcntl`` lock on ``<file>.lock`` beside the file;
    * MySQL/MariaDB: ``GET_LOCK('clipbudget:<study>')`` held by one connection;
    * PostgreSQL: ``pg_advisory_lock`` on a hash of the study's name;
    * in-memory: nothing to share.

    Workers (the jobs) never take it: they only write result rows into the sweep folder.
    """

    def __init__(self, url: str, study_name: str, *, timeout_s: float | None = None):
        self.url, self.name, self.timeout_s = url, study_name, timeout_s
        self._release: Any = None

    def __enter__(self) -> DriverLock:
        kind = check_url(self.url)
        if kind in ("sqlite", "journal"):
            self._file_lock(kind)
        elif kind in ("mysql", "mariadb", "postgresql"):
            self._db_lock(kind)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._release is not None:
            self._release()
            self._release = None

    def _file_lock(self, kind: str) -> None:
        import fcntl

        path = journal_path(self.url) if kind == "journal" else Path(self.url.split(":///", 1)[1])
        if str(path) in ("", ":memory:"):
            return
        lock = Path(f"{path}.lock")
        lock.parent.mkdir(parents=True, exist_ok=True)
        fh = open(lock, "a+")  # noqa: SIM115 - held until __exit__
        fcntl.flock(fh, fcntl.LOCK_EX)

        def release() -> None:
            fcntl.flock(fh, fcntl.LOCK_UN)
            fh.close()

        self._release = release

    def _db_lock(self, kind: str) -> None:
        import hashlib

        import sqlalchemy

        engine = sqlalchemy.create_engine(self.url, poolclass=sqlalchemy.pool.NullPool)
        conn = engine.connect()
        timeout = 30 * 86400 if self.timeout_s is None else int(self.timeout_s)  # MariaDB: no "forever" (-1)
        if kind == "postgresql":
            key = int(hashlib.sha256(self.name.encode()).hexdigest()[:15], 16)
            conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": key})
            unlock = ("SELECT pg_advisory_unlock(:k)", {"k": key})
        else:
            got = conn.execute(sqlalchemy.text("SELECT GET_LOCK(:n, :t)"),
                               {"n": f"clipbudget:{self.name}"[:64], "t": timeout}).scalar()
            if got != 1:
                conn.close()
                raise ConfigError(f"another clipbudget study is driving {self.name!r} in {display_url(self.url)}; "
                                  f"waited {timeout} s for it")
            unlock = ("SELECT RELEASE_LOCK(:n)", {"n": f"clipbudget:{self.name}"[:64]})

        def release() -> None:
            try:
                conn.execute(sqlalchemy.text(unlock[0]), unlock[1])
            finally:
                conn.close()
                engine.dispose()

        self._release = release
