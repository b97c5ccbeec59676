"""The model catalog: open_clip model configs parsed into frozen specs.

One JSON file per architecture lives in ``budget/models/<name>.json``, in open_clip's model-config
format (``{"embed_dim": …, "vision_cfg": {…}, "text_cfg": {…}}``) plus an optional ``"clipbudget"``
object (``{"family": "vit"|"modified_resnet"|"convnext", "source": …, "tiny": bool, "notes": …}``).
The files are written by ``python -m budget.regenerate`` from open_clip's bundled configs; the
paper's ViT-Ti-16 and the tiny CPU configs are written by hand (and kept by ``regenerate``).

Any open_clip JSON config can also be given by path. Loading is lazy and cached; importing this
module reads no file and imports nothing heavy.

Example:
    >>> from budget.catalog import get_model
    >>> spec = get_model("ViT-B-32")
    >>> spec.family, spec.vision.width, spec.vision.patch_size, spec.text.context_length
    ('vit', 768, 32, 77)
    >>> spec.config["vision_cfg"]["width"]  # a deep copy of the open_clip JSON
    768
"""

from __future__ import annotations

import copy
import functools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from budget.errors import ConfigError, UnknownModelError

#: Folder holding the catalog's JSON configs.
MODELS_DIR = Path(__file__).resolve().parent / "models"

#: Vision-tower families the accounting can count exactly.
FAMILIES = ("vit", "modified_resnet", "convnext")

# open_clip's CLIPVisionCfg / CLIPTextCfg defaults (open_clip 3.x, src/open_clip/model.py).
_VISION_DEFAULTS: dict[str, Any] = {
    "layers": 12, "width": 768, "head_width": 64, "mlp_ratio": 4.0, "patch_size": 16, "image_size": 224,
    "ls_init_value": None, "patch_dropout": 0.0, "attentional_pool": False, "attn_pooler_queries": 256,
    "attn_pooler_heads": 8, "no_ln_pre": False, "pool_type": "tok", "final_ln_after_pool": False,
    "timm_model_name": None, "timm_pool": "avg", "timm_proj": "linear", "timm_proj_bias": False,
}
_TEXT_DEFAULTS: dict[str, Any] = {
    "context_length": 77, "vocab_size": 49408, "width": 512, "heads": 8, "layers": 12, "mlp_ratio": 4.0,
    "ls_init_value": None, "embed_cls": False, "pool_type": "argmax", "proj_type": "linear",
    "proj_bias": False, "no_causal_mask": False, "hf_model_name": None,
}
# Block options that add only norms/scales (no matmul FLOPs); counted in parameters approximately.
_CUSTOM_BLOCK_KEYS = ("qk_norm", "scaled_cosine_attn", "scale_heads", "scale_attn_inner", "scale_attn", "scale_fc")


@dataclass(frozen=True)
class VisionSpec:
    """The image tower, as open_clip builds it (units: pixels, channels, layers).

    ``family`` is ``vit`` (open_clip ``VisionTransformer``), ``modified_resnet`` (``ModifiedResNet``,
    ``layers`` a 4-tuple of bottleneck counts) or ``convnext`` (timm ConvNeXt through ``TimmModel``).
    """

    family: str
    image_size: int
    width: int = 0
    layers: int | tuple[int, ...] = 0
    patch_size: int = 0
    head_width: int = 64
    mlp_ratio: float = 4.0
    pool_type: str = "tok"
    attentional_pool: bool = False
    attn_pooler_queries: int = 256
    attn_pooler_heads: int = 8
    no_ln_pre: bool = False
    layer_scale: bool = False
    custom_block: tuple[str, ...] = ()
    timm_model_name: str | None = None
    timm_pool: str = "avg"
    timm_proj: str = "linear"
    timm_proj_bias: bool = False

    @property
    def heads(self) -> int:
        """Attention heads: ``width // head_width`` (ViT) or ``width * 32 // head_width`` (ResNet attention pool)."""
        if self.family == "modified_resnet":
            return self.width * 32 // self.head_width
        if self.family == "vit":
            return self.width // self.head_width
        return 0


