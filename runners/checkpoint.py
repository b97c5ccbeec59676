"""Training checkpoints: written atomically, found again after a crash, loadable with ``weights_only``.

Layout under a run folder (``SWEEP/runs/<run_id>/``)::

    checkpoints/step_00000120.pt   training state: model, optimizer, scheduler step, data position, RNG
    final.pt                       {"state_dict": CLIP weights, "clipbudget": {...}}: open_clip loads it

Every file is written to a temporary name in the same folder, fsynced, then renamed (and the folder
fsynced), so a crash (SIGKILL included) leaves either the old checkpoint or the new one, never half of one.
The newest ``keep`` training checkpoints are kept. RNG states are stored as tensors and plain lists so
``torch.load(..., weights_only=True)`` reads every file.

Example::

    save_atomic(state, ckpt_dir / step_name(120))
    found = latest_checkpoint(ckpt_dir)   # (path, state) of the newest readable step_*.pt; None: none yet;
                                          # CheckpointError: some exist but none reads back
"""

from __future__ import annotations

import logging
import os
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from budget.errors import ClipbudgetError
from results.atomic import atomic_open

log = logging.getLogger(__name__)

_STEP_RE = re.compile(r"^step_(\d{8})\.pt$")


def step_name(step: int) -> str:
    return f"step_{int(step):08d}.pt"


def save_atomic(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save(obj)`` to ``path`` atomically (temp file in the same folder + fsync + rename)."""
    path = Path(path)
    with atomic_open(path, "wb") as fh:
        torch.save(obj, fh)
    return path


def list_checkpoints(ckpt_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """``[(step, path), …]`` of the training checkpoints in ``ckpt_dir``, oldest first."""
    d = Path(ckpt_dir)
    if not d.is_dir():
        return []
    out = []
    for p in d.iterdir():
        m = _STEP_RE.match(p.name)
        if m:
            out.append((int(m.group(1)), p))
    return sorted(out)


def load(path: str | os.PathLike) -> dict:
    """Read a checkpoint (``weights_only=True``: no pickled code runs)."""
    return torch.load(path, map_location="cpu", weights_only=True)


class CheckpointError(ClipbudgetError):
    """Training checkpoints exist but none of them reads back: resuming is impossible, restarting from step 0
    would silently redo (and double-count) the compute already spent. The message names every file."""


def latest_checkpoint(ckpt_dir: str | os.PathLike) -> tuple[Path, dict] | None:
    """The newest checkpoint that reads back, with its state; ``None`` when there is none.

    An unreadable newest file (a disk error; renames make torn writes impossible) is logged as a warning
    naming it, and the next older one is tried. When checkpoints exist but none reads back,
    :class:`CheckpointError` names them all (the run must not restart from step 0 silently: move or delete
    the folder to start over on purpose).
    """
    found = list_checkpoints(ckpt_dir)
    problems = []
    for step, path in reversed(found):
        try:
            state = load(path)
        except Exception as exc:  # noqa: BLE001 - fall back to an older checkpoint
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            problems.append(f"{path} ({reason})")
            log.warning("checkpoint %s (step %d) is unreadable (%s); trying an older one", path, step, reason)
            continue
        if problems:
            log.warning("resuming from the older checkpoint %s (step %d): %d newer one(s) unreadable: %s",
                        path, step, len(problems), "; ".join(problems))
        return path, state
    if found:
        raise CheckpointError(f"{len(found)} checkpoint(s) in {ckpt_dir} but none loads: {'; '.join(problems)}; "
                              "refusing to restart from step 0 (move the folder away to start over)")
    return None


def prune(ckpt_dir: str | os.PathLike, keep: int = 2) -> None:
    """Delete all but the newest ``keep`` training checkpoints."""
    for _, path in list_checkpoints(ckpt_dir)[:-keep] if keep > 0 else list_checkpoints(ckpt_dir):
        try:
            path.unlink()
        except OSError:
            pass


# --- RNG state as weights_only-safe values --------------------------------------------------------


def rng_state() -> dict:
    """Python, NumPy, torch CPU (and CUDA) RNG states, as tensors and plain lists."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": _to_plain(random.getstate()),
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Inverse of :func:`rng_state`."""
    random.setstate(_to_tuple(state["python"]))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _to_plain(x):
    if isinstance(x, tuple):
        return [_to_plain(v) for v in x]
    return x


def _to_tuple(x):
    if isinstance(x, list):
        return tuple(_to_tuple(v) for v in x)
    return x


__all__ = ["CheckpointError", "latest_checkpoint", "list_checkpoints", "load", "prune", "rng_state", "save_atomic", "set_rng_state",
           "step_name"]
