"""The processed-corpus format the HRM-LM trains on: writing one, reading its meta and tokenizer,
and random access to its splits.

A *processed corpus* is a folder::

    <dir>/meta.json        pad/bos/eos/unk ids, vocab_size, max_seq_len, {"splits": {name: count}}, source
    <dir>/tokenizer.json   the tokenizer (see tokenizers.py)
    <dir>/<split>.jsonl    one example (see examples.py) per line: train, val and optionally test
    <dir>/<split>.jsonl.idx.npy   cached byte offsets of the lines (see line_index.py)

`CorpusSplit` reads single lines by offset, so a corpus of many GB never sits in memory.
"""

from __future__ import annotations

import array
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hrmkit.files import (
    DatasetError,
    atomic_write_text,
    check_output_free,
    read_json,
    staged_folder,
)
from hrmkit.lm.examples import EXAMPLE_KEYS, example_problem, truncated_example
from hrmkit.lm.line_index import line_offsets, save_line_index
from hrmkit.lm.tokenizers import (
    BPETokenizer,
    SimpleTokenizer,
    TextTokenizer,
    load_tokenizer,
)

CORPUS_FORMAT = "hrmkit-seq2seq"
META_FILE = "meta.json"
TOKENIZER_FILE = "tokenizer.json"


def _check_split_name(name: Any, where: Path) -> None:
    if not isinstance(name, str) or not name or name != Path(name).name or name.startswith("."):
        raise DatasetError(where, f"split names must be plain file-name parts, got {name!r}")


