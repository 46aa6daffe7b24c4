"""`hrm data download-slice`: a slice of a sharded web corpus, downloaded resumably into one file.

The index (a local path or a URL, optionally gzip- or zstd-compressed) lists shard paths,
one per line; blank lines and `#` comments are skipped and `pattern` (a shell glob) keeps
only matching paths. Entry k of the filtered list is shard number k. A shard path that is a
full URL is used as it is, any other is appended to `base_url`.

The slice is `count` shards from `start`, or shards from `start` until `target_size`
downloaded bytes are reached. Without `start`, the slice begins where the slices already
taken from the same index end: every finished slice leaves `<output>.meta.json`, and all
such files in the output's folder are read.

Shards go to `<output>.parts/` and are fetched resumably (fetch.py): a rerun after an
interruption reuses every finished shard and the finished part of the unfinished one. The
shards are then decompressed (gzip / zstd, told by their first bytes) and joined into
`<output>` (zstd-compressed with `compress`), which appears only once complete; then the meta
is written, and a slice counts as finished only once its meta is there; then the parts go.
"""

from __future__ import annotations

import fnmatch
import gzip
import io
import json
import re
import shutil
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from hrmkit.files import atomic_write_text, write_atomically
from hrmkit.lm.corpus import Progress, optional_deps
from hrmkit.lm.corpus.fetch import (
    CHUNK_BYTES,
    DownloadError,
    FetchOptions,
    fetch_bytes,
    is_url,
)

META_KIND = "hrmkit-download-slice"
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGTP]?)i?B?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Bytes in '20G', '1.5T', '500M', '64K' or '1000' (powers of 1024)."""
    match = _SIZE.match(str(text))
    if match is None:
        raise ValueError(f"size {text!r} is not a number with an optional K, M, G, T or P suffix (e.g. 20G)")
    number, unit = float(match.group(1)), match.group(2).upper()
    size = int(number * 1024 ** " KMGTP".index(unit or " "))
    if size <= 0:
        raise ValueError(f"size {text!r} must be more than 0 bytes")
    return size


@dataclass
class SliceOptions:
    index_url: str
    base_url: str
    output: Path
    start: int | None = None  # None: continue after the slices already taken
    count: int | None = None
    target_size: int | None = None  # bytes
    pattern: str | None = None
    compress: bool = False
    compression_level: int = 3
    fetch: FetchOptions = field(default_factory=FetchOptions)
    overwrite: bool = False

    def __post_init__(self) -> None:
        if (self.count is None) == (self.target_size is None):
            raise ValueError("give exactly one of count and target size")
        if self.count is not None and self.count < 1:
            raise ValueError(f"count must be >= 1, got {self.count}")
        if self.start is not None and self.start < 0:
            raise ValueError(f"start must be >= 0, got {self.start}")
        if not 1 <= self.compression_level <= 22:
            raise ValueError(f"the zstd compression level must be in 1..22, got {self.compression_level}")


@dataclass
class ShardRecord:
    index: int
    path: str
    url: str
    bytes: int = 0
    samples: int = 0


@dataclass
class SliceResult:
    meta: dict[str, Any]
    downloader: str
    seconds: float
    resumed_bytes: int = 0
    retries: int = 0
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- the index


def shard_url(base_url: str, shard_path: str) -> str:
    if is_url(shard_path):
        return shard_path
    return base_url.rstrip("/") + "/" + shard_path.lstrip("/")


def _decompressed_bytes(data: bytes, where: str) -> bytes:
    if data.startswith(GZIP_MAGIC):
        try:
            return gzip.decompress(data)
        except (OSError, EOFError) as error:
            raise ValueError(f"{where}: cannot gunzip ({error})") from None
    if data.startswith(ZSTD_MAGIC):
        zstandard = optional_deps.zstandard()
        with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data), read_across_frames=True) as reader:
            return reader.read()
    return data


def read_index(options: SliceOptions, counter: list[int]) -> list[str]:
    """The shard paths the index lists (after `pattern`)."""
    source = options.index_url
    if is_url(source):
        data = fetch_bytes(source, options.fetch, counter)
    else:
        try:
            data = Path(source).read_bytes()
        except OSError as error:
            raise ValueError(f"index {source}: cannot read ({error.strerror or error})") from None
    try:
        text = _decompressed_bytes(data, f"index {source}").decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"index {source}: not a text list of shard paths (nor gzip / zstd of one)") from None
    paths = [line.strip() for line in text.splitlines()]
    paths = [path for path in paths if path and not path.startswith("#")]
    if options.pattern:
        paths = [path for path in paths if fnmatch.fnmatch(path, options.pattern)]
    if not paths:
        raise ValueError(f"index {source}: no shard paths" + (f" match {options.pattern!r}" if options.pattern else ""))
    return paths


# --------------------------------------------------------------------------- slices


def _meta_path(output: Path) -> Path:
    return output.with_name(output.name + ".meta.json")


def _parts_dir(output: Path) -> Path:
    return output.with_name(output.name + ".parts")


def used_slices(options: SliceOptions) -> list[dict[str, Any]]:
    """Metas of finished slices from the same index and pattern in the output's folder."""
    found = []
    for path in sorted(options.output.parent.glob("*.meta.json")):
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
        if not isinstance(meta, dict) or meta.get("kind") != META_KIND:
            continue
        if meta.get("index_url") == options.index_url and meta.get("pattern") == options.pattern:
            if Path(path.parent, path.name[: -len(".meta.json")]).exists():
                found.append(meta)
    return found


