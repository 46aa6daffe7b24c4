"""`hrm data download-slice`: a slice of a sharded web corpus, downloaded resumably into one file.

The index (a local path or a URL, optionally gzip- or zstd-compressed) lists shard paths,
one per line; blank lines and `#` comments are skipped and `pattern` (a shell glob) keeps
only matching paths. Entry k of the filtered list is shard number k. A shard path that is a
full URL is used as it is, any other is appended to `base_url`.

The slice is `count` shards from `start`, or shards from `start` until `target_size`
downloaded bytes are reached. Without `start`, the slice begins where the slices already
taken from the same index end: every finished slice leaves `<output>.meta.json`, and all
such files in the output's folder are read.

Shards go to `<output>.parts/`, each under a `.part` name until complete. aria2c does the
downloading when it is on PATH (several connections, its own resume), urllib otherwise:
after a dropped connection or a short read it asks for the missing bytes with an HTTP
Range request. A rerun after an interruption therefore reuses every finished shard and
the finished part of the unfinished one. The shards are then decompressed (gzip / zstd,
told by their first bytes) and joined into `<output>` (zstd-compressed with `compress`), which
appears only once complete; then the meta is written, and a slice counts as finished only
once its meta is there; then the parts go.
"""

from __future__ import annotations

import fnmatch
import gzip
import http.client
import io
import json
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from hrmkit.files import atomic_write_text, write_atomically
from hrmkit.lm.corpus import Progress, optional_deps

META_KIND = "hrmkit-download-slice"
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_COPY_BYTES = 1 << 20
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGTP]?)i?B?\s*$", re.IGNORECASE)


class DownloadError(RuntimeError):
    """A download failed after every retry (or for good, e.g. HTTP 404)."""


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
    aria2c_connections: int = 4
    aria2c_split: int = 4
    downloader: str = "auto"  # auto, aria2c or python
    retries: int = 5
    timeout: float = 60.0
    retry_wait: float = 1.0
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
        if self.downloader not in ("auto", "aria2c", "python"):
            raise ValueError(f"downloader must be auto, aria2c or python, got {self.downloader!r}")
        if self.downloader == "aria2c" and shutil.which("aria2c") is None:
            raise ValueError("downloader aria2c was asked for but aria2c is not on PATH")
        for name in ("aria2c_connections", "aria2c_split", "retries"):
            if getattr(self, name) < (0 if name == "retries" else 1):
                raise ValueError(f"{name.replace('_', ' ')} must be >= {0 if name == 'retries' else 1}")


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


# --------------------------------------------------------------------------- fetching


def _is_url(text: str) -> bool:
    return urllib.parse.urlparse(text).scheme in ("http", "https", "ftp", "file")


def shard_url(base_url: str, shard_path: str) -> str:
    if _is_url(shard_path):
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


def _retrying(what: str, options: SliceOptions, attempt_once: Callable[[], Any], counter: list[int]) -> Any:
    """Run `attempt_once`, retrying network trouble with growing waits; HTTP 4xx fails at once."""
    for attempt in range(options.retries + 1):
        try:
            return attempt_once()
        except urllib.error.HTTPError as error:
            if 400 <= error.code < 500 and error.code not in (408, 429):
                raise DownloadError(f"{what}: HTTP {error.code} {error.reason}") from None
            problem = f"HTTP {error.code}"
        except (urllib.error.URLError, http.client.HTTPException, OSError, _ShortRead) as error:
            problem = " ".join(str(getattr(error, "reason", error)).split()) or type(error).__name__
        if attempt == options.retries:
            raise DownloadError(f"{what}: {problem} (gave up after {options.retries + 1} attempts)")
        counter[0] += 1
        time.sleep(min(options.retry_wait * 2**attempt, 30.0))
    raise AssertionError("unreachable")


def read_index(options: SliceOptions, counter: list[int]) -> list[str]:
    """The shard paths the index lists (after `pattern`)."""
    source = options.index_url
    if _is_url(source):
        def fetch() -> bytes:
            with urllib.request.urlopen(source, timeout=options.timeout) as response:
                return response.read()
        data = _retrying(f"index {source}", options, fetch, counter)
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


class _ShortRead(Exception):
    """The connection ended before the announced number of bytes arrived."""


def _content_range_total(header: str | None) -> int | None:
    match = re.match(r"bytes\s+(?:\d+-\d+|\*)/(\d+)", header or "")
    return int(match.group(1)) if match else None


