"""The language-data verbs of `hrm data`: prepare-language, prepare, chunk, merge, normalize-qa,
download-slice. The work lives in `hrmkit.lm.corpus`; this module declares the flags (those that are
fields of a corpus config dataclass are generated from it, see flags.py) and reports errors;
language_runners.py runs a verb and prints its summary.

Bad input ends with one line on stderr and exit code 2; a download that fails for good
with exit code 1. Heavy modules are imported only when a verb runs, so `hrm --help` stays fast."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hrmkit.cli.common import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INTERRUPTED
from hrmkit.cli.flags import add_dataclass_flags


# -- argument types (a bad value is a one-line usage error) --------------------------------------
def _int_at_least(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value
    parse.__name__ = f"integer >= {minimum}"
    return parse


def _ratio(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {value}")
    return value


def _weight(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not value >= 0.0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def _size(text: str) -> int:
    from hrmkit.lm.corpus.download import parse_size
    try:
        return parse_size(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _field_list(text: str) -> list[str]:
    fields = [part.strip() for part in text.split(",") if part.strip()]
    if not fields:
        raise argparse.ArgumentTypeError("expected comma-separated field paths, e.g. question,answers.text[0]")
    return fields


POSITIVE = _int_at_least(1)
NON_NEGATIVE = _int_at_least(0)


# -- shared flag groups --------------------------------------------------------------------------
def _add_triples_flags(parser: argparse.ArgumentParser) -> None:
    from hrmkit.lm.corpus.triples import TriplesConfig
    group = parser.add_argument_group(
        "how records become examples",
        "continuation: each document's tokens are cut into consecutive answer blocks of --continuation-tokens, "
        "each prompted by the --prefix-tokens before it (a short document is split in half); every token after "
        "the first prefix is predicted once. prompt-response: --prompt-field is the prompt, --response-field the "
        "answer. Fields are dotted paths with list indices, e.g. data.answers.text[0].",
    )
    add_dataclass_flags(group, TriplesConfig,
                        checks={"max_seq_len": _int_at_least(2), "prefix_tokens": POSITIVE, "continuation_tokens": POSITIVE})


def _add_tokenizer_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("tokenizer")
    group.add_argument("--tokenizer", type=Path, default=None,
                       help="reuse this tokenizer.json (Hugging Face, or hrmkit's character tokenizer) instead of "
                            "training one")
    group.add_argument("--vocab-size", type=_int_at_least(260), default=None,
                       help="vocabulary of the byte-level BPE trained when no --tokenizer is given "
                            "(specials <pad> <bos> <eos> <unk> at 0..3; default 8192)")
    group.add_argument("--tokenizer-sample-mb", type=POSITIVE, default=None,
                       help="train the BPE on at most this many MB (10^6 bytes of UTF-8) of the training split's "
                            "text, drawn by --seed from the whole split; bounds the trainer's memory (default 64)")
    group.add_argument("--tokenizer-num-threads", type=NON_NEGATIVE, default=0,
                       help="threads the tokenizer library uses (sets RAYON_NUM_THREADS; 0 = one per core)")
    group.add_argument("--tokenizer-batch-size", type=POSITIVE, default=1000,
                       help="records tokenized per batch; more is faster up to a point, and costs memory "
                            "(default 1000)")


def _add_split_flags(parser: argparse.ArgumentParser, what: str) -> None:
    from hrmkit.lm.corpus.corpus_builder import DEFAULT_TEST_RATIO, DEFAULT_VAL_RATIO
    parser.add_argument("--val-ratio", type=_ratio, default=DEFAULT_VAL_RATIO,
                        help=f"share of {what} records carved out for validation (default {DEFAULT_VAL_RATIO:g})")
    parser.add_argument("--test-ratio", type=_ratio, default=DEFAULT_TEST_RATIO,
                        help=f"share of {what} records carved out for a test split (default {DEFAULT_TEST_RATIO:g}: none)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the val / test assignment and of the tokenizer's training sample (default 0)")


def _add_count_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--count-records", action="store_true",
                        help="count the input records first, so the progress bar shows a total and a time left")


def add_language_tools(subparsers: argparse._SubParsersAction) -> None:
    """Add the six language-data verbs to `hrm data`'s subparsers."""
    _add_prepare_language(subparsers)
    _add_prepare(subparsers)
    _add_chunk(subparsers)
    _add_merge(subparsers)
    _add_normalize_qa(subparsers)
    _add_download_slice(subparsers)