def _open_shard(path: Path) -> BinaryIO:
    with open(path, "rb") as probe:
        magic = probe.read(4)
    if magic.startswith(GZIP_MAGIC):
        return gzip.open(path, "rb")
    if magic.startswith(ZSTD_MAGIC):
        zstandard = optional_deps.zstandard()
        return zstandard.ZstdDecompressor().stream_reader(open(path, "rb"), read_across_frames=True, closefd=True)
    return open(path, "rb")


def _append_shard(shard: Path, out: BinaryIO) -> int:
    """Copy the shard's decompressed bytes to `out`, ending with a newline; its line count."""
    lines, last = 0, b"\n"
    try:
        with _open_shard(shard) as stream:
            while True:
                chunk = stream.read(CHUNK_BYTES)
                if not chunk:
                    break
                out.write(chunk)
                lines += chunk.count(b"\n")
                last = chunk[-1:]
    except (OSError, EOFError) as error:
        raise DownloadError(f"{shard}: downloaded but cannot be decompressed ({error})") from None
    except Exception as error:
        if type(error).__name__ == "ZstdError":
            raise DownloadError(f"{shard}: downloaded but cannot be decompressed ({error})") from None
        raise
    if last != b"\n":
        out.write(b"\n")  # so the next shard's first line does not run on from this one's last
        lines += 1
    return lines


def _assemble(shards: Sequence[tuple[ShardRecord, Path]], output: Path, options: SliceOptions,
              progress: Progress | None) -> None:
    """Join the shards into `output`, which appears only once complete."""

    def join(raw: BinaryIO) -> None:
        if options.compress:
            zstandard = optional_deps.zstandard()
            compressor = zstandard.ZstdCompressor(level=options.compression_level)
            with compressor.stream_writer(raw, closefd=False) as writer:
                _append_shards(shards, writer, progress)
        else:
            _append_shards(shards, raw, progress)

    write_atomically(output, join)


def _append_shards(shards: Sequence[tuple[ShardRecord, Path]], out: BinaryIO, progress: Progress | None) -> None:
    for number, (record, path) in enumerate(shards, 1):
        record.samples = _append_shard(path, out)
        if progress:
            progress("joining shards", number, len(shards))


class _ByteCounter:
    """Downloaded bytes for the progress display: finished shards plus the current one."""

    def __init__(self, progress: Progress | None, total: int | None) -> None:
        self.progress, self.total = progress, total
        self.finished = 0
        self.current = 0

    def add(self, count: int) -> None:
        self.current += count
        self._show()

    def finish_shard(self, size: int) -> None:
        self.finished += size
        self.current = 0
        self._show()

    def _show(self) -> None:
        if self.progress:
            self.progress("downloading (bytes)", self.finished + self.current, self.total)


