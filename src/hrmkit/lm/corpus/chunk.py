"""`hrm data chunk`: documents -> overlapping windows of token ids, one JSON line each.

Each output line is `{"record": k, "start": s, "input_ids": [...]}`: up to `target_length`
tokens of record k (numbered from 0 in source order) starting at token s. Windows start at
0, stride, 2*stride, ... and stop after the first one that reaches the document's end, so
neighbours share `target_length - stride` tokens and no token is left out; the last window
may be shorter. Empty documents and records without the text field yield nothing and are
counted.

Records are cut into batches of `batch_size`. With `num_proc` > 1, worker processes
tokenize whole batches while the main process writes finished batches strictly in input
order, so the output is byte-identical whatever `num_proc` is. At most two batches per
worker are in flight, which bounds memory.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from hrmkit.files import staged_file
from hrmkit.lm.corpus import Progress
from hrmkit.lm.corpus.encoding import encode_texts, set_tokenizer_threads
from hrmkit.lm.corpus.extract import json_line
from hrmkit.lm.corpus.field_paths import FieldMissing, FieldPath, check_schema
from hrmkit.lm.corpus.sources import count_records, first_record, iter_record_batches, open_compressed_as
from hrmkit.lm.tokenizers import TextTokenizer, load_tokenizer


@dataclass(frozen=True)
class WindowSpec:
    target_length: int
    stride: int

    def __post_init__(self) -> None:
        if self.target_length < 1:
            raise ValueError(f"the target length must be >= 1, got {self.target_length}")
        if not 1 <= self.stride <= self.target_length:
            raise ValueError(
                f"the stride must be in 1..target length ({self.target_length}), got {self.stride}; "
                "a longer stride would skip tokens"
            )


@dataclass
class ChunkStats:
    records: int = 0
    windows: int = 0
    tokens: int = 0
    empty: int = 0
    unknown_tokens: int = 0  # <unk>: characters the tokenizer does not know
    missing_field: int = 0
    first_missing: str | None = None
    seconds: float = 0.0


def window_starts(length: int, spec: WindowSpec) -> Iterator[int]:
    start = 0
    while start < length:
        yield start
        if start + spec.target_length >= length:
            return
        start += spec.stride


def chunk_texts(
    numbered_texts: list[tuple[int, str]], tokenizer: TextTokenizer, spec: WindowSpec
) -> tuple[bytes, int, int, int, int]:
    """The JSON lines of one batch, and its (windows, tokens, empty documents, <unk> tokens)."""
    encoded = encode_texts(tokenizer, [text for _, text in numbered_texts])
    lines, windows, tokens, empty, unknown = [], 0, 0, 0, 0
    for (record, _), ids in zip(numbered_texts, encoded):
        tokens += len(ids)
        unknown += ids.count(tokenizer.unk_id)
        if not ids:
            empty += 1
        for start in window_starts(len(ids), spec):
            lines.append(json_line({"record": record, "start": start, "input_ids": ids[start : start + spec.target_length]}))
            windows += 1
    return b"".join(lines), windows, tokens, empty, unknown


# A worker process's tokenizer and window spec, set once by `_start_worker`.
_worker_state: tuple[TextTokenizer, WindowSpec] | None = None


def _start_worker(tokenizer_path: str, spec: WindowSpec) -> None:
    global _worker_state
    # Ctrl-C reaches every process of the terminal's group: the parent stops the pool (and says so in one
    # line); a worker that took it too printed a KeyboardInterrupt traceback of its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    set_tokenizer_threads(1)  # the processes are the parallelism; more threads would only contend
    _worker_state = (load_tokenizer(tokenizer_path), spec)


def _chunk_in_worker(numbered_texts: list[tuple[int, str]]) -> tuple[bytes, int, int, int, int]:
    tokenizer, spec = _worker_state
    return chunk_texts(numbered_texts, tokenizer, spec)


def _numbered_batches(
    source: Path, field: FieldPath, batch_size: int, stats: ChunkStats
) -> Iterator[list[tuple[int, str]]]:
    for records in iter_record_batches(source, batch_size, [field.top_level]):
        batch = []
        for record in records:
            number = stats.records
            stats.records += 1
            try:
                batch.append((number, field.text_of(record)))
            except FieldMissing as missing:
                stats.missing_field += 1
                stats.first_missing = stats.first_missing or f"record {number}: {missing.reason}"
        yield batch


def _results_in_order(
    batches: Iterator[list[tuple[int, str]]], tokenizer_path: Path, spec: WindowSpec, num_proc: int
) -> Iterator[tuple[bytes, int, int, int]]:
    if num_proc <= 1:
        set_tokenizer_threads(1)
        tokenizer = load_tokenizer(tokenizer_path)
        for batch in batches:
            yield chunk_texts(batch, tokenizer, spec)
        return
    # spawn, not fork: the parent may hold threads (progress display, tokenizer pool) that a fork would copy mid-flight.
    context = multiprocessing.get_context("spawn")
    with context.Pool(num_proc, initializer=_start_worker, initargs=(str(tokenizer_path), spec)) as pool:
        pending = deque()
        for batch in batches:
            pending.append(pool.apply_async(_chunk_in_worker, (batch,)))
            if len(pending) >= 2 * num_proc:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


def chunk_file(
    source: str | os.PathLike,
    output: str | os.PathLike,
    tokenizer_path: str | os.PathLike,
    spec: WindowSpec,
    text_field: str = "text",
    batch_size: int = 256,
    num_proc: int = 1,
    count_first: bool = False,
    progress: Progress | None = None,
) -> ChunkStats:
    """Write the windows of every document of `source` to `output` (atomically)."""
    started = time.perf_counter()
    source, output, tokenizer_path = Path(source), Path(output), Path(tokenizer_path)
    if batch_size < 1:
        raise ValueError(f"the batch size must be >= 1, got {batch_size}")
    if num_proc < 1:
        raise ValueError(f"the number of processes must be >= 1, got {num_proc}")
    load_tokenizer(tokenizer_path)  # a bad tokenizer file fails here, once, not in every worker
    field = FieldPath.parse(text_field)
    record = first_record([source])
    if record is not None:
        check_schema([field], record, str(source))
    total = count_records(source) if count_first else None
    stats = ChunkStats()
    output.parent.mkdir(parents=True, exist_ok=True)  # as every hrm data tool does for its output
    with staged_file(output) as temporary, open_compressed_as(output, temporary) as out:
        batches = _numbered_batches(source, field, batch_size, stats)
        for lines, windows, tokens, empty, unknown in _results_in_order(batches, tokenizer_path, spec, num_proc):
            out.write(lines)
            stats.windows += windows
            stats.tokens += tokens
            stats.empty += empty
            stats.unknown_tokens += unknown
            if progress:
                progress("chunk: records", stats.records, total)
    stats.seconds = time.perf_counter() - started
    return stats