def write_corpus(
    out_dir: str | os.PathLike,
    splits: dict[str, Iterable[dict[str, Sequence[int]]]],
    tokenizer: TextTokenizer,
    meta_extra: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write a processed corpus, streaming each split's examples once; returns the meta.

    Everything is written to a temporary folder renamed to `out_dir` at the end, so a
    failed build leaves nothing behind. What is written: see `write_corpus_files`.
    """
    out_dir = check_output_free(out_dir, overwrite)
    with staged_folder(out_dir) as staging:
        return write_corpus_files(staging, splits, tokenizer, meta_extra, final_dir=out_dir)


def write_corpus_files(
    folder: Path,
    splits: dict[str, Iterable[dict[str, Sequence[int]]]],
    tokenizer: TextTokenizer,
    meta_extra: dict[str, Any] | None = None,
    final_dir: Path | None = None,
) -> dict[str, Any]:
    """Write a corpus's files into the empty staging `folder`; returns the meta.

    Every example is validated against the tokenizer's vocabulary; errors name the files as
    they will be called in `final_dir`. `meta_extra` adds keys to meta.json (e.g. `source`);
    a `max_seq_len` there is a limit every example must respect, otherwise meta records the
    longest sequence written.
    """
    final_dir = final_dir or folder
    meta_extra = dict(meta_extra or {})
    reserved = {"format", "pad_id", "bos_id", "eos_id", "unk_id", "vocab_size", "splits", "longest"}
    clashing = sorted(reserved & set(meta_extra))
    if clashing:
        raise ValueError(f"meta_extra may not set {', '.join(clashing)}: write_corpus derives them")
    if not splits:
        raise ValueError("a corpus needs at least one split")
    for name in splits:
        _check_split_name(name, final_dir)
    limit = meta_extra.pop("max_seq_len", None)
    if limit is not None and (type(limit) is not int or limit < 1):
        raise ValueError(f"max_seq_len must be an integer >= 1, got {limit!r}")

    longest = {"encoder": 0, "decoder": 0}
    counts = {
        name: _write_split(
            folder / f"{name}.jsonl", final_dir / f"{name}.jsonl", examples, tokenizer.vocab_size, limit, longest
        )
        for name, examples in splits.items()
    }
    tokenizer.save(folder / TOKENIZER_FILE)
    meta = {
        "format": CORPUS_FORMAT,
        "pad_id": tokenizer.pad_id,
        "bos_id": tokenizer.bos_id,
        "eos_id": tokenizer.eos_id,
        "unk_id": tokenizer.unk_id,
        "vocab_size": tokenizer.vocab_size,
        "max_seq_len": limit or max(1, *longest.values()),
        "longest": longest,
        "splits": counts,
        **meta_extra,
    }
    atomic_write_text(folder / META_FILE, json.dumps(meta, indent=2) + "\n")
    return meta


def _plain_example(example: Any) -> Any:
    """Tuples, numpy arrays and numpy integers as plain lists of ints; anything odd is left
    as it is for `example_problem` to report (int() would quietly accept 1.5 or True)."""
    if not isinstance(example, dict) or not all(key in example for key in EXAMPLE_KEYS):
        return example
    plain = {}
    for key in EXAMPLE_KEYS:
        ids = example[key]
        if isinstance(ids, (tuple, np.ndarray)):
            ids = ids.tolist() if isinstance(ids, np.ndarray) else list(ids)
        if isinstance(ids, list):
            ids = [int(token) if isinstance(token, np.integer) else token for token in ids]
        plain[key] = ids
    return plain


def _write_split(
    path: Path,
    display_path: Path,
    examples: Iterable[dict[str, Sequence[int]]],
    vocab_size: int,
    limit: int | None,
    longest: dict[str, int],
) -> int:
    """Write one jsonl and its offset index (known for free while writing); the example count."""
    starts = array.array("q")
    position = 0
    with open(path, "wb") as file:
        for number, example in enumerate(examples):
            example = _plain_example(example)
            problem = example_problem(example, vocab_size)
            if problem is None:
                lengths = {"encoder": len(example["encoder_ids"]), "decoder": len(example["labels"])}
                if limit is not None and max(lengths.values()) > limit:
                    problem = f"has {max(lengths.values())} tokens, more than max_seq_len={limit}"
            if problem is not None:
                raise DatasetError(display_path, f"example {number}: {problem}")
            for part, length in lengths.items():
                longest[part] = max(longest[part], length)
            line = json.dumps({key: example[key] for key in EXAMPLE_KEYS}, separators=(",", ":")).encode() + b"\n"
            starts.append(position)
            file.write(line)
            position += len(line)
    bounds = np.append(np.frombuffer(starts, dtype=np.int64), np.int64(position))
    save_line_index(path, bounds)
    return len(starts)


def load_corpus_meta(corpus_dir: str | os.PathLike) -> dict[str, Any]:
    """Read and validate `<corpus_dir>/meta.json`; a problem raises DatasetError naming it."""
    corpus_dir = Path(corpus_dir)
    if not corpus_dir.is_dir():
        raise DatasetError(corpus_dir, "corpus folder not found")
    path = corpus_dir / META_FILE
    if not path.is_file() and (corpus_dir / "triples" / META_FILE).is_file():
        raise DatasetError(corpus_dir, f"not a corpus itself; `hrm data prepare --to-triples` built its corpus in "
                                       f"{corpus_dir / 'triples'}, use that")
    meta = read_json(path)
    if not isinstance(meta, dict):
        raise DatasetError(path, f"expected a JSON object, got {type(meta).__name__}")
    required = ("pad_id", "bos_id", "eos_id", "vocab_size", "max_seq_len", "splits")
    missing = [key for key in required if key not in meta]
    if missing:
        raise DatasetError(path, f"missing key(s): {', '.join(missing)}")
    for key in ("pad_id", "bos_id", "eos_id", "unk_id", "vocab_size", "max_seq_len"):
        if key in meta and type(meta[key]) is not int:
            raise DatasetError(path, f"'{key}' must be an integer, got {meta[key]!r}")
    if meta["vocab_size"] < 1 or meta["max_seq_len"] < 1:
        raise DatasetError(path, "'vocab_size' and 'max_seq_len' must be >= 1")
    for key in ("pad_id", "bos_id", "eos_id", "unk_id"):
        if key in meta and not 0 <= meta[key] < meta["vocab_size"]:
            raise DatasetError(path, f"'{key}' {meta[key]} is outside [0, vocab_size={meta['vocab_size']})")
    counts = meta["splits"]
    if not isinstance(counts, dict) or not counts:
        raise DatasetError(path, f"'splits' must be a non-empty object of split name -> count, got {counts!r}")
    for name, count in counts.items():
        _check_split_name(name, path)
        if type(count) is not int or count < 0:
            raise DatasetError(path, f"'splits.{name}' must be an integer >= 0, got {count!r}")
    return meta


def load_corpus_tokenizer(corpus_dir: str | os.PathLike) -> SimpleTokenizer | BPETokenizer:
    """The corpus's tokenizer, checked against its meta (a swapped file would mislabel every id)."""
    meta = load_corpus_meta(corpus_dir)
    path = Path(corpus_dir) / TOKENIZER_FILE
    tokenizer = load_tokenizer(path)
    for key in ("pad_id", "bos_id", "eos_id", "vocab_size"):
        if getattr(tokenizer, key) != meta[key]:
            raise DatasetError(path, f"{key} is {getattr(tokenizer, key)} but {META_FILE} says {meta[key]}")
    return tokenizer


class CorpusSplit:
    """Random access to one `<split>.jsonl` of a corpus, reading one line per example.

    Only the line offsets live in memory (memory-mapped from the cached index), so the file
    may be far larger than RAM. Each example is validated as it is read; a bad line raises
    DatasetError naming `file:line`. `max_seq_len` truncates like `make_example`.
    """

    def __init__(self, corpus_dir: str | os.PathLike, split: str, max_seq_len: int | None = None) -> None:
        if max_seq_len is not None and max_seq_len < 1:
            raise ValueError(f"max_seq_len must be >= 1, got {max_seq_len}")
        self.corpus_dir = Path(corpus_dir)
        self.meta = load_corpus_meta(self.corpus_dir)
        self.split = split
        self.path = self.corpus_dir / f"{split}.jsonl"
        if not self.path.is_file():
            available = sorted(path.name[: -len(".jsonl")] for path in self.corpus_dir.glob("*.jsonl"))
            raise DatasetError(self.path, f"split not found (this corpus has: {', '.join(available) or 'none'})")
        self.vocab_size = self.meta["vocab_size"]
        self.max_seq_len = max_seq_len
        self._bounds = line_offsets(self.path)
        self._descriptor = self._open()

    def _open(self) -> int | None:
        # Opened once, up front: readers then share it without racing to open it.
        return os.open(self.path, os.O_RDONLY) if hasattr(os, "pread") else None

    def __len__(self) -> int:
        return len(self._bounds) - 1

    def _read(self, start: int, length: int) -> bytes:
        if not hasattr(os, "pread"):  # Windows: no positional reads, so one open per read
            with open(self.path, "rb") as file:
                file.seek(start)
                return file.read(length)
        # pread keeps no file position, so readers (and forked workers) can share one descriptor.
        return os.pread(self._descriptor, length, start)

    def __getitem__(self, index: int) -> dict[str, list[int]]:
        count = len(self)
        if not -count <= index < count:
            raise IndexError(f"example {index} is out of range for {self.path} ({count} examples)")
        index %= count
        start, end = int(self._bounds[index]), int(self._bounds[index + 1])
        where = f"{self.path}:{index + 1}"
        try:
            example = json.loads(self._read(start, end - start))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise DatasetError(where, f"not valid JSON ({error})") from None
        problem = example_problem(example, self.vocab_size)
        if problem is not None:
            raise DatasetError(where, problem)
        return truncated_example(example, self.max_seq_len)

    def close(self) -> None:
        if self._descriptor is not None:
            os.close(self._descriptor)
            self._descriptor = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def __getstate__(self) -> dict[str, Any]:
        # A descriptor means nothing in another process; the copy opens its own.
        return {**self.__dict__, "_descriptor": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._descriptor = self._open()

    def __repr__(self) -> str:
        return f"CorpusSplit({str(self.corpus_dir)!r}, {self.split!r}, {len(self)} examples)"


class ListSplit:
    """In-memory examples with `CorpusSplit`'s interface (tests, small generated sets)."""

    def __init__(self, examples: Iterable[dict[str, Sequence[int]]], max_seq_len: int | None = None) -> None:
        if max_seq_len is not None and max_seq_len < 1:
            raise ValueError(f"max_seq_len must be >= 1, got {max_seq_len}")
        self.examples = list(examples)
        self.max_seq_len = max_seq_len

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return truncated_example(self.examples[index], self.max_seq_len)

    def __repr__(self) -> str:
        return f"ListSplit({len(self)} examples)"
