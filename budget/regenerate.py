"""Regenerate the model catalog ``budget/models/*.json`` from open_clip's bundled model configs.

Run (needs open_clip installed; nothing else in clipbudget imports it at planning time)::

    python -m budget.regenerate            # rewrite budget/models/ from the installed open_clip
    python -m budget.regenerate --check    # exit 1 if the folder differs from what would be written

Every bundled config whose image tower is a plain open_clip ViT (no ``timm_model_name``), a ModifiedResNet
(``layers`` is a list) or a timm ConvNeXt (``timm_model_name`` starting with ``convnext``) and whose text tower
is open_clip's ``TextTransformer`` is copied, with a ``clipbudget`` object added (family, source). Configs
the accounting cannot count exactly (HuggingFace text towers, CoCa's multimodal decoder, other timm towers)
are skipped and logged. The hand-written entries (``ViT-Ti-16`` and the ``tiny-*`` CPU configs, see
:data:`HAND_WRITTEN`) are written too; every other file in the folder is removed.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import sys
from pathlib import Path

from budget.catalog import MODELS_DIR, spec_from_config
from budget.errors import ConfigError

log = logging.getLogger(__name__)

_B32_TEXT = {"context_length": 77, "vocab_size": 49408, "width": 512, "heads": 8, "layers": 12}


def _tiny_text(width: int) -> dict:
    return {"context_length": 16, "vocab_size": 49408, "width": width, "heads": width // 32, "layers": 2}


def _tiny(notes: str) -> dict:
    return {"source": "hand-written (clipbudget): tiny CPU config for tests and the Fashion-MNIST demo",
            "tiny": True, "notes": notes}


#: Catalog entries not in open_clip, written by hand (kept by :func:`regenerate`).
HAND_WRITTEN: dict[str, dict] = {
    "ViT-Ti-16": {
        "embed_dim": 512,
        "vision_cfg": {"image_size": 224, "layers": 12, "width": 192, "head_width": 64, "patch_size": 16},
        "text_cfg": dict(_B32_TEXT),
        "clipbudget": {"family": "vit", "tiny": False,
                       "source": "Li, Xie, Cubuk 2024 (arXiv 2404.08197) ViT-Ti/16; image tower = timm "
                                 "vit_tiny_patch16_224 (width 192, 12 layers, 3 heads); text tower as open_clip ViT-B-32",
                       "notes": "not an open_clip config; the seed paper's smallest ViT"},
    },
    "tiny-vit-s-28": {
        "embed_dim": 64,
        "vision_cfg": {"image_size": 28, "layers": 2, "width": 64, "head_width": 32, "patch_size": 7},
        "text_cfg": _tiny_text(64),
        "clipbudget": {"family": "vit", **_tiny("28 px, 4×4 patches of 7 px, width 64, 2 layers, 2 heads")},
    },
    "tiny-vit-28": {
        "embed_dim": 128,
        "vision_cfg": {"image_size": 28, "layers": 4, "width": 128, "head_width": 32, "patch_size": 4},
        "text_cfg": _tiny_text(128),
        "clipbudget": {"family": "vit", **_tiny("28 px, 7×7 patches of 4 px, width 128, 4 layers, 4 heads")},
    },
    "tiny-vit-l-28": {
        "embed_dim": 128,
        "vision_cfg": {"image_size": 28, "layers": 6, "width": 192, "head_width": 32, "patch_size": 4},
        "text_cfg": _tiny_text(128),
        "clipbudget": {"family": "vit", **_tiny("28 px, 7×7 patches of 4 px, width 192, 6 layers, 6 heads")},
    },
    "tiny-vit-32": {
        "embed_dim": 128,
        "vision_cfg": {"image_size": 32, "layers": 4, "width": 128, "head_width": 32, "patch_size": 8},
        "text_cfg": _tiny_text(128),
        "clipbudget": {"family": "vit", **_tiny("32 px, 4×4 patches of 8 px, width 128, 4 layers, 4 heads")},
    },
    "tiny-rn-32": {
        "embed_dim": 64,
        "vision_cfg": {"image_size": 32, "layers": [1, 1, 1, 1], "width": 8, "head_width": 32, "patch_size": None},
        "text_cfg": _tiny_text(64),
        "clipbudget": {"family": "modified_resnet",
                       **_tiny("32 px ModifiedResNet, stem width 8, one bottleneck per stage, 256-wide attention "
                               "pool with 8 heads (needs image_size ≥ 32: the tower downsamples 32×)")},
    },
}


def _family(cfg: dict) -> str | None:
    v = cfg.get("vision_cfg", {})
    if v.get("timm_model_name"):
        return "convnext" if str(v["timm_model_name"]).startswith("convnext") else None
    return "modified_resnet" if isinstance(v.get("layers"), list) else "vit"


def build_catalog(open_clip_dir: Path) -> tuple[dict[str, dict], dict[str, str]]:
    """Return ``(configs by name, skipped name → reason)`` from a folder of open_clip JSON configs."""
    out: dict[str, dict] = {}
    skipped: dict[str, str] = {}
    for path in sorted(open_clip_dir.glob("*.json")):
        name = path.stem
        cfg = json.loads(path.read_text())
        family = _family(cfg)
        if family is None:
            skipped[name] = f"image tower timm {cfg['vision_cfg']['timm_model_name']!r} is not counted"
            continue
        try:
            spec_from_config(cfg, name, str(path))
        except ConfigError as exc:
            skipped[name] = str(exc).split(": ", 1)[-1]
            continue
        entry = copy.deepcopy(cfg)
        entry["clipbudget"] = {"family": family, "tiny": False,
                               "source": f"open_clip model_configs/{path.name}", "notes": ""}
        out[name] = entry
    for name, cfg in HAND_WRITTEN.items():
        spec_from_config(cfg, name)  # the hand-written entries must parse
        out[name] = copy.deepcopy(cfg)
    return out, skipped


def _render(cfg: dict) -> str:
    return json.dumps(cfg, indent=2) + "\n"


def regenerate(open_clip_dir: Path | None = None, out_dir: Path = MODELS_DIR, *, check: bool = False) -> int:
    """Write (or with ``check``, compare) the catalog; returns the number of files that differ."""
    if open_clip_dir is None:
        import open_clip  # only this maintenance command needs it

        open_clip_dir = Path(open_clip.__file__).parent / "model_configs"
    catalog, skipped = build_catalog(open_clip_dir)
    for name, why in skipped.items():
        log.info("skipped %s: %s", name, why)
    out_dir.mkdir(parents=True, exist_ok=True)
    existing = {p.stem: p for p in out_dir.glob("*.json")}
    differ = 0
    for name, cfg in catalog.items():
        path = out_dir / f"{name}.json"
        text = _render(cfg)
        if not path.exists() or path.read_text() != text:
            differ += 1
            if not check:
                tmp = path.with_suffix(".json.tmp")
                tmp.write_text(text)
                tmp.replace(path)
    for name, path in existing.items():
        if name not in catalog:
            differ += 1
            if not check:
                path.unlink()
    log.info("%d catalog entries (%d hand-written), %d open_clip configs skipped, %d files %s",
             len(catalog), len(HAND_WRITTEN), len(skipped), differ, "differ" if check else "written/removed")
    return differ


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m budget.regenerate", description=__doc__.splitlines()[0])
    parser.add_argument("--open-clip-dir", type=Path, default=None,
                        help="folder of open_clip model configs (default: the installed open_clip's)")
    parser.add_argument("--check", action="store_true", help="exit 1 if budget/models/ is out of date")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every skipped config")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose or args.check else logging.WARNING,
                        format="%(message)s", stream=sys.stderr)
    differ = regenerate(args.open_clip_dir, check=args.check)
    return 1 if (args.check and differ) else 0


if __name__ == "__main__":
    sys.exit(main())
