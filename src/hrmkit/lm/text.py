"""Sequence-to-sequence data for the HRM-LM: examples, batches, corpora, synthetic arithmetic.

An *example* is a dict of three int lists::

    encoder_ids        the prompt                      (fed to the encoder)
    decoder_input_ids  [bos] + answer                  (teacher forcing)
    labels             answer + [eos]                  (-100 = ignored by the loss)

A *processed corpus* is a folder::

    <dir>/meta.json        pad/bos/eos/unk ids, vocab_size, max_seq_len, {"splits": {name: count}}, source
    <dir>/tokenizer.json   the tokenizer (see data/tokenizers.py)
    <dir>/<split>.jsonl    one example per line: train, val and optionally test
    <dir>/<split>.jsonl.idx.npy   cached byte offsets of the lines (rebuilt when stale)

`CorpusSplit` reads single lines by offset, so a corpus of many GB never sits in memory;
`BatchStream` turns a split into endless, resumable, rank-sliced training batches and
`eval_batches` into one ordered pass for evaluation.
"""

from __future__ import annotations

import array
import json
import os
import random
import shutil
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hrmkit.files import (
    DatasetError,
    atomic_write_text,
    move_into_place,
    write_atomically,
)
from hrmkit.lm.tokenizers import (
    BPETokenizer,
    SimpleTokenizer,
    TextTokenizer,
    load_tokenizer,
    train_bpe_tokenizer,
)
from hrmkit.model.losses import IGNORE_LABEL_ID
from hrmkit.train.distributed import local_batch_size

__all__ = [
    "BPETokenizer",
    "BatchStream",
    "CorpusSplit",
    "DatasetError",
    "ListSplit",
    "SimpleTokenizer",
    "arithmetic_max_seq_len",
    "arithmetic_problems",
    "build_arithmetic_corpus",
    "cut_at_eos",
    "eval_batches",
    "load_corpus_meta",
    "load_corpus_tokenizer",
    "line_offsets",
    "load_tokenizer",
    "make_example",
    "make_text_example",
    "pad_batch",
    "train_bpe_tokenizer",
    "write_corpus",
]

EXAMPLE_KEYS = ("encoder_ids", "decoder_input_ids", "labels")
CORPUS_FORMAT = "hrmkit-seq2seq"
META_FILE = "meta.json"
TOKENIZER_FILE = "tokenizer.json"


# --------------------------------------------------------------------------- examples


def make_example(
    prompt_ids: Sequence[int], answer_ids: Sequence[int], tokenizer: TextTokenizer, max_seq_len: int
) -> dict[str, list[int]]:
    """One training example from token ids; no sequence is longer than `max_seq_len`.

    The prompt is cut from the left: its end (usually the question) matters most. The
    answer is cut from the right, so the decoder still learns how answers start.
    """
    if max_seq_len < 1:
        raise ValueError(f"max_seq_len must be >= 1, got {max_seq_len}")
    prompt_ids = [int(token) for token in prompt_ids]
    answer_ids = [int(token) for token in answer_ids]
    return {
        "encoder_ids": prompt_ids[-max_seq_len:],
        "decoder_input_ids": ([tokenizer.bos_id, *answer_ids])[:max_seq_len],
        "labels": ([*answer_ids, tokenizer.eos_id])[:max_seq_len],
    }


def make_text_example(prompt: str, answer: str, tokenizer: TextTokenizer, max_seq_len: int) -> dict[str, list[int]]:
    """`make_example` from strings."""
    return make_example(tokenizer.encode(prompt), tokenizer.encode(answer), tokenizer, max_seq_len)


def cut_at_eos(ids: Iterable[int], eos_id: int) -> list[int]:
    """The answer part of labels or generated ids: up to the first eos, ignored (-100) dropped."""
    answer = []
    for token in ids:
        token = int(token)
        if token == eos_id:
            break
        if token != IGNORE_LABEL_ID:
            answer.append(token)
    return answer


def _truncated(example: dict[str, Any], max_seq_len: int | None) -> dict[str, Any]:
    if max_seq_len is None:
        return example
    return {
        **example,
        "encoder_ids": example["encoder_ids"][-max_seq_len:],
        "decoder_input_ids": example["decoder_input_ids"][:max_seq_len],
        "labels": example["labels"][:max_seq_len],
    }


