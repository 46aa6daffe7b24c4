"""The language-data verbs of `hrm data`: prepare-language, prepare, chunk, merge, normalize-qa,
download-slice. The work lives in `hrmkit.lm.corpus`; this module only parses flags,
checks them, shows progress and prints a summary.

Bad input ends with one line on stderr and exit code 2; a download that fails for good
with exit code 1. Heavy modules are imported only when a verb runs, so `hrm --help` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hrmkit.cli.common import EXIT_BAD_INPUT, EXIT_INTERRUPTED

EXIT_FAILED = 1
LANGUAGE_TOOLS = ("prepare-language", "prepare", "chunk", "merge", "normalize-qa", "download-slice")


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
    group = parser.add_argument_group(
        "how records become examples",
        "continuation: each document's tokens are cut into consecutive answer blocks of --continuation-tokens, "
        "each prompted by the --prefix-tokens before it (a short document is split in half); every token after "
        "the first prefix is predicted once. prompt-response: --prompt-field is the prompt, --response-field the "
        "answer. Fields are dotted paths with list indices, e.g. data.answers.text[0].",
    )
    group.add_argument("--mode", choices=("continuation", "prompt-response"), default="continuation",
                       help="continuation (plain documents) or prompt-response (pairs); default continuation")
    group.add_argument("--text-field", default="text", help="continuation: the field holding the document (default text)")
    group.add_argument("--prompt-field", default="prompt", help="prompt-response: the prompt's field (default prompt)")
    group.add_argument("--response-field", default="response",
                       help="prompt-response: the answer's field (default response)")
    group.add_argument("--max-seq-len", type=_int_at_least(2), default=512,
                       help="longest encoder or decoder sequence in tokens, eos included (default 512)")
    group.add_argument("--prefix-tokens", type=POSITIVE, default=None,
                       help="continuation: prompt length in tokens (default: --max-seq-len)")
    group.add_argument("--continuation-tokens", type=POSITIVE, default=None,
                       help="continuation: answer block length in tokens (default: --max-seq-len - 1, room for eos)")


def _add_tokenizer_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("tokenizer")
    group.add_argument("--tokenizer", type=Path, default=None,
                       help="reuse this tokenizer.json (Hugging Face, or hrmkit's character tokenizer) instead of "
                            "training one")
    group.add_argument("--vocab-size", type=_int_at_least(260), default=8192,
                       help="vocabulary of the byte-level BPE trained when no --tokenizer is given "
                            "(specials <pad> <bos> <eos> <unk> at 0..3; default 8192)")
    group.add_argument("--tokenizer-sample-mb", type=POSITIVE, default=64,
                       help="train the BPE on at most this many MB (10^6 bytes of UTF-8) of the training split's "
                            "text, drawn by --seed from the whole split; bounds the trainer's memory (default 64)")
    group.add_argument("--tokenizer-num-threads", type=NON_NEGATIVE, default=0,
                       help="threads the tokenizer library uses (sets RAYON_NUM_THREADS; 0 = one per core)")
    group.add_argument("--tokenizer-batch-size", type=POSITIVE, default=1000,
                       help="records tokenized per batch; more is faster up to a point, and costs memory "
                            "(default 1000)")


def _add_split_flags(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--val-ratio", type=_ratio, default=0.05,
                        help=f"share of {what} records carved out for validation (default 0.05)")
    parser.add_argument("--test-ratio", type=_ratio, default=0.0,
                        help=f"share of {what} records carved out for a test split (default 0: none)")
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
                    "otherwise val and test are carved from the records by ratio. Memory stays bounded whatever "
                    "the corpus size; the corpus appears under --dest only once complete.")
    parser.add_argument("--source", type=Path, required=True, help="folder (or single file) of source data")
    parser.add_argument("--dest", type=Path, required=True, help="output corpus folder")
    parser.add_argument("--max-files", type=POSITIVE, default=None,
                        help="read at most this many files per split, in natural name order (quick trials)")
    _add_split_flags(parser, "training")
    _add_tokenizer_flags(parser)
    _add_triples_flags(parser)
    _add_count_flag(parser)
    parser.add_argument("--force", action="store_true", help="replace --dest if it exists")


def _add_prepare(subparsers) -> None:
    parser = subparsers.add_parser(
        "prepare", help="extract fields of a data file to extracted.jsonl, then (optionally) build triples",
        description="Stage 1 writes the chosen --fields of every record of --source to OUTPUT_DIR/extracted.jsonl "
                    "(records missing one go to extracted.rejects.jsonl). With --to-triples, stage 2 builds a "
                    "processed corpus in OUTPUT_DIR/triples from it. A rerun reuses finished stages whose inputs "
                    "are unchanged.")
    parser.add_argument("--source", type=Path, required=True,
                        help="data file: .jsonl / .json (optionally .gz / .zst), .parquet or .arrow")
    parser.add_argument("--output-dir", type=Path, required=True, help="folder for extracted.jsonl and triples/")
    parser.add_argument("--fields", type=_field_list, required=True,
                        help="comma-separated field paths to extract, e.g. title,text or data.question")
    parser.add_argument("--to-triples", action="store_true",
                        help="also build OUTPUT_DIR/triples (the fields named below must be among --fields)")
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
    parser.add_argument("--input", type=Path, required=True,
                        help="data file: .jsonl / .json (optionally .gz / .zst), .parquet or .arrow")
    parser.add_argument("--output", type=Path, required=True, help="output JSONL file")
    parser.add_argument("--tokenizer", type=Path, required=True, help="tokenizer.json to encode with")
    parser.add_argument("--target-length", type=POSITIVE, required=True, help="tokens per window")
    parser.add_argument("--stride", type=POSITIVE, default=None,
                        help="tokens between window starts, at most --target-length; windows overlap by "
                             "target-length - stride (default: half the target length)")
    parser.add_argument("--text-field", default="text", help="field holding the document (default text)")
    parser.add_argument("--batch-size", type=POSITIVE, default=256, help="records per work item (default 256)")
    parser.add_argument("--num-proc", type=POSITIVE, default=1, help="worker processes (default 1)")
    _add_count_flag(parser)
    parser.add_argument("--force", action="store_true", help="replace --output if it exists")


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
    parser.add_argument("--output-dir", type=Path, required=True, help="output corpus folder")
    parser.add_argument("--keep-chunks", action="store_true", help="--batches: keep the chunk folders")
    parser.add_argument("--force", action="store_true", help="replace --output-dir if it exists")


def _add_normalize_qa(subparsers) -> None:
    parser = subparsers.add_parser(
        "normalize-qa", help="question-answering records -> prompt / response JSONL",
        description='Writes {"prompt": ..., "response": ...} per record; the prompt is --prompt-template filled '
                    "with {question} (and {context}). Records missing a field are counted, reported and written "
                    "with the reason to <output stem>.rejects.jsonl, never dropped silently.")
    parser.add_argument("--input", type=Path, required=True,
                        help="data file: .jsonl / .json (optionally .gz / .zst), .parquet or .arrow")
    parser.add_argument("--output", type=Path, required=True, help="output JSONL file")
    parser.add_argument("--question-field", required=True, help="path of the question, e.g. data.question")
    parser.add_argument("--answer-field", required=True, help="path of the answer, e.g. 'data.answers.text[0]'")
    parser.add_argument("--context-field", default=None, help="path of a context passage, e.g. data.context")
    parser.add_argument("--prompt-template", default=None,
                        help="prompt text with {question} and optionally {context} (default 'Question: "
                             "{question}\\nAnswer:', with '{context}\\n\\n' in front when --context-field is given)")
    _add_count_flag(parser)
    parser.add_argument("--force", action="store_true", help="replace --output if it exists")


def _add_download_slice(subparsers) -> None:
    parser = subparsers.add_parser(
        "download-slice", help="download a slice of a sharded corpus, resumably, into one file",
        description="Reads a (gzipped or zstd) list of shard paths, downloads shards --start .. --start+--count-1 "
                    "(or from --start until --target-size bytes) with aria2c when on PATH, else Python's HTTP client, "
                    "resuming interrupted downloads, and joins them (decompressed) into --output. --output.meta.json "
                    "records the shard range, sample (line) numbers and URLs; without --start the next run "
                    "continues after the slices already in the output's folder.")
    parser.add_argument("--index-url", required=True, help="URL or path of the shard list (one path per line)")
    parser.add_argument("--base-url", required=True, help="prefix the shard paths are appended to")
    parser.add_argument("--output", type=Path, required=True, help="output file (use a .zst name with --compress)")
    parser.add_argument("--start", type=NON_NEGATIVE, default=None,
                        help="first shard number (default: after the slices already taken from this index)")
    amount = parser.add_mutually_exclusive_group(required=True)
    amount.add_argument("--count", type=POSITIVE, default=None, help="number of shards")
    amount.add_argument("--target-size", type=_size, default=None,
                        help="download shards until this many bytes, e.g. 500M, 20G (powers of 1024)")
    parser.add_argument("--pattern", default=None, help="only index entries matching this shell glob, e.g. '*en*'")
    parser.add_argument("--compress", action="store_true", help="zstd-compress the joined output")
    parser.add_argument("--compression-level", type=POSITIVE, default=3, help="zstd level 1..22 (default 3)")
    parser.add_argument("--aria2c-connections", type=POSITIVE, default=4, help="aria2c connections per server (default 4)")
    parser.add_argument("--aria2c-split", type=POSITIVE, default=4, help="aria2c pieces per file (default 4)")
    parser.add_argument("--downloader", choices=("auto", "aria2c", "python"), default="auto",
                        help="auto: aria2c when on PATH, else python (default auto)")
    parser.add_argument("--retries", type=NON_NEGATIVE, default=5, help="retries per shard after a failure (default 5)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds without data before a retry (default 60)")
    parser.add_argument("--force", action="store_true", help="replace --output if it is a finished slice")


# -- running -------------------------------------------------------------------------------------
def _refuse_existing(path: Path, force: bool) -> None:
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists (pass --force to replace it)")


def _triples_config(args):
    from hrmkit.lm.corpus.triples import TriplesConfig
    return TriplesConfig(
        max_seq_len=args.max_seq_len, mode=args.mode, text_field=args.text_field, prompt_field=args.prompt_field,
        response_field=args.response_field, prefix_tokens=args.prefix_tokens,
        continuation_tokens=args.continuation_tokens,
    )


def _tokenizer_choice(args):
    from hrmkit.lm.corpus.corpus_builder import TokenizerChoice
    return TokenizerChoice(path=args.tokenizer, vocab_size=args.vocab_size,
                           sample_bytes=args.tokenizer_sample_mb * 1_000_000, threads=args.tokenizer_num_threads)


def _corpus_summary(dest: Path, result) -> list[str]:
    meta = result.meta
    counts = ", ".join(f"{split} {count}" for split, count in meta["splits"].items())
    tokens = sum(stat.source_tokens for stat in result.stats.values())
    chars = sum(stat.source_chars for stat in result.stats.values())
    seconds = max(result.seconds, 1e-9)
    lines = [f"wrote {dest}: {counts} examples; vocab {meta['vocab_size']}, max_seq_len {meta['max_seq_len']}",
             f"  {chars / 1e6:.1f} M characters, {tokens:,} tokens in {result.seconds:.1f} s "
             f"({chars / 1e6 / seconds:.2f} M chars/s, {tokens / seconds:,.0f} tokens/s)"
             + (f"; tokenizer trained in {result.tokenizer_seconds:.1f} s" if result.tokenizer_trained else "")]
    for split, stat in result.stats.items():
        if stat.missing_field:
            lines.append(f"  {split}: {stat.missing_field} record(s) without a usable field were skipped "
                         f"(first: {stat.first_missing})")
        if stat.too_short:
            lines.append(f"  {split}: {stat.too_short} document(s) under two tokens gave no example")
    return lines


def _run_prepare_language(args, progress) -> int:
    from hrmkit.lm.corpus.prepare_language import (
        PrepareLanguageOptions,
        prepare_language,
    )
    _refuse_existing(args.dest, args.force)
    options = PrepareLanguageOptions(
        source=args.source, dest=args.dest, triples=_triples_config(args), tokenizer=_tokenizer_choice(args),
        val_ratio=args.val_ratio, test_ratio=args.test_ratio, seed=args.seed, max_files=args.max_files,
        batch_size=args.tokenizer_batch_size, count_records=args.count_records, overwrite=args.force,
    )
    result = prepare_language(options, progress)
    print("\n".join(_corpus_summary(args.dest, result)))
    return 0


def _run_prepare(args, progress) -> int:
    from hrmkit.lm.corpus.staged_prepare import (
        EXTRACTED_FILE,
        REJECTS_FILE,
        TRIPLES_DIR,
        StagedPrepareOptions,
        staged_prepare,
    )
    options = StagedPrepareOptions(
        source=args.source, output_dir=args.output_dir, fields=args.fields, to_triples=args.to_triples,
        triples=_triples_config(args), tokenizer=_tokenizer_choice(args), val_ratio=args.val_ratio,
        test_ratio=args.test_ratio, seed=args.seed, batch_size=args.batch_size, force_extract=args.force_extract,
        force_triples=args.force_triples, count_records=args.count_records,
    )
    result = staged_prepare(options, progress, say=print)
    if result.extract is not None:
        extract = result.extract
        print(f"wrote {args.output_dir / EXTRACTED_FILE}: {extract.written} of {extract.records} records "
              f"in {extract.seconds:.1f} s")
        if extract.rejected:
            print(f"  {extract.rejected} record(s) missing a field went to {args.output_dir / REJECTS_FILE} "
                  f"(first: {extract.first_reject})")
    if result.triples is not None:
        print("\n".join(_corpus_summary(args.output_dir / TRIPLES_DIR, result.triples)))
    return 0


def _run_chunk(args, progress) -> int:
    from hrmkit.lm.corpus.chunk import WindowSpec, chunk_file
    _refuse_existing(args.output, args.force)
    spec = WindowSpec(args.target_length, args.stride or max(1, args.target_length // 2))
    stats = chunk_file(args.input, args.output, args.tokenizer, spec, text_field=args.text_field,
                       batch_size=args.batch_size, num_proc=args.num_proc, count_first=args.count_records,
                       progress=progress)
    print(f"wrote {args.output}: {stats.windows} windows of <= {spec.target_length} tokens (stride {spec.stride}) "
          f"from {stats.records} records, {stats.tokens:,} tokens in {stats.seconds:.1f} s "
          f"({stats.tokens / max(stats.seconds, 1e-9):,.0f} tokens/s)")
    if stats.missing_field:
        print(f"  {stats.missing_field} record(s) without a usable '{args.text_field}' were skipped "
              f"(first: {stats.first_missing})")
    if stats.empty:
        print(f"  {stats.empty} empty document(s) gave no window")
    return 0


def _run_merge(args, progress) -> int:
    from hrmkit.lm.corpus.merge import blend, merge_chunks
    _refuse_existing(args.output_dir, args.force)
    samples = {"train": args.train_samples, "val": args.val_samples, "test": args.test_samples}
    if args.batches is not None:
        given = [flag for flag, value in (("--weights", args.weights), ("--train-samples", args.train_samples),
                                          ("--val-samples", args.val_samples), ("--test-samples", args.test_samples))
                 if value is not None]
        if given:
            raise ValueError(f"{', '.join(given)} only apply to --sources; --batches concatenates everything")
        result = merge_chunks(args.batches, args.output_dir, keep_chunks=args.keep_chunks, overwrite=args.force,
                              progress=progress)
        counts = ", ".join(f"{split} {count}" for split, count in result.meta["splits"].items())
        print(f"wrote {args.output_dir}: {counts} examples from {len(result.inputs)} chunk(s) "
              f"in {result.seconds:.1f} s")
        print(f"  deleted the {len(result.deleted)} chunk folder(s)" if result.deleted else "  kept the chunk folders")
        return 0
    if args.keep_chunks:
        raise ValueError("--keep-chunks only applies to --batches; --sources are never deleted")
    weights = args.weights if args.weights is not None else [1.0] * len(args.sources)
    result = blend(args.sources, weights, args.output_dir,
                   samples={split: count for split, count in samples.items() if count is not None},
                   seed=args.seed, overwrite=args.force, progress=progress)
    counts = ", ".join(f"{split} {count}" for split, count in result.meta["splits"].items())
    print(f"wrote {args.output_dir}: {counts} examples blended from {len(result.inputs)} source(s) "
          f"in {result.seconds:.1f} s")
    for split, per_source in result.quotas.items():
        print(f"  {split}: " + ", ".join(f"{Path(path).name} {quota}" for path, quota in per_source.items()))
    return 0


def _run_normalize_qa(args, progress) -> int:
    from hrmkit.lm.corpus.normalize_qa import normalize_qa
    _refuse_existing(args.output, args.force)
    result = normalize_qa(args.input, args.output, args.question_field, args.answer_field,
                          context_field=args.context_field, prompt_template=args.prompt_template,
                          count_first=args.count_records, progress=progress)
    print(f"wrote {args.output}: {result.written} of {result.records} records in {result.seconds:.1f} s")
    if result.rejected:
        reasons = "; ".join(f"{count} x {reason}" for reason, count in sorted(result.reasons.items(),
                                                                             key=lambda item: -item[1])[:3])
        print(f"  {result.rejected} record(s) missing a field went to {result.rejects} ({reasons})")
    return 0


def _run_download_slice(args, progress) -> int:
    from hrmkit.lm.corpus.download import SliceOptions, download_slice
    options = SliceOptions(
        index_url=args.index_url, base_url=args.base_url, output=args.output, start=args.start, count=args.count,
        target_size=args.target_size, pattern=args.pattern, compress=args.compress,
        compression_level=args.compression_level, aria2c_connections=args.aria2c_connections,
        aria2c_split=args.aria2c_split, downloader=args.downloader, retries=args.retries, timeout=args.timeout,
        overwrite=args.force,
    )
    result = download_slice(options, progress)
    meta = result.meta
    print(f"wrote {args.output}: shards {meta['start']}..{meta['end'] - 1} of {meta['index_entries']}, "
          f"{meta['samples']} lines, {meta['bytes_downloaded'] / 1e6:.1f} MB downloaded with {result.downloader} "
          f"in {result.seconds:.1f} s" + (f" ({result.retries} retried request(s))" if result.retries else ""))
    for note in result.notes:
        print(f"  note: {note}")
    return 0


_RUNNERS = {
    "prepare-language": _run_prepare_language,
    "prepare": _run_prepare,
    "chunk": _run_chunk,
    "merge": _run_merge,
    "normalize-qa": _run_normalize_qa,
    "download-slice": _run_download_slice,
}


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def run_language_tool(args: argparse.Namespace) -> int:
    """Run the verb `args.tool` names; returns the exit code (errors are printed, one line)."""
    from hrmkit.files import DatasetError
    from hrmkit.lm.corpus.download import DownloadError
    from hrmkit.lm.corpus.optional_deps import MissingDependency
    from hrmkit.progress import BuildProgress

    try:
        with BuildProgress() as bar:
            return _RUNNERS[args.tool](args, bar.update)
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
