"""Source records -> a processed corpus (see lm/corpus_format.py), streamed through `write_corpus`.

Splits come from the source when it has them (kept verbatim: a validation file becomes
`val`, a test file `test`). Otherwise validation and test records are carved out of the
training records by ratio: record k goes to val when u_k < val_ratio and to test when
u_k < val_ratio + test_ratio, where u_k is a seeded uniform draw for record number k alone,
so the assignment does not depend on batch sizes or on how the files are read.

`write_corpus` writes one split after another, so a carved source is read once per split;
only the records of the split being written are tokenized.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hrmkit.files import DatasetError
from hrmkit.lm.corpus import Progress
from hrmkit.lm.corpus.encoding import encoded_in_background, set_tokenizer_threads
from hrmkit.lm.corpus.field_paths import FieldMissing, FieldPath, check_schema
from hrmkit.lm.corpus.seeded_draws import SPLIT_STREAM, SeededDraws
from hrmkit.lm.corpus.sources import count_records, first_record, iter_record_batches
from hrmkit.lm.corpus.tokenizer_sample import sample_texts
from hrmkit.lm.corpus.triples import TriplesConfig, examples_of_record
from hrmkit.lm.corpus_format import write_corpus
from hrmkit.lm.tokenizers import TextTokenizer, load_tokenizer, train_bpe_tokenizer

SPLIT_CODES = {"train": 0, "val": 1, "test": 2}
# What `--val-ratio` / `--test-ratio` are when not given; a source with its own splits refuses any other value.
DEFAULT_VAL_RATIO = 0.05
DEFAULT_TEST_RATIO = 0.0


class RatioSplitter:
    """Seeded, per-record assignment of record numbers to train / val / test."""

    def __init__(self, val_ratio: float, test_ratio: float, seed: int) -> None:
        check_ratios(val_ratio, test_ratio)
        self.val_ratio, self.test_ratio, self.seed = val_ratio, test_ratio, seed
        self._draws = SeededDraws(seed, SPLIT_STREAM)

    def codes(self, first: int, count: int) -> np.ndarray:
        """Split codes (see SPLIT_CODES) of records first .. first + count - 1."""
        draws = self._draws.draws(first, count)
        codes = np.zeros(count, dtype=np.uint8)
        codes[draws < self.val_ratio + self.test_ratio] = SPLIT_CODES["test"]
        codes[draws < self.val_ratio] = SPLIT_CODES["val"]
        return codes


def check_ratios(val_ratio: float, test_ratio: float) -> None:
    for name, ratio in (("val ratio", val_ratio), ("test ratio", test_ratio)):
        if not 0.0 <= ratio < 1.0:
            raise ValueError(f"the {name} must be in [0, 1), got {ratio}")
    if val_ratio + test_ratio >= 1.0:
        raise ValueError(
            f"val ratio {val_ratio} + test ratio {test_ratio} = {val_ratio + test_ratio:g} leaves nothing for "
            "training; they must sum to less than 1"
        )


@dataclass
class SplitSource:
    """Where one output split's records come from: files, and whether they are carved."""

    files: list[Path]
    carved: bool = False


@dataclass
class TokenizerChoice:
    """Reuse the tokenizer at `path`, or train a byte-level BPE of `vocab_size` on a sample."""

    path: Path | None = None
    vocab_size: int = 8192
    # UTF-8 bytes of training text the BPE trainer sees at most (see tokenizer_sample.py): the
    # trainer's memory grows with its input, and 64 MB learns the frequent merges a vocabulary of
    # this size holds (docs/BENCHMARKS.md, section 8).
    sample_bytes: int = 64_000_000
    threads: int = 0

    def __post_init__(self) -> None:
        if self.sample_bytes < 1:
            raise ValueError(f"the tokenizer sample must be at least 1 byte, got {self.sample_bytes}")


@dataclass
class SplitStats:
    records: int = 0  # records of this split read from the source
    missing_field: int = 0  # records without a usable value in a needed field (skipped, reported)
    too_short: int = 0  # continuation documents under two tokens
    examples: int = 0
    source_tokens: int = 0  # tokens of the encoded source text
    unknown_tokens: int = 0  # of which <unk>: characters a given tokenizer does not know
    source_chars: int = 0
    first_missing: str | None = None  # why the first skipped record was skipped