@dataclass(frozen=True)
class TextSpec:
    """The text transformer (open_clip ``TextTransformer``); ``context_length`` in tokens."""

    context_length: int = 77
    vocab_size: int = 49408
    width: int = 512
    heads: int = 8
    layers: int = 12
    mlp_ratio: float = 4.0
    embed_cls: bool = False
    pool_type: str = "argmax"
    proj_type: str = "linear"
    proj_bias: bool = False
    layer_scale: bool = False
    custom_block: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelSpec:
    """One CLIP architecture.

    ``config`` is the open_clip JSON (with the optional ``clipbudget`` object); every access
    returns a fresh deep copy, so callers can never mutate the catalog. ``path`` is the JSON file
    it was read from.
    """

    name: str
    family: str
    embed_dim: int
    vision: VisionSpec
    text: TextSpec
    config: dict = field(compare=False, repr=False)
    path: str | None = None

    def __getattribute__(self, item: str) -> Any:
        value = object.__getattribute__(self, item)
        if item == "config":
            return copy.deepcopy(value)
        return value

    @property
    def tiny(self) -> bool:
        """True for the hand-written CPU configs (image 28–32 px)."""
        return bool(object.__getattribute__(self, "config").get("clipbudget", {}).get("tiny", False))

    @property
    def open_clip_config(self) -> dict:
        """The config as ``open_clip.create_model`` takes it (without the ``clipbudget`` object)."""
        cfg = self.config
        cfg.pop("clipbudget", None)
        return cfg


def list_models() -> list[str]:
    """Names of every catalog model, sorted (case-insensitively)."""
    return list(_names())


def get_model(name_or_path: str) -> ModelSpec:
    """Return the spec of a catalog model, or of an open_clip JSON config given by path.

    Raises:
        UnknownModelError: ``name_or_path`` is neither a catalog name nor an existing file.
        ConfigError: the file is unreadable, not JSON, or not a CLIP config the accounting can count.
    """
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise ConfigError(f"model must be a catalog name or a JSON path, got {name_or_path!r}")
    text = os.fspath(name_or_path)
    names = _names()
    if text in names:
        return _load(str(MODELS_DIR / f"{text}.json"), text)
    lowered = {n.lower(): n for n in names}
    if text.lower() in lowered:
        name = lowered[text.lower()]
        return _load(str(MODELS_DIR / f"{name}.json"), name)
    looks_like_path = text.endswith(".json") or os.sep in text or "/" in text
    if looks_like_path or os.path.isfile(text):
        path = os.path.abspath(os.path.expanduser(text))
        if not os.path.isfile(path):
            raise UnknownModelError(f"model config file {text!r} does not exist; give a catalog name "
                                    "(clipbudget flops --list) or the path of an open_clip JSON config")
        stem = Path(path).stem
        return _load(path, stem)
    import difflib  # only on the error path

    close = difflib.get_close_matches(text, names, n=3, cutoff=0.5)
    if not close:
        close = difflib.get_close_matches(text.lower(), list(lowered), n=3, cutoff=0.4)
        close = [lowered[c] for c in close]
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise UnknownModelError(f"unknown model {text!r}{hint} (clipbudget flops --list)")


