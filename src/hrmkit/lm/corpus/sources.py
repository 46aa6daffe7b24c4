"""Read one data file as a stream of record batches, whatever its format.

Formats, told by the file name: `.jsonl` / `.ndjson` (one JSON value per line), `.json` (a
top-level array of records, or any number of concatenated values, which also covers JSON
Lines saved as .json), `.parquet`, and `.arrow` / `.feather` (Arrow IPC stream or file, as
the Hugging Face `datasets` cache writes them). JSON files may be compressed: `.gz`, `.zst`.

Every reader holds one batch at a time (parquet and arrow: one record batch; JSON: a read
buffer plus the largest single record), so files far larger than memory stream through.
"""

from __future__ import annotations

import gzip
import io
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from hrmkit.files import DatasetError
from hrmkit.lm.corpus import optional_deps

JSON_LINES_SUFFIXES = (".jsonl", ".ndjson")
ARROW_SUFFIXES = (".arrow", ".feather", ".ipc")
COMPRESSION_SUFFIXES = {".gz": "gzip", ".zst": "zstd", ".zstd": "zstd"}
DEFAULT_BATCH_SIZE = 1000

_READ_BYTES = 1 << 20
_WHITESPACE = re.compile(r"[ \t\n\r]*")


@dataclass(frozen=True)
class FileFormat:
    kind: str  # "jsonl", "json", "parquet" or "arrow"
    compression: str | None  # None, "gzip" or "zstd"


def file_format(path: str | Path) -> FileFormat | None:
    """The format a file name announces, or None for names no reader here handles."""
    name = Path(path).name.lower()
    compression = None
    for suffix, method in COMPRESSION_SUFFIXES.items():
        if name.endswith(suffix):
            compression, name = method, name[: -len(suffix)]
            break
    if name.endswith(JSON_LINES_SUFFIXES):
        kind = "jsonl"
    elif name.endswith(".json"):
        kind = "json"
    elif name.endswith(".parquet"):
        kind = "parquet"
    elif name.endswith(ARROW_SUFFIXES):
        kind = "arrow"
    else:
        return None
    if compression and kind in ("parquet", "arrow"):
        return None  # both compress internally; an outer .gz is not something we can stream
    return FileFormat(kind, compression)


def require_format(path: Path) -> FileFormat:
    found = file_format(path)
    if found is None:
        raise DatasetError(
            path,
            "unknown file type: expected .jsonl, .ndjson or .json (optionally .gz / .zst), .parquet or .arrow",
        )
    return found


def open_decompressed(path: Path, compression: str | None) -> BinaryIO:
    """A binary stream of the file's (decompressed) bytes."""
    if compression == "gzip":
        return gzip.open(path, "rb")
    if compression == "zstd":
        zstandard = optional_deps.zstandard()
        raw = open(path, "rb")
        # read_across_frames: files written by several `zstd` calls in a row hold many frames.
        reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True, closefd=True)
        return io.BufferedReader(reader, buffer_size=_READ_BYTES)
    return open(path, "rb")


def open_compressed_as(name: Path, temporary: Path) -> BinaryIO:
    """A binary stream that writes ``temporary`` compressed as ``name``'s suffix asks (.gz, .zst), the
    way ``open_decompressed`` reads it back; any other name is written as it is."""
    suffix = name.suffix.lower()
    if suffix == ".gz":
        return _GzipWriter(name, temporary)
    if suffix == ".zst":
        zstandard = optional_deps.zstandard()
        return zstandard.ZstdCompressor().stream_writer(open(temporary, "wb"), closefd=True)
    return open(temporary, "wb")


class _GzipWriter(gzip.GzipFile):
    """gzip whose header names the file as it will be called, not the temporary it is written as (which
    `gunzip -N` would restore), with no time in it, so the same records make the same bytes."""

    def __init__(self, name: Path, temporary: Path):
        self._raw = open(temporary, "wb")
        super().__init__(filename=name.name, mode="wb", fileobj=self._raw, mtime=0)

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._raw.close()


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise DatasetError(path, "file not found")
    if not path.is_file():
        raise DatasetError(path, "not a file")


def iter_record_batches(
    path: str | Path, batch_size: int = DEFAULT_BATCH_SIZE, columns: Sequence[str] | None = None
) -> Iterator[list[Any]]:
    """Lists of up to `batch_size` records, in file order.

    `columns` names the top-level fields the caller needs; parquet and arrow then read only
    those columns (absent ones are simply left out of the records). JSON records keep all keys.
    """
    path = Path(path)
    _check_readable(path)
    found = require_format(path)
    try:
        if found.kind == "jsonl":
            yield from _jsonl_batches(path, found.compression, batch_size)
        elif found.kind == "json":
            yield from _batched(_json_values(path, found.compression), batch_size)
        elif found.kind == "parquet":
            yield from _parquet_batches(path, batch_size, columns)
        else:
            yield from _arrow_batches(path, batch_size, columns)
    except (OSError, EOFError, UnicodeDecodeError) as error:
        if isinstance(error, FileNotFoundError):
            raise
        raise DatasetError(path, f"cannot read ({_one_line(error)})") from None
    except Exception as error:
        if _is_decompression_error(error):
            raise DatasetError(path, f"cannot decompress ({_one_line(error)})") from None
        raise