@dataclass
class BuildResult:
    meta: dict[str, Any]
    stats: dict[str, SplitStats]
    seconds: float
    tokenizer_seconds: float = 0.0
    tokenizer_trained: bool = False


class _SplitReader:
    """The records of one split, each with the texts of its fields, in source order."""

    def __init__(
        self,
        split: str,
        source: SplitSource,
        fields: Sequence[FieldPath],
        splitter: RatioSplitter | None,
        batch_size: int,
    ) -> None:
        self.split, self.source, self.fields = split, source, fields
        self.splitter = splitter if source.carved else None
        self.batch_size = batch_size
        self.columns = sorted({path.top_level for path in fields})
        self.records_read = 0  # all records read, including those carved into other splits

    def text_batches(self, stats: SplitStats) -> Iterator[tuple[list[str], int]]:
        """(the field texts of a batch's usable records, flattened; number of records)."""
        wanted = SPLIT_CODES[self.split]
        for path in self.source.files:
            for records in iter_record_batches(path, self.batch_size, self.columns):
                codes = self.splitter.codes(self.records_read, len(records)) if self.splitter else None
                self.records_read += len(records)
                texts: list[str] = []
                used = 0
                for number, record in enumerate(records):
                    if codes is not None and codes[number] != wanted:
                        continue
                    stats.records += 1
                    try:
                        values = [path_.text_of(record) for path_ in self.fields]
                    except FieldMissing as missing:
                        stats.missing_field += 1
                        if stats.first_missing is None:
                            stats.first_missing = f"{path.name}: {missing.reason}"
                        continue
                    texts.extend(values)
                    used += 1
                yield texts, used


def _examples(
    reader: _SplitReader,
    config: TriplesConfig,
    tokenizer: TextTokenizer,
    stats: SplitStats,
    progress: Progress | None,
    total: int | None,
) -> Iterator[dict[str, list[int]]]:
    width = len(reader.fields)
    description = f"{reader.split}: records"
    batches = ((texts, (count, sum(map(len, texts)))) for texts, count in reader.text_batches(stats))
    for encoded, (count, chars) in encoded_in_background(batches, tokenizer):
        stats.source_chars += chars
        for number in range(count):
            fields = encoded[number * width : (number + 1) * width]
            stats.source_tokens += sum(map(len, fields))
            stats.unknown_tokens += sum(ids.count(tokenizer.unk_id) for ids in fields)
            produced = 0
            for example in examples_of_record(fields, config, tokenizer):
                produced += 1
                yield example
            if not produced:
                stats.too_short += 1
            stats.examples += produced
        if progress:
            progress(description, reader.records_read, total)
    _require_training_examples(reader, stats)


def _texts_to_sample(reader: _SplitReader, total: int | None, progress: Progress | None) -> Iterator[list[str]]:
    """The training split's field texts, batch by batch, for the tokenizer sample."""
    for texts, _ in reader.text_batches(SplitStats()):
        yield texts
        if progress:
            progress("tokenizer: sampling training text (records)", reader.records_read, total)


def _check_fields(plan: dict[str, SplitSource], fields: Sequence[FieldPath]) -> None:
    """A field missing from the first record of a split's files is a typo, and a training split without
    records leaves nothing to train on: stop before any work (a tokenizer trained on nothing included)."""
    for split, source in plan.items():
        for path in source.files:
            record = first_record([path])
            if record is not None:
                check_schema(fields, record, str(path))
                break
        else:
            if split == "train":
                raise DatasetError(_file_names(source.files), "no records in the training split; nothing to train on")


def _file_names(files: Sequence[Path]) -> str:
    """The first file of a split, and how many more there are, for a one-line message."""
    if not files:
        return "the source"
    return f"{files[0]} (and {len(files) - 1} more file(s))" if len(files) > 1 else str(files[0])


def _require_training_examples(reader: _SplitReader, stats: SplitStats) -> None:
    """Records that all gave no example (fields missing or empty, documents too short) leave the
    training split empty, which `hrm train` refuses: say so now, while the corpus is still staged."""
    if reader.split == "train" and not stats.examples:
        raise DatasetError(
            _file_names(reader.source.files),
            f"no training examples: its {stats.records} training record(s) gave none ({stats.missing_field} without "
            f"a usable field, {stats.too_short} under two tokens); nothing to train on",
        )