def _add_prepare_language(subparsers) -> None:
    parser = subparsers.add_parser(
        "prepare-language", help="text data (parquet / arrow / json / jsonl, HF caches) -> a processed HRM-LM corpus",
        description="Streams a folder of parquet, arrow, json or jsonl files (optionally .gz / .zst), or a Hugging "
                    "Face cache folder, into a processed corpus (train/val/test.jsonl, meta.json, tokenizer.json). "
                    "Splits the source has (train / validation / test in file or folder names) are kept verbatim; "
                    "otherwise val and test are carved from the records by --val-ratio / --test-ratio (which a "
                    "source with splits refuses). Memory stays bounded whatever "
                    "the corpus size; the corpus appears under --out only once complete.")
    parser.add_argument("--source", type=Path, required=True, help="folder (or single file) of source data")
    parser.add_argument("--out", type=Path, required=True, help="output corpus folder")
    parser.add_argument("--max-files", type=POSITIVE, default=None,
                        help="read at most this many files per split, in natural name order (quick trials)")
    _add_split_flags(parser, "training")
    _add_tokenizer_flags(parser)
    _add_triples_flags(parser)
    _add_count_flag(parser)
    parser.add_argument("--force", action="store_true", help="replace --out if it exists")


def _add_prepare(subparsers) -> None:
    parser = subparsers.add_parser(
        "prepare", help="extract fields of a data file to extracted.jsonl, then (optionally) build triples",
        description="Stage 1 writes the chosen --fields of every record of --source to OUT/extracted.jsonl "
                    "(records missing one go to extracted.rejects.jsonl). With --to-triples, stage 2 builds a "
                    "processed corpus in OUT/triples from it. A rerun reuses finished stages whose inputs "
                    "are unchanged.")
    parser.add_argument("--source", type=Path, required=True,
                        help="data file: .jsonl / .json (optionally .gz / .zst), .parquet or .arrow")
    parser.add_argument("--out", type=Path, required=True, help="folder for extracted.jsonl and triples/")
    parser.add_argument("--fields", type=_field_list, required=True,
                        help="comma-separated field paths to extract, e.g. title,text or data.question")
    parser.add_argument("--to-triples", action="store_true",
                        help="also build OUT/triples (the fields named below must be among --fields)")
    parser.add_argument("--batch-size", type=POSITIVE, default=1000, help="records per batch (default 1000)")
    parser.add_argument("--force-extract", action="store_true",
                        help="rebuild extracted.jsonl (and the triples) even if a finished one exists")
    parser.add_argument("--force-triples", action="store_true", help="rebuild triples/ even if a finished one exists")
    _add_split_flags(parser, "extracted")
    _add_tokenizer_flags(parser)
    _add_triples_flags(parser)
    _add_count_flag(parser)


def _add_chunk(subparsers) -> None:
    parser = subparsers.add_parser(
        "chunk", help="documents -> overlapping token windows (JSONL), in parallel, in input order",
        description='Tokenizes the --text-field of every record and writes windows of up to --target-length '
                    'tokens starting every --stride tokens, one line each: {"record": k, "start": s, '
                    '"input_ids": [...]}. The output is identical whatever --num-proc is.')
    parser.add_argument("--source", type=Path, required=True,
                        help="data file: .jsonl / .json (optionally .gz / .zst), .parquet or .arrow")
    parser.add_argument("--out", type=Path, required=True, help="output JSONL file")
    parser.add_argument("--tokenizer", type=Path, required=True, help="tokenizer.json to encode with")
    parser.add_argument("--target-length", type=POSITIVE, required=True, help="tokens per window")
    parser.add_argument("--stride", type=POSITIVE, default=None,
                        help="tokens between window starts, at most --target-length; windows overlap by "
                             "target-length - stride (default: half the target length)")
    parser.add_argument("--text-field", default="text", help="field holding the document (default text)")
    parser.add_argument("--batch-size", type=POSITIVE, default=256, help="records per work item (default 256)")
    parser.add_argument("--num-proc", type=POSITIVE, default=1, help="worker processes (default 1)")
    _add_count_flag(parser)
    parser.add_argument("--force", action="store_true", help="replace --out if it exists")


def _add_merge(subparsers) -> None:
    parser = subparsers.add_parser(
        "merge", help="concatenate chunk corpora (--batches) or blend corpora by weight (--sources/--weights)",
        description="--batches DIR: every corpus folder in DIR, concatenated split by split in natural name order; "
                    "the chunk folders are deleted once the merged corpus is complete and its counts match "
                    "(unless --keep-chunks). --sources A B --weights wA wB: each split holds N examples "
                    "(--<split>-samples, default the most possible without repeating a source) of which source i "
                    "gives N*w_i/sum(w), a seeded random selection in file order, interleaved at random; a source "
                    "smaller than its quota is repeated. Corpora with different tokenizers are refused.")
    inputs = parser.add_mutually_exclusive_group(required=True)
    inputs.add_argument("--batches", type=Path, default=None, help="folder whose sub-folders are chunk corpora")
    inputs.add_argument("--sources", type=Path, nargs="+", default=None, help="corpus folders to blend")
    parser.add_argument("--weights", type=_weight, nargs="+", default=None,
                        help="one weight per --sources entry (default: equal)")
    for split in ("train", "val", "test"):
        parser.add_argument(f"--{split}-samples", type=NON_NEGATIVE, default=None,
                            help=f"--sources: examples in the blended {split} split "
                                 "(default: the most that need no repetition)")
    parser.add_argument("--seed", type=int, default=0, help="--sources: seed of selection and interleaving (default 0)")
    parser.add_argument("--out", type=Path, required=True, help="output corpus folder")
    parser.add_argument("--keep-chunks", action="store_true", help="--batches: keep the chunk folders")
    parser.add_argument("--force", action="store_true", help="replace --out if it exists")