def _python_download(url: str, destination: Path, options: SliceOptions, on_bytes: Callable[[int], None],
                     counter: list[int]) -> int:
    """Download to `destination` via `<destination>.part`, resuming with Range requests; bytes resumed."""
    partial = destination.with_name(destination.name + ".part")
    resumed = [partial.stat().st_size if partial.exists() else 0]

    def attempt_once() -> None:
        have = partial.stat().st_size if partial.exists() else 0
        request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
        try:
            response = urllib.request.urlopen(request, timeout=options.timeout)
        except urllib.error.HTTPError as error:
            total = _content_range_total(error.headers.get("Content-Range")) if error.code == 416 else None
            if error.code == 416 and total == have:
                return  # the part was complete already (interrupted just before its rename)
            if error.code == 416:
                partial.unlink(missing_ok=True)  # our part does not fit the file as served now
                raise _ShortRead(f"range {have}- not satisfiable; starting over") from None
            raise
        with response:
            if have and response.status == 200:
                have = 0  # the server ignored the Range header and sends the whole file
            elif have:
                first = re.match(r"bytes\s+(\d+)-", response.headers.get("Content-Range", ""))
                if first is None or int(first.group(1)) != have:
                    partial.unlink(missing_ok=True)
                    raise _ShortRead(f"asked for bytes {have}- but got {response.headers.get('Content-Range')}")
            length = response.headers.get("Content-Length")
            expected = have + int(length) if length is not None else None
            with open(partial, "ab" if have else "wb") as file:
                while True:
                    chunk = response.read(_COPY_BYTES)
                    if not chunk:
                        break
                    file.write(chunk)
                    on_bytes(len(chunk))
        size = partial.stat().st_size
        if expected is not None and size < expected:
            raise _ShortRead(f"connection closed after {size} of {expected} bytes")

    _retrying(url, options, attempt_once, counter)
    os.replace(partial, destination)
    return resumed[0]


def _aria2c_download(url: str, destination: Path, options: SliceOptions, on_bytes: Callable[[int], None],
                     counter: list[int]) -> int:
    """Download with aria2c into `<destination>.part` (aria2c resumes from its own control file)."""
    partial = destination.with_name(destination.name + ".part")
    resumed = partial.stat().st_size if partial.exists() else 0
    command = [
        "aria2c", "--continue=true", "--allow-overwrite=false", "--auto-file-renaming=false",
        f"--max-connection-per-server={options.aria2c_connections}", f"--split={options.aria2c_split}",
        f"--max-tries={options.retries + 1}", f"--retry-wait={max(1, int(options.retry_wait))}",
        f"--timeout={int(options.timeout)}", "--file-allocation=none", "--console-log-level=error",
        "--summary-interval=0", "--download-result=hide", "--quiet=true",
        f"--dir={destination.parent}", f"--out={partial.name}", url,
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    reported = 0
    while process.poll() is None:
        time.sleep(0.25)
        size = partial.stat().st_size if partial.exists() else 0
        if size > reported:
            on_bytes(size - reported)
            reported = size
    error = process.stderr.read().decode("utf-8", "replace") if process.stderr else ""
    if process.returncode != 0:
        raise DownloadError(f"{url}: aria2c failed (exit {process.returncode}): {' '.join(error.split())[:300]}")
    os.replace(partial, destination)
    return resumed


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
                chunk = stream.read(_COPY_BYTES)
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

    use_aria2c = options.downloader == "aria2c" or (options.downloader == "auto" and shutil.which("aria2c"))
    download = _aria2c_download if use_aria2c else _python_download
    parts = _parts_dir(output)
    parts.mkdir(exist_ok=True)
    downloaded: list[tuple[ShardRecord, Path]] = []
    counter = _ByteCounter(progress, options.target_size)
    resumed_bytes = 0
    for index in range(start, end_limit):
        record = ShardRecord(index, paths[index], shard_url(options.base_url, paths[index]))
        destination = parts / f"{index:08d}-{Path(urllib.parse.urlparse(record.url).path).name or 'shard'}"
        if not destination.exists():
            resumed_bytes += download(record.url, destination, options, counter.add, retries)
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
    return SliceResult(meta, "aria2c" if use_aria2c else "python", time.perf_counter() - started, resumed_bytes,
                       retries[0], notes)