def spec_from_config(config: dict, name: str, path: str | None = None) -> ModelSpec:
    """Parse an open_clip model config (a dict) into a :class:`ModelSpec`.

    Raises ConfigError naming the file and the problem when the config is not a CLIP config with a
    ViT, ModifiedResNet or timm ConvNeXt image tower and an open_clip text transformer.
    """
    where = path or name
    if not isinstance(config, dict):
        raise ConfigError(f"{where}: an open_clip model config must be a JSON object, got {type(config).__name__}")
    missing = [k for k in ("embed_dim", "vision_cfg", "text_cfg") if k not in config]
    if missing:
        raise ConfigError(f"{where}: not an open_clip model config: missing {', '.join(missing)} "
                          "(expected keys embed_dim, vision_cfg, text_cfg)")
    vcfg, tcfg = config["vision_cfg"], config["text_cfg"]
    if not isinstance(vcfg, dict) or not isinstance(tcfg, dict):
        raise ConfigError(f"{where}: vision_cfg and text_cfg must be JSON objects")
    if "multimodal_cfg" in config:
        raise ConfigError(f"{where}: CoCa-style configs (multimodal_cfg) are not supported; "
                          f"supported image towers: {', '.join(FAMILIES)} with a CLIP text transformer")
    embed_dim = _int(config["embed_dim"], "embed_dim", where)
    vision = _vision_spec(vcfg, where)
    text = _text_spec(tcfg, where)
    declared = config.get("clipbudget", {}).get("family") if isinstance(config.get("clipbudget"), dict) else None
    if declared is not None and declared != vision.family:
        raise ConfigError(f"{where}: clipbudget.family is {declared!r} but vision_cfg describes a "
                          f"{vision.family!r} tower; valid families: {', '.join(FAMILIES)}")
    return ModelSpec(name=name, family=vision.family, embed_dim=embed_dim, vision=vision, text=text,
                     config=copy.deepcopy(config), path=path)


# --- internals -------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _names_cached(mtime_ns: int) -> tuple[str, ...]:
    del mtime_ns
    try:
        files = os.listdir(MODELS_DIR)
    except OSError:
        return ()
    return tuple(sorted((f[:-5] for f in files if f.endswith(".json")), key=str.lower))


def _names() -> tuple[str, ...]:
    try:
        mtime = os.stat(MODELS_DIR).st_mtime_ns
    except OSError:
        mtime = 0
    return _names_cached(mtime)


@functools.lru_cache(maxsize=512)
def _load_cached(path: str, name: str, mtime_ns: int) -> ModelSpec:
    del mtime_ns
    try:
        with open(path, encoding="utf-8") as fh:
            config = json.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read model config {path!r}: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"model config {path!r} is not valid JSON: {exc}") from None
    return spec_from_config(config, name, path)


def _load(path: str, name: str) -> ModelSpec:
    try:
        mtime = os.stat(path).st_mtime_ns
    except OSError as exc:
        raise ConfigError(f"cannot read model config {path!r}: {exc.strerror or exc}") from None
    return _load_cached(path, name, mtime)


def _int(value: Any, key: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) or value <= 0:
        raise ConfigError(f"{where}: {key} must be a positive integer, got {value!r}")
    return int(value)


def _size(value: Any, key: str, where: str) -> int:
    if isinstance(value, (list, tuple)):
        if len(value) != 2 or value[0] != value[1]:
            raise ConfigError(f"{where}: {key} must be one integer (square images), got {value!r}")
        value = value[0]
    return _int(value, key, where)