def _add_normalize_qa(subparsers) -> None:
    parser = subparsers.add_parser(
        "normalize-qa", help="question-answering records -> prompt / response JSONL",
        description='Writes {"prompt": ..., "response": ...} per record; the prompt is --prompt-template filled '
                    "with {question} (and {context}). Records missing a field are counted, reported and written "
                    "with the reason to <output stem>.rejects.jsonl, never dropped silently.")
    parser.add_argument("--source", type=Path, required=True,
                        help="data file: .jsonl / .json (optionally .gz / .zst), .parquet or .arrow")
    parser.add_argument("--out", type=Path, required=True, help="output JSONL file")
    parser.add_argument("--question-field", required=True, help="path of the question, e.g. data.question")
    parser.add_argument("--answer-field", required=True, help="path of the answer, e.g. 'data.answers.text[0]'")
    parser.add_argument("--context-field", default=None, help="path of a context passage, e.g. data.context")
    parser.add_argument("--prompt-template", default=None,
                        help="prompt text with {question} and optionally {context} (default 'Question: "
                             "{question}\\nAnswer:', with '{context}\\n\\n' in front when --context-field is given)")
    _add_count_flag(parser)
    parser.add_argument("--force", action="store_true", help="replace --out if it exists")


def _add_download_slice(subparsers) -> None:
    from hrmkit.lm.corpus.fetch import FetchOptions
    parser = subparsers.add_parser(
        "download-slice", help="download a slice of a sharded corpus, resumably, into one file",
        description="Reads a (gzipped or zstd) list of shard paths, downloads shards --start .. --start+--count-1 "
                    "(or from --start until --target-size bytes) with aria2c when on PATH, else Python's HTTP client, "
                    "resuming interrupted downloads, and joins them (decompressed) into --out. OUT.meta.json "
                    "records the shard range, sample (line) numbers and URLs; without --start the next run "
                    "continues after the slices already in the output's folder.")
    parser.add_argument("--index-url", required=True, help="URL or path of the shard list (one path per line)")
    parser.add_argument("--base-url", required=True, help="prefix the shard paths are appended to")
    parser.add_argument("--out", type=Path, required=True, help="output file (use a .zst name with --compress)")
    parser.add_argument("--start", type=NON_NEGATIVE, default=None,
                        help="first shard number (default: after the slices already taken from this index)")
    amount = parser.add_mutually_exclusive_group(required=True)
    amount.add_argument("--count", type=POSITIVE, default=None, help="number of shards")
    amount.add_argument("--target-size", type=_size, default=None,
                        help="download shards until this many bytes, e.g. 500M, 20G (powers of 1024)")
    parser.add_argument("--pattern", default=None, help="only index entries matching this shell glob, e.g. '*en*'")
    parser.add_argument("--compress", action="store_true", help="zstd-compress the joined output")
    parser.add_argument("--compression-level", type=POSITIVE, default=3, help="zstd level 1..22 (default 3)")
    add_dataclass_flags(parser, FetchOptions,
                        checks={"aria2c_connections": POSITIVE, "aria2c_split": POSITIVE, "retries": NON_NEGATIVE})
    parser.add_argument("--force", action="store_true", help="replace --out if it is a finished slice")


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def run_language_tool(args: argparse.Namespace) -> int:
    """Run the verb `args.tool` names; returns the exit code (errors are printed, one line)."""
    from hrmkit.cli.language_runners import RUNNERS
    from hrmkit.files import DatasetError
    from hrmkit.lm.corpus.fetch import DownloadError
    from hrmkit.lm.corpus.optional_deps import MissingDependency
    from hrmkit.progress import BuildProgress

    try:
        with BuildProgress() as bar:
            return RUNNERS[args.tool](args, bar.update)
    except (DatasetError, ValueError, FileNotFoundError, FileExistsError, PermissionError, IsADirectoryError,
            NotADirectoryError, MissingDependency) as error:
        print(f"error: {_one_line(error)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (DownloadError, OSError) as error:
        print(f"error: {_one_line(error)}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted: nothing unfinished was left under an output's name; finished download shards and "
              "prepare stages are reused by a rerun", file=sys.stderr)
        return EXIT_INTERRUPTED