def _tokenizer(
    choice: TokenizerChoice,
    train_reader: _SplitReader | None,
    seed: int,
    total: int | None,
    progress: Progress | None,
) -> tuple[TextTokenizer, dict[str, Any]]:
    """The tokenizer, and what meta.json records about where it came from."""
    if choice.path is not None:
        return load_tokenizer(choice.path), {"reused": str(choice.path)}
    if train_reader is None:
        raise ValueError("no training split to train a tokenizer on; pass a tokenizer file")
    sample = sample_texts(_texts_to_sample(train_reader, total, progress), choice.sample_bytes, seed)
    tokenizer = train_bpe_tokenizer(sample.texts, choice.vocab_size)
    origin = {
        "trained": "byte-level BPE",
        "vocab_size": choice.vocab_size,
        "sample": {
            "budget_bytes": choice.sample_bytes,
            "bytes": sample.bytes,
            "texts": len(sample.texts),
            "seed": seed,
            "split_bytes": sample.bytes_seen,
            "split_texts": sample.texts_seen,
        },
    }
    return tokenizer, origin


def build_corpus(
    plan: dict[str, SplitSource],
    dest: str | Path,
    config: TriplesConfig,
    tokenizer_choice: TokenizerChoice,
    *,
    splitter: RatioSplitter | None = None,
    seed: int = 0,
    literal_fields: bool = False,
    batch_size: int = 1000,
    count_records_first: bool = False,
    overwrite: bool = False,
    source_info: dict[str, Any] | None = None,
    progress: Progress | None = None,
) -> BuildResult:
    """Write the corpus at `dest` (atomically) from `plan`: output split -> its source files.

    `seed` draws the tokenizer's training sample when one is trained.
    """
    if batch_size < 1:
        raise ValueError(f"the batch size must be >= 1, got {batch_size}")
    if any(source.carved for source in plan.values()) and splitter is None:
        raise ValueError("carved splits need a RatioSplitter")
    started = time.perf_counter()
    fields = config.field_paths(literal=literal_fields)
    _check_fields(plan, fields)
    set_tokenizer_threads(tokenizer_choice.threads)

    totals: dict[str, int] = {}
    if count_records_first:
        counted: dict[Path, int] = {}
        for split, source in plan.items():
            for path in source.files:
                if path not in counted:
                    counted[path] = count_records(path)
                    if progress:
                        progress("counting records", sum(counted.values()), None)
            totals[split] = sum(counted[path] for path in source.files)

    train_reader = _SplitReader("train", plan["train"], fields, splitter, batch_size) if "train" in plan else None
    tokenizer_started = time.perf_counter()
    tokenizer, tokenizer_origin = _tokenizer(tokenizer_choice, train_reader, seed, totals.get("train"), progress)
    tokenizer_seconds = time.perf_counter() - tokenizer_started

    stats = {split: SplitStats() for split in plan}
    splits = {
        split: _examples(
            _SplitReader(split, source, fields, splitter, batch_size),
            config,
            tokenizer,
            stats[split],
            progress,
            totals.get(split),
        )
        for split, source in plan.items()
    }
    source_info = dict(source_info or {})
    source_info["tokenizer"] = tokenizer_origin
    if splitter is not None:
        source_info["carved"] = {"val_ratio": splitter.val_ratio, "test_ratio": splitter.test_ratio, "seed": splitter.seed}
    # Each split's generator fills in its entry when it ends; write_corpus serialises the meta
    # only after every split is written, so the counts land in meta.json without a rewrite.
    records: dict[str, Any] = {}
    splits = {split: _recorded(examples, records, split, stats[split]) for split, examples in splits.items()}
    meta_extra = {
        "max_seq_len": config.max_seq_len,
        "triples": config.to_json_dict(),
        "source": source_info,
        "records": records,
    }
    meta = write_corpus(dest, splits, tokenizer, meta_extra, overwrite=overwrite)
    return BuildResult(
        meta=meta,
        stats=stats,
        seconds=time.perf_counter() - started,
        tokenizer_seconds=tokenizer_seconds if tokenizer_choice.path is None else 0.0,
        tokenizer_trained=tokenizer_choice.path is None,
    )


def _public(stats: SplitStats) -> dict[str, Any]:
    return {key: value for key, value in asdict(stats).items() if value is not None}


def _recorded(
    examples: Iterator[dict[str, list[int]]], records: dict[str, Any], split: str, stats: SplitStats
) -> Iterator[dict[str, list[int]]]:
    yield from examples
    records[split] = _public(stats)
