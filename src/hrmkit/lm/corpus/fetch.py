"""Getting one URL's bytes onto disk, resumably, for `hrm data download-slice` (download.py).

aria2c does the downloading when asked for (or, with `auto`, when it is on PATH): several
connections and its own resume. Otherwise urllib: each file goes to `<destination>.part`, and
after a dropped connection or a short read the missing bytes are asked for with an HTTP Range
request, so a rerun after an interruption reuses the finished part. Network trouble is retried
with growing waits; an HTTP 4xx (but 408 / 429) fails at once.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

CHUNK_BYTES = 1 << 20  # bytes read and written at a time
RETRY_WAIT_SECONDS = 1.0  # the first wait before a retry; it doubles with every attempt, up to 30 s

DownloaderName = Literal["auto", "aria2c", "python"]
Downloader = Callable[[str, Path, "FetchOptions", Callable[[int], None], list[int]], int]


class DownloadError(RuntimeError):
    """A download failed after every retry (or for good, e.g. HTTP 404)."""


@dataclass
class FetchOptions:
    """How files are fetched: which downloader, how many connections, how patiently."""

    aria2c_connections: int = 4
    """aria2c connections per server"""
    aria2c_split: int = 4
    """aria2c pieces per file"""
    downloader: DownloaderName = "auto"
    """auto: aria2c when on PATH, else python"""
    retries: int = 5
    """retries per shard after a failure"""
    timeout: float = 60.0
    """seconds without data before a retry"""

    def __post_init__(self) -> None:
        if self.downloader not in get_args(DownloaderName):
            raise ValueError(f"downloader must be auto, aria2c or python, got {self.downloader!r}")
        if self.downloader == "aria2c" and shutil.which("aria2c") is None:
            raise ValueError("downloader aria2c was asked for but aria2c is not on PATH")
        for name in ("aria2c_connections", "aria2c_split", "retries"):
            if getattr(self, name) < (0 if name == "retries" else 1):
                raise ValueError(f"{name.replace('_', ' ')} must be >= {0 if name == 'retries' else 1}")

    def chosen_downloader(self) -> tuple[str, Downloader]:
        """("aria2c" or "python", the function that downloads one file with it)."""
        if self.downloader == "aria2c" or (self.downloader == "auto" and shutil.which("aria2c")):
            return "aria2c", aria2c_download
        return "python", python_download


class _ShortRead(Exception):
    """The connection ended before the announced number of bytes arrived."""


def is_url(text: str) -> bool:
    return urllib.parse.urlparse(text).scheme in ("http", "https", "ftp", "file")


def retrying(what: str, options: FetchOptions, attempt_once: Callable[[], Any], counter: list[int]) -> Any:
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
        time.sleep(min(RETRY_WAIT_SECONDS * 2**attempt, 30.0))
    raise AssertionError("unreachable")


def fetch_bytes(url: str, options: FetchOptions, counter: list[int]) -> bytes:
    """The whole (small) file at `url`, retried like a shard."""
    def fetch() -> bytes:
        with urllib.request.urlopen(url, timeout=options.timeout) as response:
            return response.read()
    return retrying(f"index {url}", options, fetch, counter)


def _content_range_total(header: str | None) -> int | None:
    match = re.match(r"bytes\s+(?:\d+-\d+|\*)/(\d+)", header or "")
    return int(match.group(1)) if match else None


def python_download(url: str, destination: Path, options: FetchOptions, on_bytes: Callable[[int], None],
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
                have = resumed[0] = 0  # the server ignored the Range header and sends the whole file
            elif have:
                first = re.match(r"bytes\s+(\d+)-", response.headers.get("Content-Range", ""))
                if first is None or int(first.group(1)) != have:
                    partial.unlink(missing_ok=True)
                    raise _ShortRead(f"asked for bytes {have}- but got {response.headers.get('Content-Range')}")
            length = response.headers.get("Content-Length")
            expected = have + int(length) if length is not None else None
            with open(partial, "ab" if have else "wb") as file:
                while True:
                    chunk = response.read(CHUNK_BYTES)
                    if not chunk:
                        break
                    file.write(chunk)
                    on_bytes(len(chunk))
        size = partial.stat().st_size
        if expected is not None and size < expected:
            raise _ShortRead(f"connection closed after {size} of {expected} bytes")

    retrying(url, options, attempt_once, counter)
    os.replace(partial, destination)
    return resumed[0]


def aria2c_download(url: str, destination: Path, options: FetchOptions, on_bytes: Callable[[int], None],
                    counter: list[int]) -> int:
    """Download with aria2c into `<destination>.part` (aria2c resumes from its own control file)."""
    partial = destination.with_name(destination.name + ".part")
    resumed = partial.stat().st_size if partial.exists() else 0
    command = [
        "aria2c", "--continue=true", "--allow-overwrite=false", "--auto-file-renaming=false",
        f"--max-connection-per-server={options.aria2c_connections}", f"--split={options.aria2c_split}",
        f"--max-tries={options.retries + 1}", f"--retry-wait={max(1, int(RETRY_WAIT_SECONDS))}",
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
