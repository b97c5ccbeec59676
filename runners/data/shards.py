"""Webdataset tar shards, as img2dataset writes them: write atomically, read tolerating corruption.

A shard folder holds ``00000.tar``, ``00001.tar``, … Each tar holds, per sample, members that share a
*key* (the basename up to its first dot, webdataset's rule)::

    000000000.png    the image (``.jpg``/``.jpeg``/``.webp`` also read)
    000000000.txt    the caption (UTF-8)
    000000000.json   metadata: at least ``quality`` (float, higher = better pair); the demo builders add
                     ``key``, ``label`` (int), ``is_clean`` (bool), ``caption``, ``width``, ``height``

plus, beside each tar, ``00000_stats.json`` (img2dataset's per-shard stats: ``count``, ``successes``, …),
which the readers use to count the samples a truncated tar lost.

Corrupt input is skipped and counted, never fatal by itself: a truncated tar, a member whose data runs past
the end of the file, a sample without image or caption, unreadable JSON, an image that does not decode.
Only when the skipped fraction passes ``max_corrupt_fraction`` (default 1 %, environment variable
``CLIPBUDGET_MAX_CORRUPT_FRACTION`` overrides) does reading fail, with one line naming the folder and counts.

No torch here. Example::

    with ShardWriter("shards/", shard_size=10_000) as w:
        w.write("000000000", png_bytes, "a photo of a sneaker", {"quality": 1.0})
    for sample in iter_samples(list_shards("shards/")):
        print(sample.key, sample.caption, sample.meta["quality"])
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import tarfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from budget.errors import ConfigError
from results.atomic import write_atomic

log = logging.getLogger(__name__)

#: Image extensions a sample may carry, in the order of preference when a sample has several.
IMAGE_EXTS: tuple[str, ...] = ("png", "jpg", "jpeg", "webp")
#: Default tolerated fraction of corrupt samples before reading fails.
DEFAULT_MAX_CORRUPT_FRACTION = 0.01
#: Below this many samples looked at, the fraction is not yet meaningful (a single bad sample in the first
#: ten would otherwise fail a run); the check still runs at the end of a full pass.
MIN_SAMPLES_FOR_CHECK = 200

_KEY_RE = re.compile(r"^((?:.*/|)[^./]+)\.([^/]*)$")  # webdataset's base_plus_ext
_SHARD_RE = re.compile(r"^\d+\.tar$")


class CorruptDataError(ConfigError):
    """Too many corrupt samples in a shard folder (more than the tolerated fraction)."""


def max_corrupt_fraction(value: float | None = None) -> float:
    """The tolerated corrupt fraction: ``value``, else ``$CLIPBUDGET_MAX_CORRUPT_FRACTION``, else 1 %."""
    if value is None:
        env = os.environ.get("CLIPBUDGET_MAX_CORRUPT_FRACTION")
        if env is None:
            return DEFAULT_MAX_CORRUPT_FRACTION
        try:
            value = float(env)
        except ValueError:
            raise ConfigError(
                f"CLIPBUDGET_MAX_CORRUPT_FRACTION={env!r} is not a number; use a fraction in [0, 1]"
            ) from None
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"max corrupt fraction {value!r} is outside [0, 1]")
    return float(value)


def check_corrupt(skipped: int, total: int, where: str, *, limit: float | None = None, final: bool = False) -> None:
    """Raise :class:`CorruptDataError` if ``skipped`` of ``total`` samples exceeds the tolerated fraction.

    ``total`` counts good and skipped samples. Before :data:`MIN_SAMPLES_FOR_CHECK` samples the check
    only runs when ``final`` (the end of a full pass).
    """
    limit = max_corrupt_fraction(limit)
    if total <= 0 or skipped <= 0 or (total < MIN_SAMPLES_FOR_CHECK and not final):
        return
    if skipped / total > limit:
        raise CorruptDataError(
            f"{where}: {skipped} of {total} samples are corrupt ({skipped / total:.1%}), more than the "
            f"tolerated {limit:.1%} (set CLIPBUDGET_MAX_CORRUPT_FRACTION to change it)"
        )


def split_key(name: str) -> tuple[str, str] | None:
    """``"a/000000012.png"`` → ``("a/000000012", "png")``; ``None`` for names without an extension."""
    m = _KEY_RE.match(name)
    return (m.group(1), m.group(2).lower()) if m else None


def list_shards(path: str | os.PathLike) -> list[Path]:
    """The tar shards of ``path``, sorted by name.

    ``path`` is a folder (its ``*.tar``), one ``.tar`` file, or a pattern: webdataset's brace notation
    (``/data/{00000..00099}.tar``) and/or a glob (``/data/part-*/*.tar``). Raises :class:`ConfigError`
    (one line) for a missing folder, a folder or pattern without shards, a listed shard that does not
    exist, or a URL (shards are read with random access: copy them locally or mount the bucket).
    """
    text = os.fspath(path)
    if "://" in text:
        raise ConfigError(
            f"train data {text!r} is a URL; clipbudget reads local or mounted shards (random access): "
            "copy them to disk or mount the bucket, then give the folder"
        )
    if "{" in text or any(c in text for c in "*?["):
        return _expand_pattern(text)
    p = Path(text).expanduser()
    if p.is_file():
        if p.suffix != ".tar":
            raise ConfigError(f"train data {str(p)!r} is a file but not a .tar shard; give a folder of *.tar shards")
        return [p]
    if not p.is_dir():
        raise ConfigError(f"train data folder {str(p)!r} does not exist; build one with 'clipbudget data fashion-mnist --out DIR'")
    shards = sorted(q for q in p.iterdir() if q.suffix == ".tar" and q.is_file() and not q.name.startswith("."))
    if not shards:
        raise ConfigError(f"train data folder {str(p)!r} holds no *.tar shards; build one with 'clipbudget data fashion-mnist --out DIR'")
    return shards


def _expand_pattern(text: str) -> list[Path]:
    import glob

    from braceexpand import braceexpand

    try:
        patterns = list(braceexpand(os.path.expanduser(text)))
    except Exception as exc:  # noqa: BLE001 - braceexpand raises plain errors on malformed braces
        raise ConfigError(f"train data pattern {text!r} is malformed ({exc})") from None
    found: list[str] = []
    missing: list[str] = []
    for pat in patterns:
        if any(c in pat for c in "*?["):
            found += glob.glob(pat)
        elif os.path.isfile(pat):
            found.append(pat)
        else:
            missing.append(pat)
    if missing:
        raise ConfigError(f"train data pattern {text!r}: {len(missing)} listed shard(s) do not exist, e.g. {missing[0]!r}")
    shards = sorted({Path(f) for f in found if f.endswith(".tar")})
    if not shards:
        raise ConfigError(f"train data pattern {text!r} matches no *.tar shards")
    return shards


def shard_stats_path(shard: Path) -> Path:
    """img2dataset's per-shard stats file: ``00003.tar`` → ``00003_stats.json``."""
    return shard.with_name(shard.stem + "_stats.json")


def expected_count(shard: Path) -> int | None:
    """Samples the writer put in ``shard`` (from its ``_stats.json``), or ``None`` if unknown."""
    try:
        stats = json.loads(shard_stats_path(shard).read_text())
        return int(stats.get("successes", stats.get("count")))
    except (OSError, ValueError, TypeError):
        return None


# --------------------------------------------------------------------------------------------------- writing


def _add_member(tar: tarfile.TarFile, name: str, data: bytes, mtime: float) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(mtime)
    info.mode = 0o444
    tar.addfile(info, io.BytesIO(data))


class ShardWriter:
    """Write samples into numbered tar shards, each one atomically (temp file + fsync + rename).

    Args:
        out_dir: the shard folder (created).
        shard_size: samples per shard (img2dataset's ``number_sample_per_shard``).
        start_shard: number of the first shard written (``{shard:05d}.tar``).

    A shard becomes visible under its final name only once complete, with its ``_stats.json`` beside it,
    so a crash leaves whole shards or none. Use as a context manager; :meth:`close` flushes the last one.
    """

    def __init__(self, out_dir: str | os.PathLike, *, shard_size: int = 10_000, start_shard: int = 0):
        if shard_size < 1:
            raise ConfigError(f"shard size {shard_size!r} must be a positive number of samples")
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.shard_size = int(shard_size)
        self.shard = int(start_shard)
        self.written: list[Path] = []
        self.total = 0
        self._tar: tarfile.TarFile | None = None
        self._tmp: Path | None = None
        self._count = 0
        self._t0 = time.time()

    def _open(self) -> None:
        final = self.out_dir / f"{self.shard:05d}.tar"
        self._tmp = final.with_name(f".{final.name}.tmp{os.getpid()}")
        self._tar = tarfile.open(self._tmp, "w", format=tarfile.USTAR_FORMAT)  # noqa: SIM115 - closed by _close_shard
        self._count = 0
        self._t0 = time.time()

    def _close_shard(self) -> None:
        if self._tar is None:
            return
        self._tar.close()
        final = self.out_dir / f"{self.shard:05d}.tar"
        with open(self._tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(self._tmp, final)
        stats = {
            "count": self._count,
            "successes": self._count,
            "failed_to_download": 0,
            "failed_to_resize": 0,
            "duration": round(time.time() - self._t0, 3),
            "start_time": self._t0,
            "end_time": time.time(),
            "status": "success",
        }
        write_atomic(shard_stats_path(final), json.dumps(stats, indent=1).encode())
        self.written.append(final)
        self._tar = None
        self.shard += 1

    def write(self, key: str, image: bytes, caption: str, meta: dict, *, image_ext: str = "png") -> None:
        """Add one sample: ``key.<image_ext>``, ``key.txt``, ``key.json`` (``meta`` plus ``key``)."""
        if self._tar is None:
            self._open()
        now = time.time()
        meta = {"key": key, **meta}
        _add_member(self._tar, f"{key}.{image_ext}", image, now)
        _add_member(self._tar, f"{key}.txt", caption.encode("utf-8"), now)
        _add_member(self._tar, f"{key}.json", json.dumps(meta, sort_keys=True).encode(), now)
        self._count += 1
        self.total += 1
        if self._count >= self.shard_size:
            self._close_shard()

    def close(self) -> list[Path]:
        """Finish the open shard; returns every shard written."""
        self._close_shard()
        return self.written

    def abort(self) -> None:
        """Drop the shard being written (its temp file); completed shards stay."""
        if self._tar is not None:
            self._tar.close()
            self._tmp.unlink(missing_ok=True)
            self._tar = None

    def __enter__(self) -> ShardWriter:  # noqa: PYI034
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


# --------------------------------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class MemberRef:
    """Where one member's bytes lie in a tar: byte ``offset`` and ``size``."""

    offset: int
    size: int


@dataclass
class ShardScan:
    """What :func:`scan_shard` found in one tar without decoding images.

    ``samples`` holds, per complete sample, ``(key, image_ext, image_ref, caption_ref, meta)``;
    ``corrupt`` counts samples (or lost members) skipped, with ``reasons`` by kind.
    """

    path: Path
    samples: list[tuple[str, str, MemberRef, MemberRef, dict]] = field(default_factory=list)
    corrupt: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def _skip(self, reason: str, n: int = 1) -> None:
        self.corrupt += n
        self.reasons[reason] = self.reasons.get(reason, 0) + n


class _BadTar(Exception):
    """A tar header that fails its checksum or points past the end of the file."""


_ZERO_BLOCK = bytes(512)
#: Bytes read at a time while scanning headers (many small members per read; one per big member).
_SCAN_WINDOW = 1 << 16


def _tar_number(field: bytes) -> int:
    if field[:1] and field[0] & 0x80:  # GNU base-256 (sizes >= 8 GiB)
        return int.from_bytes(field[1:], "big")
    digits = field.split(b"\0", 1)[0].strip(b" ")
    return int(digits, 8) if digits else 0


def iter_tar_members(fd: int, file_size: int, want_data: Callable[[str], bool]) -> Iterator[tuple[str, int, int, bytes | None]]:
    """Regular-file members of a tar as ``(name, data_offset, size, data)``, reading only headers.

    ``data`` is read only where ``want_data(name)``. Understands ustar, GNU long names and pax headers
    (what tarfile, GNU tar and webdataset's writers produce). Ends quietly at the end-of-archive block or
    at the end of the file; raises :class:`_BadTar` for a header with a bad checksum or a member whose
    data runs past the end of the file (a truncated or damaged tar). Far faster than ``tarfile`` for
    scanning: one ``pread`` per header and no per-member objects.
    """
    off = 0
    long_name: str | None = None
    pax: dict[str, str] = {}
    buf, buf_off = b"", 0  # a window of the file: small members need one read per many headers

    def read(at: int, n: int) -> bytes:
        nonlocal buf, buf_off
        if not (buf_off <= at and at + n <= buf_off + len(buf)):
            buf, buf_off = os.pread(fd, max(n, _SCAN_WINDOW), at), at
        return buf[at - buf_off:at - buf_off + n]

    while True:
        hdr = read(off, 512)
        if len(hdr) == 0:
            return
        if len(hdr) < 512:
            raise _BadTar(f"truncated header at byte {off}")
        if hdr == _ZERO_BLOCK:
            return
        try:
            checksum = _tar_number(hdr[148:156])
            size = _tar_number(hdr[124:136])
        except ValueError:
            raise _BadTar(f"unreadable header at byte {off}") from None
        if checksum != sum(hdr[:148]) + 256 + sum(hdr[156:]):
            raise _BadTar(f"bad header checksum at byte {off}")
        kind = hdr[156:157]
        if "size" in pax:
            size = int(pax["size"])
        data_off = off + 512
        if data_off + size > file_size:
            raise _BadTar(f"member data runs past the end of the file at byte {data_off}")
        nxt = data_off + (size + 511) // 512 * 512
        if kind == b"L":  # GNU long name: the next header's name
            long_name = read(data_off, size).split(b"\0", 1)[0].decode("utf-8", "replace")
        elif kind in (b"x", b"g"):  # pax extended header ("g" global: ignored beyond parsing)
            records = read(data_off, size)  # "<length> <key>=<value>\n", length in bytes
            parsed: dict[str, str] = {}
            i = 0
            while i < len(records):
                sp = records.find(b" ", i)
                if sp < 0:
                    break
                try:
                    length = int(records[i:sp])
                except ValueError:
                    raise _BadTar(f"unreadable pax header at byte {off}") from None
                if length <= 0:
                    raise _BadTar(f"unreadable pax header at byte {off}")
                key, _, value = records[sp + 1:i + length - 1].partition(b"=")
                parsed[key.decode("utf-8", "replace")] = value.decode("utf-8", "replace")
                i += length
            if kind == b"x":
                pax = parsed
        else:
            if kind in (b"0", b"\0", b"7"):
                if "path" in pax:
                    name = pax["path"]
                elif long_name is not None:
                    name = long_name
                else:
                    name = hdr[:100].split(b"\0", 1)[0].decode("utf-8", "replace")
                    if hdr[257:262] == b"ustar":
                        prefix = hdr[345:500].split(b"\0", 1)[0].decode("utf-8", "replace")
                        if prefix:
                            name = f"{prefix}/{name}"
                yield name, data_off, size, (read(data_off, size) if want_data(name) else None)
            long_name, pax = None, {}
        off = nxt


def _wants_text(name: str) -> bool:
    return name.endswith((".json", ".txt"))


def scan_shard(path: str | os.PathLike) -> ShardScan:
    """Index one tar: the byte ranges of each complete sample's image and caption, and its JSON metadata.

    Tolerates corruption (see the module docstring): a truncated tar yields the samples before the cut and
    counts the rest as corrupt, using ``_stats.json``'s count when there is one.
    """
    path = Path(path)
    scan = ShardScan(path)
    groups: dict[str, dict[str, tuple[MemberRef, bytes | None]]] = {}
    order: list[str] = []
    truncated = False
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        for name, offset, nbytes, data in iter_tar_members(fd, size, _wants_text):
            parts = split_key(name)
            if parts is None:
                continue
            key, ext = parts
            members = groups.get(key)
            if members is None:
                members = groups[key] = {}
                order.append(key)
            members[ext] = (MemberRef(offset, nbytes), data)
    except _BadTar as exc:
        log.warning("%s: damaged tar after %d samples (%s)", path, len(order), exc)
        truncated = True
    finally:
        os.close(fd)
    for key in order:
        members = groups[key]
        image_ext = next((e for e in IMAGE_EXTS if e in members), None)
        if image_ext is None:
            # The last key of a truncated tar lost members to the cut; count it as lost, not as malformed.
            scan._skip("missing image")
            continue
        if "txt" not in members:
            scan._skip("missing caption")
            continue
        meta: dict = {}
        if "json" in members:
            try:
                meta = json.loads(members["json"][1].decode("utf-8"))
                if not isinstance(meta, dict):
                    raise ValueError("not an object")  # noqa: TRY004 - caught below
            except (ValueError, UnicodeDecodeError):
                scan._skip("bad json")
                continue
        scan.samples.append((key, image_ext, members[image_ext][0], members["txt"][0], meta))
    # A cut that falls on a header boundary looks like a clean end, so the writer's count is the check.
    expected = expected_count(path)
    if expected is not None and expected > len(order):
        scan._skip("truncated tar", expected - len(order))
    elif expected is None and truncated:
        scan._skip("truncated tar")
    return scan


def read_member(fd: int, ref: MemberRef) -> bytes:
    """The bytes of one member, read with ``os.pread`` (no seek: safe to share ``fd`` across threads)."""
    data = os.pread(fd, ref.size, ref.offset)
    if len(data) != ref.size:
        raise OSError(f"short read: {len(data)} of {ref.size} bytes at offset {ref.offset}")
    return data


@dataclass(frozen=True)
class Sample:
    """One decoded sample: ``image`` is a PIL image (mode as stored), ``meta`` its JSON."""

    key: str
    image: object
    caption: str
    meta: dict
    shard: str


def decode_image(data: bytes):
    """Decode image bytes to a fully loaded PIL image; raises ``ValueError`` if they do not decode."""
    from PIL import Image, UnidentifiedImageError

    try:
        img = Image.open(io.BytesIO(data))
        img.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ValueError(f"undecodable image: {exc}") from None
    return img


def iter_samples(
    shards: Sequence[str | os.PathLike],
    *,
    decode: bool = True,
    max_corrupt: float | None = None,
    stats: dict | None = None,
) -> Iterator[Sample]:
    """Every good sample of ``shards`` in order, skipping and counting corrupt ones.

    With ``decode`` the image is decoded (an undecodable one is skipped); otherwise ``Sample.image`` holds
    the raw bytes. ``stats`` (if given) receives ``{"read": n, "skipped": n, "reasons": {...}}``. Raises
    :class:`CorruptDataError` once the skipped fraction passes the tolerated one.
    """
    stats = stats if stats is not None else {}
    stats.setdefault("read", 0)
    stats.setdefault("skipped", 0)
    stats.setdefault("reasons", {})
    where = str(Path(shards[0]).parent) if shards else "shards"
    for shard in shards:
        scan = scan_shard(shard)
        stats["skipped"] += scan.corrupt
        for k, v in scan.reasons.items():
            stats["reasons"][k] = stats["reasons"].get(k, 0) + v
        fd = os.open(shard, os.O_RDONLY)
        try:
            for key, _ext, img_ref, cap_ref, meta in scan.samples:
                try:
                    image = read_member(fd, img_ref)
                    caption = read_member(fd, cap_ref).decode("utf-8")
                    if decode:
                        image = decode_image(image)
                except (OSError, ValueError, UnicodeDecodeError):
                    stats["skipped"] += 1
                    stats["reasons"]["undecodable"] = stats["reasons"].get("undecodable", 0) + 1
                    check_corrupt(stats["skipped"], stats["read"] + stats["skipped"], where, limit=max_corrupt)
                    continue
                stats["read"] += 1
                yield Sample(key, image, caption, meta, Path(shard).name)
        finally:
            os.close(fd)
        check_corrupt(stats["skipped"], stats["read"] + stats["skipped"], where, limit=max_corrupt)
    check_corrupt(stats["skipped"], stats["read"] + stats["skipped"], where, limit=max_corrupt, final=True)
