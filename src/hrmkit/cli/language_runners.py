"""What the language-data verbs of `hrm data` do once their flags are parsed (language.py declares the
flags and reports errors): build the options of a `hrmkit.lm.corpus` tool, run it, print a summary.
The corpus modules are imported only when their verb runs.
"""

from __future__ import annotations

from pathlib import Path

from hrmkit.cli.flags import dataclass_from_flags
from hrmkit.files import check_output_free


def _triples_config(args):
    from hrmkit.lm.corpus.triples import TriplesConfig
    return dataclass_from_flags(TriplesConfig, args)


def _tokenizer_choice(args):
    from hrmkit.lm.corpus.corpus_builder import TokenizerChoice
    sizing = {"--vocab-size": args.vocab_size, "--tokenizer-sample-mb": args.tokenizer_sample_mb}
    given = [flag for flag, value in sizing.items() if value is not None]
    if args.tokenizer and given:  # they size a tokenizer trained here: with --tokenizer they would do nothing
        raise ValueError(f"{' and '.join(given)} size the tokenizer trained when no --tokenizer is given; "
                         f"with --tokenizer {args.tokenizer} drop them")
    defaults = TokenizerChoice()
    vocab_size = defaults.vocab_size if args.vocab_size is None else args.vocab_size
    sample_bytes = defaults.sample_bytes if args.tokenizer_sample_mb is None else args.tokenizer_sample_mb * 1_000_000
    return TokenizerChoice(path=args.tokenizer, vocab_size=vocab_size, sample_bytes=sample_bytes,
                           threads=args.tokenizer_num_threads)


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
        if stat.unknown_tokens:
            lines.append(_unknown_tokens_warning(f"{split}: ", stat.unknown_tokens, stat.source_tokens))
    return lines


def _unknown_tokens_warning(where: str, unknown: int, tokens: int) -> str:
    """A tokenizer made for other text: the model would learn to read and write <unk>."""
    return (f"  warning: {where}{unknown:,} of {tokens:,} tokens ({unknown / tokens:.1%}) are <unk>: characters "
            "the tokenizer does not know")


def _run_prepare_language(args, progress) -> int:
    from hrmkit.lm.corpus.prepare_language import (
        PrepareLanguageOptions,
        prepare_language,
    )
    check_output_free(args.out, args.force)
    options = PrepareLanguageOptions(
        source=args.source, dest=args.out, triples=_triples_config(args), tokenizer=_tokenizer_choice(args),
        val_ratio=args.val_ratio, test_ratio=args.test_ratio, seed=args.seed, max_files=args.max_files,
        batch_size=args.tokenizer_batch_size, count_records=args.count_records, overwrite=args.force,
    )
    result = prepare_language(options, progress)
    print("\n".join(_corpus_summary(args.out, result)))
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
        source=args.source, output_dir=args.out, fields=args.fields, to_triples=args.to_triples,
        triples=_triples_config(args), tokenizer=_tokenizer_choice(args), val_ratio=args.val_ratio,
        test_ratio=args.test_ratio, seed=args.seed, batch_size=args.batch_size, force_extract=args.force_extract,
        force_triples=args.force_triples, count_records=args.count_records,
    )
    result = staged_prepare(options, progress, say=print)
    if result.extract is not None:
        extract = result.extract
        print(f"wrote {args.out / EXTRACTED_FILE}: {extract.written} of {extract.records} records "
              f"in {extract.seconds:.1f} s")
        if extract.rejected:
            print(f"  {extract.rejected} record(s) missing a field went to {args.out / REJECTS_FILE} "
                  f"(first: {extract.first_reject})")
    if result.triples is not None:
        print("\n".join(_corpus_summary(args.out / TRIPLES_DIR, result.triples)))
    return 0