def _round_up(length: int, multiple: int | None) -> int:
    if not multiple:
        return length
    return -(-length // multiple) * multiple


def pad_batch(
    examples: Sequence[dict[str, Sequence[int]]], pad_id: int, pad_to_multiple_of: int | None = None
) -> dict[str, torch.Tensor]:
    """Stack examples into right-padded tensors, as long as the longest in the batch.

    Returns `encoder_ids` [B, Te] and `decoder_input_ids` [B, Td] padded with `pad_id`,
    `labels` [B, Td] padded with -100, and the boolean masks `encoder_mask` [B, Te] and
    `decoder_mask` [B, Td] (True = real token). Lengths are at least 1 so every tensor has a
    time axis a model can attend over.
    """
    if not examples:
        raise ValueError("cannot pad an empty batch")
    for row, example in enumerate(examples):
        if len(example["decoder_input_ids"]) != len(example["labels"]):
            raise ValueError(
                f"example {row}: decoder_input_ids has {len(example['decoder_input_ids'])} tokens "
                f"but labels has {len(example['labels'])}; they must match"
            )
    encoder_len = _round_up(max(1, *(len(example["encoder_ids"]) for example in examples)), pad_to_multiple_of)
    decoder_len = _round_up(max(1, *(len(example["labels"]) for example in examples)), pad_to_multiple_of)
    rows = len(examples)
    encoder_ids = np.full((rows, encoder_len), pad_id, dtype=np.int64)
    decoder_input_ids = np.full((rows, decoder_len), pad_id, dtype=np.int64)
    labels = np.full((rows, decoder_len), IGNORE_LABEL_ID, dtype=np.int64)
    encoder_mask = np.zeros((rows, encoder_len), dtype=bool)
    decoder_mask = np.zeros((rows, decoder_len), dtype=bool)
    for row, example in enumerate(examples):
        encoder_length, decoder_length = len(example["encoder_ids"]), len(example["labels"])
        encoder_ids[row, :encoder_length] = example["encoder_ids"]
        decoder_input_ids[row, :decoder_length] = example["decoder_input_ids"]
        labels[row, :decoder_length] = example["labels"]
        encoder_mask[row, :encoder_length] = True
        decoder_mask[row, :decoder_length] = True
    return {
        "encoder_ids": torch.from_numpy(encoder_ids),
        "decoder_input_ids": torch.from_numpy(decoder_input_ids),
        "labels": torch.from_numpy(labels),
        "encoder_mask": torch.from_numpy(encoder_mask),
        "decoder_mask": torch.from_numpy(decoder_mask),
    }


def _example_problem(example: Any, vocab_size: int) -> str | None:
    """Why `example` is not a valid example for this vocabulary, or None when it is."""
    if not isinstance(example, dict):
        return f"expected a JSON object, got {type(example).__name__}"
    missing = [key for key in EXAMPLE_KEYS if key not in example]
    if missing:
        return f"missing key(s): {', '.join(missing)}"
    for key in EXAMPLE_KEYS:
        ids = example[key]
        if not isinstance(ids, list) or not all(type(token) is int for token in ids):
            return f"'{key}' must be a list of integers"
        if not ids or (min(ids) >= 0 and max(ids) < vocab_size):
            continue
        for position, token in enumerate(ids):
            if not 0 <= token < vocab_size and not (key == "labels" and token == IGNORE_LABEL_ID):
                allowed = f"[0, vocab_size={vocab_size})" + (" or -100" if key == "labels" else "")
                return f"'{key}' token {token} at position {position} is outside {allowed}"
    if len(example["decoder_input_ids"]) != len(example["labels"]):
        return (
            f"decoder_input_ids has {len(example['decoder_input_ids'])} tokens "
            f"but labels has {len(example['labels'])}; they must match"
        )
    return None


# --------------------------------------------------------------------------- arithmetic

ARITHMETIC_OPS = ("+", "-", "*")
# Every character an arithmetic prompt or answer can hold, whatever the ops: one
# vocabulary for all arithmetic corpora, so a checkpoint can be evaluated on any of them.
ARITHMETIC_ALPHABET = "".join(sorted(set("What is 0123456789?" + "".join(ARITHMETIC_OPS))))


def _random_operand(rng: random.Random, digits: int) -> int:
    length = rng.randint(1, digits)
    low = 0 if length == 1 else 10 ** (length - 1)
    return rng.randint(low, 10**length - 1)


def _arithmetic_answer(left: int, op: str, right: int) -> int:
    if op == "+":
        return left + right
    if op == "-":
        return left - right
    return left * right


def arithmetic_problems(
    count: int,
    digits: int = 2,
    ops: Sequence[str] = ("+", "-"),
    seed: int = 0,
    exclude: Iterable[Any] = frozenset(),
) -> list[tuple[str, str]]:
    """`count` distinct problems ("What is 12 + 7?", "19"), the same for the same arguments.

    Each problem picks its operator uniformly from `ops`; each operand first picks a digit
    count uniformly from 1..digits, then a value uniformly among numbers with exactly that
    many digits (0..9 for one digit). Short numbers therefore appear as often as long ones,
    instead of 1 % of the time as under a uniform draw from 0..99. Operands are never
    negative; a difference may be ("-5"). `exclude` holds prompts (or (prompt, answer)
    pairs) that must not be produced, e.g. another split's.
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    if digits < 1:
        raise ValueError(f"digits must be >= 1, got {digits}")
    ops = tuple(dict.fromkeys(ops))
    if not ops or any(op not in ARITHMETIC_OPS for op in ops):
        raise ValueError(f"ops must be a non-empty selection of {ARITHMETIC_OPS}, got {ops}")
    possible = len(ops) * 10 ** (2 * digits)
    if count > possible:
        raise ValueError(f"only {possible} distinct problems exist with {digits} digit(s) and ops {ops}; asked {count}")
    excluded = {item[0] if isinstance(item, tuple) else item for item in exclude}
    rng = random.Random(seed)
    seen: set[str] = set()
    problems: list[tuple[str, str]] = []
    # Rejection sampling; the cap stops a request that (almost) exhausts the space from spinning.
    max_draws = 50 * count + 10_000
    for _ in range(max_draws):
        if len(problems) == count:
            break
        op = rng.choice(ops)
        left, right = _random_operand(rng, digits), _random_operand(rng, digits)
        prompt = f"What is {left} {op} {right}?"
        if prompt in seen or prompt in excluded:
            continue
        seen.add(prompt)
        problems.append((prompt, str(_arithmetic_answer(left, op, right))))
    if len(problems) < count:
        raise ValueError(
            f"found only {len(problems)} of {count} distinct problems after {max_draws} draws; "
            "ask for fewer or allow more digits"
        )
    return problems


def arithmetic_max_seq_len(digits: int) -> int:
    """The longest sequence any arithmetic problem with `digits` digits needs.

    The prompt "What is A op B?" has 12 + 2*digits characters; the longest answer plus eos
    (a product) has 2*digits + 1.
    """
    return 12 + 2 * digits


def build_arithmetic_corpus(
    out_dir: str | os.PathLike,
    digits: int = 2,
    train: int = 10_000,
    val: int = 1_000,
    test: int = 0,
    ops: Sequence[str] = ("+", "-"),
    seed: int = 0,
    max_seq_len: int | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write an arithmetic corpus (see `arithmetic_problems`); returns its meta.

    All splits are drawn together as distinct problems and then cut in order, so no val or
    test problem occurs in train. `max_seq_len` defaults to the longest any problem needs.
    """
    problems = arithmetic_problems(train + val + test, digits=digits, ops=ops, seed=seed)
    tokenizer = SimpleTokenizer(ARITHMETIC_ALPHABET)
    max_seq_len = max_seq_len or arithmetic_max_seq_len(digits)
    bounds = {"train": (0, train), "val": (train, train + val)}
    if test:
        bounds["test"] = (train + val, train + val + test)
    splits = {
        name: (make_text_example(prompt, answer, tokenizer, max_seq_len) for prompt, answer in problems[start:end])
        for name, (start, end) in bounds.items()
    }
    source = {
        "builder": "arithmetic",
        "digits": digits,
        "ops": list(dict.fromkeys(ops)),
        "seed": seed,
        "operands": "digit count uniform in 1..digits, then value uniform among numbers of that many digits",
    }
    return write_corpus(out_dir, splits, tokenizer, {"max_seq_len": max_seq_len, "source": source}, overwrite=overwrite)


# --------------------------------------------------------------------------- offset index

# The cached index is one int64 .npy: [tag, jsonl size, jsonl mtime_ns, line starts..., size].
_INDEX_TAG = 0x68726D_1D_0001  # "hrm", "idx", format 1: tells our file from any other .npy
_INDEX_HEADER = 3
_INDEX_SCAN_BYTES = 16 << 20  # big reads: scanning a multi-GB file is bound by the disk


def _index_path(jsonl_path: Path) -> Path:
    return jsonl_path.with_name(jsonl_path.name + ".idx.npy")


def _scan_line_bounds(path: Path) -> np.ndarray:
    """int64 [lines + 1]: line i is bytes [bounds[i], bounds[i + 1]) of the file."""
    newline_ends = []
    buffer = bytearray(_INDEX_SCAN_BYTES)
    base = 0
    with open(path, "rb", buffering=0) as file:
        while True:
            size = file.readinto(buffer)
            if not size:
                break
            chunk = np.frombuffer(buffer, dtype=np.uint8, count=size)
            newline_ends.append(np.flatnonzero(chunk == ord("\n")).astype(np.int64) + (base + 1))
            base += size
    starts = np.concatenate([np.zeros(1, dtype=np.int64), *newline_ends])
    if starts[-1] == base:  # the final newline starts no line
        starts = starts[:-1]
    return np.append(starts, np.int64(base))


def _stamp(path: Path) -> tuple[int, int]:
    status = path.stat()
    return status.st_size, status.st_mtime_ns


def _save_index(path: Path, bounds: np.ndarray, stamp: tuple[int, int]) -> None:
    """Cache the index beside the jsonl; a read-only folder just means no cache."""
    header = np.array([_INDEX_TAG, *stamp], dtype=np.int64)
    try:
        write_atomically(_index_path(path), lambda file: np.save(file, np.concatenate([header, bounds])))
    except OSError:
        pass


def _load_cached_index(path: Path, stamp: tuple[int, int]) -> np.ndarray | None:
    index_path = _index_path(path)
    if not index_path.is_file():
        return None
    try:
        cached = np.load(index_path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError):
        return None
    valid = (
        cached.dtype == np.int64
        and cached.ndim == 1
        and len(cached) > _INDEX_HEADER
        and tuple(int(value) for value in cached[:_INDEX_HEADER]) == (_INDEX_TAG, *stamp)
        and int(cached[-1]) == stamp[0]
    )
    return cached[_INDEX_HEADER:] if valid else None


def line_offsets(path: str | os.PathLike) -> np.ndarray:
    """Byte offsets of every line of `path` (plus the file size at the end), from the cache if fresh.

    The cache records the file's size and modification time; any change rebuilds it.
    """
    path = Path(path)
    stamp = _stamp(path)
    cached = _load_cached_index(path, stamp)
    if cached is not None:
        return cached
    bounds = _scan_line_bounds(path)
    if _stamp(path) == stamp:  # a file that changed during the scan gets no cache
        _save_index(path, bounds, stamp)
    return bounds


# --------------------------------------------------------------------------- corpus on disk


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
    failed build leaves nothing behind. Every example is validated against the
    tokenizer's vocabulary. `meta_extra` adds keys to meta.json (e.g. `source`); a
    `max_seq_len` there is a limit every example must respect, otherwise meta records the
    longest sequence written.
    """
    out_dir = Path(out_dir)
    meta_extra = dict(meta_extra or {})
    reserved = {"format", "pad_id", "bos_id", "eos_id", "unk_id", "vocab_size", "splits", "longest"}
    clashing = sorted(reserved & set(meta_extra))
    if clashing:
        raise ValueError(f"meta_extra may not set {', '.join(clashing)}: write_corpus derives them")
    if not splits:
        raise ValueError("a corpus needs at least one split")
    for name in splits:
        _check_split_name(name, out_dir)
    if out_dir.exists() and not overwrite:
        raise DatasetError(out_dir, "already exists; remove it or pass --force (overwrite=True)")
    limit = meta_extra.pop("max_seq_len", None)
    if limit is not None and (type(limit) is not int or limit < 1):
        raise ValueError(f"max_seq_len must be an integer >= 1, got {limit!r}")

    staging = out_dir.with_name(f"{out_dir.name}.tmp-{os.getpid()}")
    if staging.exists():  # left behind by a crashed run that had our pid
        shutil.rmtree(staging)
    try:
        staging.mkdir(parents=True)
        longest = {"encoder": 0, "decoder": 0}
        counts = {
            name: _write_split(
                staging / f"{name}.jsonl", out_dir / f"{name}.jsonl", examples, tokenizer.vocab_size, limit, longest
            )
            for name, examples in splits.items()
        }
        tokenizer.save(staging / TOKENIZER_FILE)
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
        atomic_write_text(staging / META_FILE, json.dumps(meta, indent=2) + "\n")
        move_into_place(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return meta


def _plain_example(example: Any) -> Any:
    """Tuples, numpy arrays and numpy integers as plain lists of ints; anything odd is left
    as it is for `_example_problem` to report (int() would quietly accept 1.5 or True)."""
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
            problem = _example_problem(example, vocab_size)
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
    _save_index(path, bounds, _stamp(path))
    return len(starts)


def _read_meta_json(path: Path) -> Any:
    if not path.is_file():
        raise DatasetError(path, "file not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DatasetError(path, f"not valid JSON ({error})") from None


def load_corpus_meta(corpus_dir: str | os.PathLike) -> dict[str, Any]:
    """Read and validate `<corpus_dir>/meta.json`; a problem raises DatasetError naming it."""
    corpus_dir = Path(corpus_dir)
    if not corpus_dir.is_dir():
        raise DatasetError(corpus_dir, "corpus folder not found")
    path = corpus_dir / META_FILE
    meta = _read_meta_json(path)
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
        # Opened once, up front: reader threads then share it without racing to open it.
        return os.open(self.path, os.O_RDONLY) if hasattr(os, "pread") else None

    def __len__(self) -> int:
        return len(self._bounds) - 1

    def _read(self, start: int, length: int) -> bytes:
        if not hasattr(os, "pread"):  # Windows: no positional reads, so one open per read
            with open(self.path, "rb") as file:
                file.seek(start)
                return file.read(length)
        # pread keeps no file position, so reader threads can share one descriptor.
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
        problem = _example_problem(example, self.vocab_size)
        if problem is not None:
            raise DatasetError(where, problem)
        return _truncated(example, self.max_seq_len)

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
        return _truncated(self.examples[index], self.max_seq_len)

    def __repr__(self) -> str:
        return f"ListSplit({len(self)} examples)"


# --------------------------------------------------------------------------- batches


class BatchStream:
    """Endless, resumable training batches over a split; this rank's share of each global batch.

    Epoch `e` visits the examples in a fresh permutation seeded by `seed + e` (or in order
    when `shuffle` is off). Global batches of `batch_size` are cut from it and rank r takes
    rows `[r * local, (r + 1) * local)`. An epoch's incomplete last batch is dropped, unless
    the split is smaller than one batch: then batches run on into the next epoch's order.

    `epoch` is the current epoch and `position` the number of examples of its order already
    used; `step` counts global batches taken. `workers > 0` prepares upcoming batches on a
    thread pool, with output identical to `workers=0`. Threads, not processes: file reads
    and tensor copies release the GIL, nothing needs pickling, and the main use is keeping
    the next batches ready while the model steps.
    """

    def __init__(
        self,
        split: CorpusSplit | ListSplit,
        batch_size: int,
        pad_id: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        workers: int = 0,
        shuffle: bool = True,
        pad_to_multiple_of: int | None = None,
    ) -> None:
        self.local_batch_size = local_batch_size(batch_size, rank, world_size)
        if len(split) == 0:
            raise ValueError(f"cannot draw training batches from an empty split ({split!r})")
        if workers < 0:
            raise ValueError(f"workers must be >= 0, got {workers}")
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        self.split = split
        self.batch_size = batch_size
        self.pad_id = pad_id
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.workers = workers
        self.shuffle = shuffle
        self.pad_to_multiple_of = pad_to_multiple_of
        self.epoch = 0
        self.position = 0
        self.step = 0
        self._order_epoch: int | None = None
        self._order_cache: np.ndarray | None = None
        # Prefetch: batches already handed to the pool, each with the cursor after it.
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="hrmkit-batches") if workers else None
        self._pending: deque[tuple[Future, tuple[int, int]]] = deque()
        self._planned = (0, 0)

    def _order(self, epoch: int) -> np.ndarray:
        if self._order_epoch != epoch:
            count = len(self.split)
            if self.shuffle:
                self._order_cache = np.random.default_rng(self.seed + epoch).permutation(count)
            else:
                self._order_cache = np.arange(count)
            self._order_epoch = epoch
        return self._order_cache

    def _next_indices(self, epoch: int, position: int) -> tuple[np.ndarray, int, int]:
        """This rank's example indices of the global batch at (epoch, position), and the cursor after it."""
        count, needed = len(self.split), self.batch_size
        parts = []
        while needed:
            take = min(needed, count - position)
            parts.append(self._order(epoch)[position : position + take])
            needed -= take
            position += take
            # Move on at the epoch's end, or where only a partial batch is left to drop.
            if position == count or (count >= self.batch_size and position + self.batch_size > count):
                epoch, position = epoch + 1, 0
        local = slice(self.rank * self.local_batch_size, (self.rank + 1) * self.local_batch_size)
        return np.concatenate(parts)[local], epoch, position

    def _make_batch(self, indices: np.ndarray) -> dict[str, torch.Tensor]:
        examples = [self.split[int(index)] for index in indices]
        return pad_batch(examples, self.pad_id, self.pad_to_multiple_of)

    def _fill_prefetch(self) -> None:
        while len(self._pending) < 2 * self.workers:
            indices, *cursor = self._next_indices(*self._planned)
            self._planned = tuple(cursor)
            self._pending.append((self._pool.submit(self._make_batch, indices), self._planned))

    def next_batch(self) -> dict[str, torch.Tensor]:
        """This rank's padded rows of the next global batch (see `pad_batch`)."""
        if self._pool is None:
            indices, epoch, position = self._next_indices(self.epoch, self.position)
            batch = self._make_batch(indices)
        else:
            self._fill_prefetch()
            future, (epoch, position) = self._pending[0]
            batch = future.result()  # a bad example raises here, in stream order
            self._pending.popleft()
            self._fill_prefetch()
        self.epoch, self.position = epoch, position
        self.step += 1
        return batch

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        while True:
            yield self.next_batch()

    def state_dict(self) -> dict[str, Any]:
        """A small JSON-able position in the global stream."""
        return {
            "seed": self.seed,
            "batch_size": self.batch_size,
            "shuffle": self.shuffle,
            "num_examples": len(self.split),
            "epoch": self.epoch,
            "position": self.position,
            "step": self.step,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume so the following batches equal those of an uninterrupted run.

        The rank and world size may differ from the saved run: the global stream is the same.
        """
        current = self.state_dict()
        for key in ("seed", "batch_size", "shuffle", "num_examples"):
            if state.get(key) != current[key]:
                raise ValueError(
                    f"batch stream state was saved with {key}={state.get(key)!r}, this stream has "
                    f"{key}={current[key]!r}; resuming would give different batches"
                )
        self._drop_prefetch()
        self.epoch, self.position, self.step = int(state["epoch"]), int(state["position"]), int(state["step"])
        self._planned = (self.epoch, self.position)

    def _drop_prefetch(self) -> None:
        for future, _ in self._pending:
            future.cancel()
        self._pending.clear()

    def close(self) -> None:
        """Stop the prefetch threads (the stream cannot be used afterwards)."""
        self._drop_prefetch()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> BatchStream:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


def eval_batches(
    split: CorpusSplit | ListSplit,
    batch_size: int,
    pad_id: int,
    rank: int = 0,
    world_size: int = 1,
    max_examples: int = 0,
) -> Iterator[tuple[dict[str, torch.Tensor], int]]:
    """One pass in order, each example on exactly one rank: yields (batch, num_valid).

    `batch_size` is global. Rank r takes examples r, r + world_size, r + 2 * world_size, ...
    of the first `max_examples` (0 = all), `batch_size // world_size` per batch, so global
    batch b is examples [b * batch_size, (b + 1) * batch_size) spread over the ranks. Every
    rank yields the same number of batches with the same number of rows, which collective
    operations need: a rank whose share runs out fills its rows after `num_valid` with a
    copy of a real example whose labels are all -100, so losses skip it and no row is all
    padding (an all-masked attention row gives NaN).
    """
    local_size = local_batch_size(batch_size, rank, world_size)
    total = len(split) if max_examples <= 0 else min(len(split), max_examples)
    if total == 0:
        return
    largest_share = -(-total // world_size)  # rank 0's
    for first in range(0, largest_share, local_size):
        rows = min(local_size, largest_share - first)
        indices = [rank + world_size * (first + row) for row in range(rows)]
        valid = [index for index in indices if index < total]
        examples = [split[index] for index in valid]
        filler = examples[0] if examples else split[0]
        blank_labels = {**filler, "labels": [IGNORE_LABEL_ID] * len(filler["labels"])}
        examples += [blank_labels] * (rows - len(valid))
        yield pad_batch(examples, pad_id), len(valid)