def _previous_sample_end(used: Sequence[dict[str, Any]], start: int) -> int | None:
    if start == 0:
        return 0
    for meta in used:
        if meta.get("end") == start and meta.get("sample_end") is not None:
            return int(meta["sample_end"])
    return None


def download_slice(options: SliceOptions, progress: Progress | None = None) -> SliceResult:
    started = time.perf_counter()
    output, meta_path = options.output, _meta_path(options.output)
    if output.exists() and not options.overwrite:
        if meta_path.exists():
            raise FileExistsError(
                f"{output} is a finished slice (see {meta_path.name}); pick another output to continue after it, "
                "or pass --force to replace it"
            )
        if not _parts_dir(output).exists():  # not an unfinished slice of ours: someone else's file
            raise FileExistsError(f"{output} exists and is not a slice; pass --force to replace it")
    output.parent.mkdir(parents=True, exist_ok=True)
    retries = [0]
    paths = read_index(options, retries)
    used = [meta for meta in used_slices(options) if Path(meta.get("output", "")) != output.resolve()]
    notes = []
    start = options.start if options.start is not None else max((int(meta["end"]) for meta in used), default=0)
    for meta in used:
        if options.start is not None and meta["start"] < (start + (options.count or 1)) and start < meta["end"]:
            notes.append(f"shards {meta['start']}-{meta['end']} were already taken by {Path(meta['output']).name}")
    if start >= len(paths):
        raise ValueError(
            f"the index lists {len(paths)} shard(s); nothing is left from shard {start}"
            + (" (after the slices already taken)" if options.start is None and used else "")
        )
    end_limit = len(paths) if options.count is None else min(len(paths), start + options.count)
    if options.count is not None and start + options.count > len(paths):
        notes.append(f"the index has only {len(paths)} shards: taking {end_limit - start}")

    downloader, download = options.fetch.chosen_downloader()
    parts = _parts_dir(output)
    parts.mkdir(exist_ok=True)
    downloaded: list[tuple[ShardRecord, Path]] = []
    counter = _ByteCounter(progress, options.target_size)
    resumed_bytes = 0
    for index in range(start, end_limit):
        record = ShardRecord(index, paths[index], shard_url(options.base_url, paths[index]))
        destination = parts / f"{index:08d}-{Path(urllib.parse.urlparse(record.url).path).name or 'shard'}"
        if not destination.exists():
            resumed_bytes += download(record.url, destination, options.fetch, counter.add, retries)
        record.bytes = destination.stat().st_size
        counter.finish_shard(record.bytes)
        downloaded.append((record, destination))
        if options.target_size is not None and counter.finished >= options.target_size:
            break

    # A slice counts as finished once its meta is there, so the meta of a slice this one replaces
    # goes before the new output takes the name; until the new meta is written, a rerun resumes.
    meta_path.unlink(missing_ok=True)
    _assemble(downloaded, output, options, progress)
    sample_start = _previous_sample_end(used, start)
    samples = sum(record.samples for record, _ in downloaded)
    meta = {
        "kind": META_KIND,
        "output": str(output.resolve()),
        "index_url": options.index_url,
        "base_url": options.base_url,
        "pattern": options.pattern,
        "index_entries": len(paths),
        "start": start,
        "end": start + len(downloaded),
        "samples": samples,
        "sample_start": sample_start,
        "sample_end": sample_start + samples if sample_start is not None else None,
        "bytes_downloaded": counter.finished,
        "compressed": "zstd" if options.compress else None,
        "shards": [record.__dict__ for record, _ in downloaded],
    }
    atomic_write_text(meta_path, json.dumps(meta, indent=2) + "\n")
    shutil.rmtree(parts, ignore_errors=True)
    return SliceResult(meta, downloader, time.perf_counter() - started, resumed_bytes,
                       retries[0], notes)