def _is_decompression_error(error: Exception) -> bool:
    return type(error).__name__ == "ZstdError" or isinstance(error, gzip.BadGzipFile)


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _batched(values: Iterator[Any], batch_size: int) -> Iterator[list[Any]]:
    batch = []
    for value in values:
        batch.append(value)
        if len(batch) >= batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def _jsonl_batches(path: Path, compression: str | None, batch_size: int) -> Iterator[list[Any]]:
    batch = []
    loads = json.loads
    with open_decompressed(path, compression) as stream:
        for line_number, line in enumerate(stream, 1):
            if line.isspace() or not line:
                continue
            try:
                batch.append(loads(line))
            except (json.JSONDecodeError, UnicodeDecodeError) as error:
                raise DatasetError(f"{path}:{line_number}", f"not valid JSON ({_one_line(error)})") from None
            if len(batch) >= batch_size:
                yield batch
                batch = []
    if batch:
        yield batch


class _JsonValueStream:
    """The values of a JSON text read in pieces: a top-level array's items, or concatenated values."""

    def __init__(self, text: io.TextIOBase, path: Path) -> None:
        self.text, self.path = text, path
        self.buffer, self.position, self.eof = "", 0, False
        self.decoder = json.JSONDecoder()

    def _refill(self, size: int = _READ_BYTES) -> bool:
        more = self.text.read(size)
        if not more:
            self.eof = True
            return False
        self.buffer = self.buffer[self.position :] + more
        self.position = 0
        return True

    def _peek(self) -> str:
        """The next non-blank character ('' at the end), consuming the blanks before it."""
        while True:
            self.position = _WHITESPACE.match(self.buffer, self.position).end()
            if self.position < len(self.buffer):
                return self.buffer[self.position]
            if self.eof or not self._refill():
                return ""

    def _fail(self, problem: str) -> None:
        raise DatasetError(self.path, f"not valid JSON ({problem})")

    def _decode_one(self) -> Any:
        read_size = _READ_BYTES
        while True:
            try:
                value, end = self.decoder.raw_decode(self.buffer, self.position)
            except json.JSONDecodeError as error:
                # Most often the value runs past the buffer: read more (doubling, so one
                # huge record costs linear time) and try again; at the end it is real.
                if self.eof or not self._refill(read_size):
                    self._fail(_one_line(error))
                read_size *= 2
                continue
            if end == len(self.buffer) and not self.eof and self._refill(read_size):
                continue  # a number cut at the buffer's end may go on
            self.position = end
            return value

    def __iter__(self) -> Iterator[Any]:
        first = self._peek()
        in_array = first == "["
        if in_array:
            self.position += 1
        count = 0
        while True:
            char = self._peek()
            if in_array:
                if char == "]":
                    self.position += 1
                    if self._peek():
                        self._fail("unexpected data after the closing ']'")
                    return
                if count:
                    if char != ",":
                        self._fail(f"expected ',' or ']' after item {count}")
                    self.position += 1
                    char = self._peek()
            if not char:
                if in_array:
                    self._fail("the top-level array never closes")
                return
            yield self._decode_one()
            count += 1


def _json_values(path: Path, compression: str | None) -> Iterator[Any]:
    with open_decompressed(path, compression) as stream:
        text = io.TextIOWrapper(stream, encoding="utf-8")
        yield from _JsonValueStream(text, path)


def _parquet_batches(path: Path, batch_size: int, columns: Sequence[str] | None) -> Iterator[list[Any]]:
    parquet = optional_deps.pyarrow_parquet()
    pyarrow = optional_deps.pyarrow()
    try:
        parquet_file = parquet.ParquetFile(path)
    except pyarrow.ArrowException as error:
        raise DatasetError(path, f"not a readable parquet file ({_one_line(error)})") from None
    with parquet_file:
        names = parquet_file.schema_arrow.names
        wanted = [name for name in names if name in set(columns)] if columns else None
        for batch in parquet_file.iter_batches(batch_size=batch_size, columns=wanted):
            yield batch.to_pylist()


def _arrow_record_batches(path: Path) -> Iterator[Any]:
    pyarrow = optional_deps.pyarrow()
    # A plain file, not a memory map: mapped pages would count toward the process's RSS.
    with pyarrow.OSFile(str(path)) as source:
        try:
            reader = pyarrow.ipc.open_stream(source)
        except pyarrow.ArrowInvalid:
            source.seek(0)
            try:
                reader = pyarrow.ipc.open_file(source)
            except pyarrow.ArrowInvalid as error:
                raise DatasetError(path, f"not an Arrow IPC stream or file ({_one_line(error)})") from None
            for index in range(reader.num_record_batches):
                yield reader.get_batch(index)
            return
        yield from reader


def _arrow_batches(path: Path, batch_size: int, columns: Sequence[str] | None) -> Iterator[list[Any]]:
    for batch in _arrow_record_batches(path):
        if columns:
            keep = [name for name in batch.schema.names if name in set(columns)]
            batch = batch.select(keep)
        for start in range(0, batch.num_rows, batch_size):
            yield batch.slice(start, batch_size).to_pylist()


def count_records(path: str | Path) -> int:
    """How many records `iter_record_batches` will yield (parquet: from its footer, for free)."""
    path = Path(path)
    _check_readable(path)
    found = require_format(path)
    if found.kind == "parquet":
        parquet = optional_deps.pyarrow_parquet()
        with parquet.ParquetFile(path) as parquet_file:
            return parquet_file.metadata.num_rows
    if found.kind == "arrow":
        return sum(batch.num_rows for batch in _arrow_record_batches(path))
    if found.kind == "jsonl":
        with open_decompressed(path, found.compression) as stream:
            return sum(1 for line in stream if line and not line.isspace())
    return sum(len(batch) for batch in iter_record_batches(path))


def first_record(paths: Sequence[Path]) -> Any:
    """The first record of the first non-empty file (all its fields), or None when all are empty.

    All fields, so that a message about a mistyped field can list the real ones.
    """
    for path in paths:
        for batch in iter_record_batches(path, batch_size=1):
            return batch[0]
    return None
