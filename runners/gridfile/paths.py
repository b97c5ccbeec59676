"""Relative paths in a grid file mean paths relative to the grid's folder, read and written.

``train_data``, ``eval_data`` and a model given as a JSON path are resolved against the grid file's
folder when read (so a grid means the same thing from any working directory) and written relative to it
when inside it. URLs (``s3://…``, ``pipe:…``, ``demo:…``) and absolute paths stay as written.
"""

from __future__ import annotations

import os
import re
from typing import Any

PATH_FIELDS = ("train_data", "eval_data")
_URLISH = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")  # s3://…, pipe:…, demo:… — left as written


def _is_local_path(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip()) and not _URLISH.match(value)


def looks_like_model_path(value: Any) -> bool:
    return isinstance(value, str) and (value.endswith(".json") or "/" in value)


def resolve_path(value: Any, base: str) -> Any:
    """A relative local path made absolute against ``base``; URLs and absolute paths unchanged."""
    if not _is_local_path(value):
        return value
    value = os.path.expanduser(value)
    if os.path.isabs(value):
        return value
    return os.path.normpath(os.path.join(base, value))


def rel_path(value: Any, base: str) -> Any:
    """A relative path re-expressed against the grid's folder (what the loader resolves it against).

    Paths inside the grid's folder are written relative to it (the folder can move); others absolute.
    """
    if not _is_local_path(value) or os.path.isabs(value):
        return value
    target = os.path.abspath(value)
    rel = os.path.relpath(target, base)
    return target if rel == ".." or rel.startswith(".." + os.sep) else rel


def map_paths(cfg: dict[str, Any], base: str, convert: Any) -> dict[str, Any]:
    """A copy of the run mapping ``cfg`` with its data paths (and a model JSON path) passed through
    ``convert(value, base)`` (:func:`resolve_path` when reading, :func:`rel_path` when writing)."""
    out = dict(cfg)
    for key in PATH_FIELDS:
        if key in out:
            out[key] = convert(out[key], base)
    if looks_like_model_path(out.get("model")):
        out["model"] = convert(out["model"], base)
    return out


__all__ = ["PATH_FIELDS", "looks_like_model_path", "map_paths", "rel_path", "resolve_path"]
