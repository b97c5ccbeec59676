"""The evaluation-set reader: an ImageNet-style folder of class subfolders.

Layout (what :func:`runners.data.demo.build_eval_set` writes, and what a real benchmark folder looks like)::

    EVAL/classnames.txt      one class name per line, in label order (line i = label i)
    EVAL/templates.txt       zero-shot prompt templates, one per line, each with "{}"
    EVAL/<label>/<file>.png  images (.png/.jpg/.jpeg/.webp); <label> is the 0-based class index
    EVAL/captions.jsonl      optional, for retrieval: {"file": "3/00012.png", "caption": "..."} per line

Images come back as one uint8 array: [N, H, W] when every image is greyscale, else [N, H, W, 3]
(all images must share one size: resize real benchmark folders beforehand).
Order: by label, then file name. Decoded images are cached in ``EVAL/.evalset_cache.npz`` (rebuilt when
any image's name, size or mtime changes; skipped when the folder is read-only). No torch here.

Example::

    ev = load_eval_set("demo/eval")
    ev.images.shape, ev.labels[:3], ev.classnames[7], ev.templates[0].format(ev.classnames[7])
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from budget.errors import ConfigError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
#: Decoded images, cached in the folder (hidden file) and keyed by every image's name, size and mtime.
CACHE_NAME = ".evalset_cache.npz"


@dataclass(frozen=True)
class EvalSet:
    """A labelled evaluation set (see the module docstring for shapes).

    ``captions`` (retrieval, one per image, aligned with ``images``) is ``None`` without captions.jsonl.
    """

    images: np.ndarray
    labels: np.ndarray
    classnames: list[str]
    templates: list[str]
    captions: list[str] | None
    files: list[str]
    path: str

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def name(self) -> str:
        """A short name for the result row's ``eval_dataset`` (``eval.json``'s data set, else the folder)."""
        info = Path(self.path) / "eval.json"
        try:
            return str(json.loads(info.read_text())["dataset"])
        except (OSError, ValueError, KeyError, TypeError):
            return Path(self.path).name


def _read_lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _decode(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            if img.mode not in ("L", "RGB"):
                img = img.convert("RGB")
            return np.asarray(img, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ConfigError(f"evaluation image {str(path)!r} does not decode ({exc})") from None


def load_eval_set(path: str | os.PathLike) -> EvalSet:
    """Read an evaluation folder; one-line :class:`ConfigError` on anything malformed.

    Checked: the folder exists; ``classnames.txt`` exists and is non-empty; ``templates.txt`` exists and
    each template holds ``{}``; no class subfolder is missing or empty; subfolders are label indices;
    every image decodes and all share one size; every caption names an existing image file.
    """
    root, classnames, templates, files, labels = _scan(path)
    images = _load_images(root, files)
    captions = _read_captions(root, files)
    log.info("evaluation set %s: %d images, %d classes, %d templates", root, len(files), len(classnames), len(templates))
    return EvalSet(images=images, labels=np.asarray(labels, dtype=np.int64), classnames=classnames,
                   templates=templates, captions=captions, files=files, path=str(root))


def check_eval_set(path: str | os.PathLike) -> tuple[int, int]:
    """The checks of :func:`load_eval_set` that cost no decoding of the whole set, before any training.

    Class names, templates, the class folders and captions as :func:`load_eval_set`; one image per class
    decodes (so at least one readable image). Returns ``(images, classes)``; one-line :class:`ConfigError`.
    """
    root, classnames, _, files, labels = _scan(path)
    first_of_class = {}
    for f, label in zip(files, labels):
        first_of_class.setdefault(label, f)
    for f in first_of_class.values():
        _decode(root / f)
    _read_captions(root, files)
    return len(files), len(classnames)


def _scan(path: str | os.PathLike) -> tuple[Path, list[str], list[str], list[str], list[int]]:
    """``(root, classnames, templates, files, labels)`` of an evaluation folder, structure checked."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise ConfigError(f"evaluation folder {str(root)!r} does not exist; build one with 'clipbudget data fashion-mnist --out DIR'")
    cn_path = root / "classnames.txt"
    if not cn_path.is_file():
        raise ConfigError(f"evaluation folder {str(root)!r} has no classnames.txt (one class name per line, in label order)")
    classnames = _read_lines(cn_path)
    if not classnames:
        raise ConfigError(f"{cn_path} is empty; it needs one class name per line, in label order")
    tp_path = root / "templates.txt"
    if not tp_path.is_file():
        raise ConfigError(f"evaluation folder {str(root)!r} has no templates.txt (one prompt per line with '{{}}')")
    templates = _read_lines(tp_path)
    if not templates:
        raise ConfigError(f"{tp_path} is empty; it needs prompt templates like 'a photo of a {{}}.'")
    bad = [t for t in templates if "{}" not in t]
    if bad:
        raise ConfigError(f"{tp_path}: template {bad[0]!r} has no '{{}}' for the class name")
    subdirs = {p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")}
    unknown = sorted(s for s in subdirs if not (s.isdigit() and int(s) < len(classnames)))
    if unknown:
        raise ConfigError(
            f"evaluation folder {str(root)!r}: subfolder {unknown[0]!r} is not a label index in 0..{len(classnames) - 1}"
        )
    files: list[str] = []
    labels: list[int] = []
    for label in range(len(classnames)):
        d = root / str(label)
        if not d.is_dir():
            raise ConfigError(f"evaluation folder {str(root)!r} has no folder {label}/ for class {classnames[label]!r}")
        names = sorted(p.name for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not names:
            raise ConfigError(f"evaluation class folder {str(d)!r} ({classnames[label]!r}) holds no images")
        files += [f"{label}/{n}" for n in names]
        labels += [label] * len(names)
    return root, classnames, templates, files, labels


def _fingerprint(root: Path, files: list[str]) -> str:
    h = hashlib.sha256()
    for f in files:
        st = os.stat(root / f)
        h.update(f"{f}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _load_images(root: Path, files: list[str]) -> np.ndarray:
    """Decode every image (or reuse ``.evalset_cache.npz``, valid while no file's name, size or mtime changed)."""
    cache = root / CACHE_NAME
    fp = _fingerprint(root, files)
    try:
        with np.load(cache, allow_pickle=False) as z:
            if str(z["fingerprint"]) == fp:
                return z["images"]
    except (OSError, ValueError, KeyError):
        pass
    arrays = [_decode(root / f) for f in files]
    shapes = {a.shape[:2] for a in arrays}
    if len(shapes) > 1:
        raise ConfigError(f"evaluation images in {str(root)!r} have {len(shapes)} different sizes {sorted(shapes)[:3]}; resize them to one")
    if any(a.ndim == 3 for a in arrays):
        arrays = [np.repeat(a[:, :, None], 3, axis=2) if a.ndim == 2 else a for a in arrays]
    images = np.stack(arrays)
    tmp = root / f".{CACHE_NAME}.tmp{os.getpid()}.npz"
    try:
        np.savez(tmp, images=images, fingerprint=np.array(fp))
        os.replace(tmp, cache)
    except OSError as exc:  # read-only folder: decode every time
        log.debug("cannot cache %s: %s", cache, exc)
        tmp.unlink(missing_ok=True)
    return images


def _read_captions(root: Path, files: list[str]) -> list[str] | None:
    path = root / "captions.jsonl"
    if not path.is_file():
        return None
    by_file: dict[str, str] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            by_file[str(rec["file"])] = str(rec["caption"])
        except (ValueError, KeyError, TypeError):
            raise ConfigError(f"{path}:{n}: expected {{\"file\": \"<label>/<name>.png\", \"caption\": \"...\"}}") from None
    missing = [f for f in files if f not in by_file]
    if missing:
        raise ConfigError(f"{path}: no caption for {len(missing)} image(s), e.g. {missing[0]!r}; give one per image")
    extra = sorted(set(by_file) - set(files))
    if extra:
        raise ConfigError(f"{path}: caption for {extra[0]!r}, which is not an image of the evaluation folder")
    return [by_file[f] for f in files]