def _run_chunk(args, progress) -> int:
    from hrmkit.lm.corpus.chunk import WindowSpec, chunk_file
    check_output_free(args.out, args.force)
    spec = WindowSpec(args.target_length, args.stride or max(1, args.target_length // 2))
    stats = chunk_file(args.source, args.out, args.tokenizer, spec, text_field=args.text_field,
                       batch_size=args.batch_size, num_proc=args.num_proc, count_first=args.count_records,
                       progress=progress)
    print(f"wrote {args.out}: {stats.windows} windows of <= {spec.target_length} tokens (stride {spec.stride}) "
          f"from {stats.records} records, {stats.tokens:,} tokens in {stats.seconds:.1f} s "
          f"({stats.tokens / max(stats.seconds, 1e-9):,.0f} tokens/s)")
    if stats.missing_field:
        print(f"  {stats.missing_field} record(s) without a usable '{args.text_field}' were skipped "
              f"(first: {stats.first_missing})")
    if stats.empty:
        print(f"  {stats.empty} empty document(s) gave no window")
    if stats.unknown_tokens:
        print(_unknown_tokens_warning("", stats.unknown_tokens, stats.tokens))
    return 0


def _run_merge(args, progress) -> int:
    from hrmkit.lm.corpus.merge import blend, merge_chunks
    check_output_free(args.out, args.force)
    samples = {"train": args.train_samples, "val": args.val_samples, "test": args.test_samples}
    if args.batches is not None:
        given = [flag for flag, value in (("--weights", args.weights), ("--train-samples", args.train_samples),
                                          ("--val-samples", args.val_samples), ("--test-samples", args.test_samples))
                 if value is not None]
        if given:
            raise ValueError(f"{', '.join(given)} only apply to --sources; --batches concatenates everything")
        result = merge_chunks(args.batches, args.out, keep_chunks=args.keep_chunks, overwrite=args.force,
                              progress=progress)
        counts = ", ".join(f"{split} {count}" for split, count in result.meta["splits"].items())
        print(f"wrote {args.out}: {counts} examples from {len(result.inputs)} chunk(s) "
              f"in {result.seconds:.1f} s")
        print(f"  deleted the {len(result.deleted)} chunk folder(s)" if result.deleted else "  kept the chunk folders")
        return 0
    if args.keep_chunks:
        raise ValueError("--keep-chunks only applies to --batches; --sources are never deleted")
    weights = args.weights if args.weights is not None else [1.0] * len(args.sources)
    result = blend(args.sources, weights, args.out,
                   samples={split: count for split, count in samples.items() if count is not None},
                   seed=args.seed, overwrite=args.force, progress=progress)
    counts = ", ".join(f"{split} {count}" for split, count in result.meta["splits"].items())
    print(f"wrote {args.out}: {counts} examples blended from {len(result.inputs)} source(s) "
          f"in {result.seconds:.1f} s")
    for split, per_source in result.quotas.items():
        print(f"  {split}: " + ", ".join(f"{Path(path).name} {quota}" for path, quota in per_source.items()))
    return 0


def _run_normalize_qa(args, progress) -> int:
    from hrmkit.lm.corpus.normalize_qa import normalize_qa
    check_output_free(args.out, args.force)
    result = normalize_qa(args.source, args.out, args.question_field, args.answer_field,
                          context_field=args.context_field, prompt_template=args.prompt_template,
                          count_first=args.count_records, progress=progress)
    print(f"wrote {args.out}: {result.written} of {result.records} records in {result.seconds:.1f} s")
    if result.rejected:
        reasons = "; ".join(f"{count} x {reason}" for reason, count in sorted(result.reasons.items(),
                                                                             key=lambda item: -item[1])[:3])
        print(f"  {result.rejected} record(s) missing a field went to {result.rejects} ({reasons})")
    return 0


def _run_download_slice(args, progress) -> int:
    from hrmkit.lm.corpus.download import SliceOptions, download_slice
    from hrmkit.lm.corpus.fetch import FetchOptions
    options = SliceOptions(
        index_url=args.index_url, base_url=args.base_url, output=args.out, start=args.start, count=args.count,
        target_size=args.target_size, pattern=args.pattern, compress=args.compress,
        compression_level=args.compression_level, fetch=dataclass_from_flags(FetchOptions, args), overwrite=args.force,
    )
    result = download_slice(options, progress)
    meta = result.meta
    print(f"wrote {args.out}: shards {meta['start']}..{meta['end'] - 1} of {meta['index_entries']}, "
          f"{meta['samples']} lines, {meta['bytes_downloaded'] / 1e6:.1f} MB downloaded with {result.downloader} "
          f"in {result.seconds:.1f} s" + (f" ({result.retries} retried request(s))" if result.retries else "")
          + (f"; {result.resumed_bytes:,} bytes were kept from interrupted downloads" if result.resumed_bytes else ""))
    for note in result.notes:
        print(f"  note: {note}")
    return 0


RUNNERS = {
    "prepare-language": _run_prepare_language,
    "prepare": _run_prepare,
    "chunk": _run_chunk,
    "merge": _run_merge,
    "normalize-qa": _run_normalize_qa,
    "download-slice": _run_download_slice,
}
