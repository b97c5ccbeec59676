"""The open_clip factory of the training engine: models, tokenizers and image transforms for catalog names,
open_clip names and JSON config paths.

Every model the engine trains is an ``open_clip`` model, created by ``open_clip.create_model`` from a
config registered with open_clip under :func:`open_clip_name`. So a final checkpoint written by the engine
(``{"state_dict": …}``) loads with plain open_clip::

    name = register_model("tiny-vit-28")                 # once per process
    model = open_clip.create_model(name, pretrained="runs/<run_id>/final.pt")

Names: a catalog model (``budget.catalog``) keeps its name; a JSON config path is registered under the
file's stem (or ``<stem>-<hash8>`` when that stem already names a different config). Image transforms are
open_clip's (``open_clip.image_transform``, OpenAI mean/std, bicubic) with the augmentation presets of
:mod:`runners.strategies` for training; greyscale inputs are converted to RGB first.

Example::

    built = build_model("tiny-vit-28", patch_dropout=0.5)
    built.model, built.tokenizer(["a photo of a bag"]).shape, built.preprocess_val
    model, preprocess, tokenizer = load_trained("tiny-vit-28", "runs/abc/final.pt")
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from budget.errors import ConfigError

log = logging.getLogger(__name__)

_LOCK = threading.Lock()
_REGISTERED: dict[str, str] = {}  # model (catalog name or path) -> open_clip name
_CONFIG_DIR: Path | None = None


def _config_dir() -> Path:
    global _CONFIG_DIR
    if _CONFIG_DIR is None:
        _CONFIG_DIR = Path(tempfile.mkdtemp(prefix="clipbudget-open-clip-configs-"))
    return _CONFIG_DIR


def _canonical(cfg: dict) -> str:
    return json.dumps(cfg, sort_keys=True, separators=(",", ":"))


def open_clip_name(model: str) -> str:
    """The name under which ``model`` (catalog name or JSON path) is registered with open_clip.

    Registers it on first use (see the module docstring). Raises :class:`ConfigError` (via the catalog)
    for an unknown name or an unreadable config.
    """
    with _LOCK:
        if model in _REGISTERED:
            return _REGISTERED[model]
        import open_clip

        from budget.catalog import get_model

        spec = get_model(model)
        cfg = spec.open_clip_config
        name = spec.name
        existing = open_clip.get_model_config(name)
        if existing is not None and _canonical(existing) != _canonical(cfg):
            if spec.path is not None and os.path.dirname(os.path.abspath(spec.path)) != _catalog_dir():
                # a user JSON whose stem shadows a different built-in: give it its own name
                name = f"{name}-{hashlib.sha256(_canonical(cfg).encode()).hexdigest()[:8]}"
            else:  # the catalog's own copy differs from open_clip's bundled one: the catalog wins
                log.debug("catalog config of %s differs from open_clip's bundled one; using the catalog's", name)
        if open_clip.get_model_config(name) is None or _canonical(open_clip.get_model_config(name)) != _canonical(cfg):
            path = _config_dir() / f"{name}.json"
            path.write_text(json.dumps(cfg, indent=1))
            open_clip.add_model_config(path)
        _REGISTERED[model] = name
        return name


def register_model(model: str) -> str:
    """Make ``model`` (catalog name or JSON path) known to open_clip; returns the open_clip name."""
    return open_clip_name(model)


def _catalog_dir() -> str:
    from budget import catalog

    return os.path.abspath(str(catalog.MODELS_DIR))


@dataclass
class BuiltModel:
    """A freshly created open_clip model and what goes with it.

    ``image_size`` pixels; ``context_length`` tokens; ``mean``/``std`` the normalisation of the transforms.
    """

    model: Any  # open_clip.CLIP
    name: str  # open_clip name
    tokenizer: Any
    preprocess_val: Any
    image_size: int
    context_length: int
    mean: tuple[float, ...]
    std: tuple[float, ...]


def build_model(
    model: str,
    *,
    image_size: int | None = None,
    context_length: int | None = None,
    patch_dropout: float = 0.0,
    grad_checkpointing: bool = False,
    precision: str = "fp32",
    device: Any = "cpu",
    pretrained: str | None = None,
) -> BuiltModel:
    """Create an open_clip model (random init unless ``pretrained`` is a checkpoint path).

    ``patch_dropout`` is the FLIP mask ratio (fraction of patches dropped in training; open_clip's
    ``PatchDropout`` is a no-op in eval mode). ``precision`` is open_clip's (``fp32``, ``bf16``, ``fp16``
    cast the weights; autocast is the training loop's business).
    """
    import open_clip
    import torch

    name = open_clip_name(model)
    kwargs: dict[str, Any] = {}
    if image_size is not None:
        kwargs["force_image_size"] = int(image_size)
    if context_length is not None:
        kwargs["force_context_length"] = int(context_length)
    if patch_dropout:
        kwargs["force_patch_dropout"] = float(patch_dropout)
    if pretrained is not None and not os.path.isfile(pretrained):
        raise ConfigError(f"checkpoint {pretrained!r} does not exist")
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.ERROR))  # open_clip logs "no pretrained weights" on the root logger
    try:
        net = open_clip.create_model(
            name, pretrained=pretrained, precision=precision, device=torch.device(device), output_dict=True,
            pretrained_text=False, **kwargs,
        )
    finally:
        root.setLevel(level)
    if grad_checkpointing:
        net.set_grad_checkpointing(True)
    size = net.visual.image_size
    size = int(size[0] if isinstance(size, (tuple, list)) else size)
    ctx = int(getattr(net, "context_length", None) or context_length or 77)
    pp = getattr(net.visual, "preprocess_cfg", {}) or {}
    mean = tuple(pp.get("mean", open_clip.OPENAI_DATASET_MEAN))
    std = tuple(pp.get("std", open_clip.OPENAI_DATASET_STD))
    tokenizer = open_clip.get_tokenizer(name, context_length=ctx)
    preprocess_val = eval_transform(size, mean, std)
    return BuiltModel(net, name, tokenizer, preprocess_val, size, ctx, mean, std)


def eval_transform(image_size: int, mean=None, std=None):
    """open_clip's evaluation transform (resize, centre crop, RGB, normalise) for PIL images of any mode."""
    import open_clip

    return open_clip.image_transform(image_size, is_train=False, mean=mean, std=std)