def _vision_spec(raw: dict, where: str) -> VisionSpec:
    v = {**_VISION_DEFAULTS, **raw}
    image_size = _size(v["image_size"], "vision_cfg.image_size", where)
    timm_name = v.get("timm_model_name")
    if timm_name:
        if not str(timm_name).startswith("convnext"):
            raise ConfigError(f"{where}: timm image tower {timm_name!r} is not supported; supported image "
                              f"towers: plain ViT, ModifiedResNet, timm convnext_*")
        if v["timm_pool"] in ("abs_attn", "rot_attn"):
            raise ConfigError(f"{where}: timm_pool {v['timm_pool']!r} is not supported; valid: '', 'avg'")
        proj = v["timm_proj"]
        if proj not in ("linear", "mlp", "none"):
            raise ConfigError(f"{where}: timm_proj {proj!r} is not supported; valid: linear, mlp, none")
        return VisionSpec(family="convnext", image_size=image_size, timm_model_name=str(timm_name),
                          timm_pool=v["timm_pool"] or "", timm_proj=proj, timm_proj_bias=bool(v["timm_proj_bias"]))
    layers = v["layers"]
    width = _int(v["width"], "vision_cfg.width", where)
    head_width = _int(v["head_width"], "vision_cfg.head_width", where)
    if isinstance(layers, (list, tuple)):
        if len(layers) != 4:
            raise ConfigError(f"{where}: ModifiedResNet vision_cfg.layers must list 4 stage depths, got {layers!r}")
        stages = tuple(_int(n, "vision_cfg.layers[i]", where) for n in layers)
        if (width * 32) % head_width:
            raise ConfigError(f"{where}: ModifiedResNet width*32 ({width * 32}) must be a multiple of "
                              f"head_width ({head_width})")
        return VisionSpec(family="modified_resnet", image_size=image_size, width=width, layers=stages,
                          head_width=head_width)
    n_layers = _int(layers, "vision_cfg.layers", where)
    patch = _size(v["patch_size"], "vision_cfg.patch_size", where)
    if width % head_width:
        raise ConfigError(f"{where}: ViT width ({width}) must be a multiple of head_width ({head_width})")
    if image_size % patch:
        raise ConfigError(f"{where}: image_size {image_size} is not a multiple of patch_size {patch}")
    pool = v["pool_type"]
    if pool not in ("tok", "avg", "none"):
        raise ConfigError(f"{where}: vision_cfg.pool_type {pool!r} is not valid; valid: tok, avg, none")
    attn_pool = v["attentional_pool"]
    if isinstance(attn_pool, str):
        raise ConfigError(f"{where}: attentional_pool {attn_pool!r} (parallel/cascade) is not supported; use true/false")
    return VisionSpec(
        family="vit", image_size=image_size, width=width, layers=n_layers, patch_size=patch,
        head_width=head_width, mlp_ratio=float(v["mlp_ratio"]), pool_type=pool,
        attentional_pool=bool(attn_pool), attn_pooler_queries=int(v["attn_pooler_queries"]),
        attn_pooler_heads=int(v["attn_pooler_heads"]), no_ln_pre=bool(v["no_ln_pre"]),
        layer_scale=v["ls_init_value"] is not None,
        custom_block=tuple(k for k in _CUSTOM_BLOCK_KEYS if raw.get(k)),
    )


def _text_spec(raw: dict, where: str) -> TextSpec:
    t = {**_TEXT_DEFAULTS, **raw}
    if t.get("hf_model_name"):
        raise ConfigError(f"{where}: HuggingFace text tower {t['hf_model_name']!r} is not supported; "
                          "only open_clip's TextTransformer (no hf_model_name) is counted")
    width = _int(t["width"], "text_cfg.width", where)
    heads = _int(t["heads"], "text_cfg.heads", where)
    if width % heads:
        raise ConfigError(f"{where}: text width ({width}) must be a multiple of heads ({heads})")
    pool = t["pool_type"]
    if pool not in ("first", "last", "argmax", "eos", "none"):
        raise ConfigError(f"{where}: text_cfg.pool_type {pool!r} is not valid; valid: first, last, argmax, eos, none")
    return TextSpec(
        context_length=_int(t["context_length"], "text_cfg.context_length", where),
        vocab_size=_int(t["vocab_size"], "text_cfg.vocab_size", where),
        width=width, heads=heads, layers=_int(t["layers"], "text_cfg.layers", where),
        mlp_ratio=float(t["mlp_ratio"]), embed_cls=bool(t["embed_cls"]), pool_type=pool,
        proj_type=str(t["proj_type"]), proj_bias=bool(t["proj_bias"]),
        layer_scale=t["ls_init_value"] is not None,
        custom_block=tuple(k for k in _CUSTOM_BLOCK_KEYS if raw.get(k)),
    )