def load_trained(model_name: str, checkpoint_path: str | os.PathLike, device: str = "cpu"):
    """``(model, preprocess_val, tokenizer)`` of a trained checkpoint, in eval mode on ``device``.

    ``checkpoint_path`` is a final checkpoint (``runs/<run_id>/final.pt``) or a training checkpoint of
    the engine (its ``model`` state is used); ``model_name`` is the catalog name or JSON path trained.
    """
    import torch

    path = Path(checkpoint_path).expanduser()
    if not path.is_file():
        raise ConfigError(f"checkpoint {str(path)!r} does not exist")
    state = torch.load(path, map_location="cpu", weights_only=True)
    meta = state.get("clipbudget", {}) if isinstance(state, dict) else {}
    built = build_model(model_name, image_size=meta.get("image_size"), context_length=meta.get("context_length"),
                        device="cpu")
    if isinstance(state, dict) and "state_dict" in state:
        sd = state["state_dict"]
    elif isinstance(state, dict) and "model" in state:  # a training checkpoint: the CLIP part of the wrapper
        sd = {k[len("clip."):]: v for k, v in state["model"].items() if k.startswith("clip.")}
    else:
        sd = state
    built.model.load_state_dict(sd)
    net = built.model.to(device).eval()
    return net, built.preprocess_val, built.tokenizer


__all__ = ["BuiltModel", "build_model", "eval_transform", "load_trained", "open_clip_name", "register_model"]
