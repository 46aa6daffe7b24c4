"""`hrm data prepare`: a data file -> extracted.jsonl -> (optionally) a triples corpus.

Output folder::

    extracted.jsonl           the chosen fields of every usable record (see extract.py)
    extracted.rejects.jsonl   records missing a field, with the reason
    extracted.stamp.json      what extracted.jsonl was made from; written last, so a stage
                              counts as finished only when its stamp is there
    triples/                  a processed corpus (lm/corpus_format.py) built from extracted.jsonl

A rerun reuses every finished stage whose inputs are unchanged. A finished stage made from
other inputs is refused rather than silently replaced (pass the stage's force flag), and
rebuilding the extraction rebuilds the triples that depend on it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hrmkit.files import atomic_write_text
from hrmkit.lm.corpus import Progress
from hrmkit.lm.corpus.corpus_builder import (
    DEFAULT_TEST_RATIO,
    DEFAULT_VAL_RATIO,
    BuildResult,
    RatioSplitter,
    SplitSource,
    TokenizerChoice,
    build_corpus,
    check_ratios,
)
from hrmkit.lm.corpus.extract import ExtractResult, extract_fields
from hrmkit.lm.corpus.triples import TriplesConfig
from hrmkit.lm.corpus_format import load_corpus_meta

EXTRACTED_FILE = "extracted.jsonl"
REJECTS_FILE = "extracted.rejects.jsonl"
STAMP_FILE = "extracted.stamp.json"
TRIPLES_DIR = "triples"


@dataclass
class StagedPrepareOptions:
    source: Path
    output_dir: Path
    fields: list[str]
    to_triples: bool = False
    triples: TriplesConfig = field(default_factory=TriplesConfig)
    tokenizer: TokenizerChoice = field(default_factory=TokenizerChoice)
    val_ratio: float = DEFAULT_VAL_RATIO
    test_ratio: float = DEFAULT_TEST_RATIO
    seed: int = 0
    batch_size: int = 1000
    force_extract: bool = False
    force_triples: bool = False
    count_records: bool = False


@dataclass
class StagedPrepareResult:
    extract: ExtractResult | None  # None when a finished extraction was reused
    triples: BuildResult | None  # None when skipped or reused
    extract_reused: bool = False
    stamp: dict[str, Any] = field(default_factory=dict)


def _source_identity(source: Path) -> dict[str, Any]:
    status = source.stat()
    return {"source": str(source.resolve()), "size": status.st_size, "mtime_ns": status.st_mtime_ns}


def _differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    return [key for key in new if old.get(key) != new[key]]


def _run_extract(options: StagedPrepareOptions, progress: Progress | None) -> tuple[ExtractResult | None, dict[str, Any]]:
    """The extraction stage: reuse a finished one made from the same inputs, else (re)build it."""
    out = options.output_dir
    stamp_path, extracted = out / STAMP_FILE, out / EXTRACTED_FILE
    wanted = {**_source_identity(options.source), "fields": list(options.fields)}
    if not options.force_extract and stamp_path.is_file() and extracted.is_file():
        stamp = json.loads(stamp_path.read_text(encoding="utf-8"))
        changed = _differences(stamp.get("inputs", {}), wanted)
        now = {"size": extracted.stat().st_size, "mtime_ns": extracted.stat().st_mtime_ns}
        if not changed and now != stamp.get("extracted"):
            raise ValueError(f"{extracted} changed after it was made; pass --force-extract to rebuild it")
        if not changed:
            return None, stamp
        raise ValueError(
            f"{extracted} was made from other inputs ({', '.join(changed)} differ); "
            "pass --force-extract to rebuild it (and the triples after it)"
        )
    out.mkdir(parents=True, exist_ok=True)
    stamp_path.unlink(missing_ok=True)  # from here until the new stamp, the stage is unfinished
    result = extract_fields(
        options.source, options.fields, extracted, out / REJECTS_FILE, options.batch_size, options.count_records, progress
    )
    stamp = {
        "inputs": wanted,
        "extracted": {"size": extracted.stat().st_size, "mtime_ns": extracted.stat().st_mtime_ns},
        "records": result.records,
        "written": result.written,
        "rejected": result.rejected,
    }
    atomic_write_text(stamp_path, json.dumps(stamp, indent=2) + "\n")
    return result, stamp


def _triples_key(options: StagedPrepareOptions, stamp: dict[str, Any]) -> dict[str, Any]:
    tokenizer = options.tokenizer
    return {
        "extracted": stamp["extracted"],
        "triples": options.triples.to_json_dict(),
        "tokenizer": str(tokenizer.path.resolve()) if tokenizer.path else {"vocab_size": tokenizer.vocab_size,
                                                                            "sample_bytes": tokenizer.sample_bytes},
        "val_ratio": options.val_ratio,
        "test_ratio": options.test_ratio,
        "seed": options.seed,
    }


def _check_triple_fields(options: StagedPrepareOptions) -> None:
    config = options.triples
    needed = [config.text_field] if config.mode == "continuation" else [config.prompt_field, config.response_field]
    flags = ["--text-field"] if config.mode == "continuation" else ["--prompt-field", "--response-field"]
    for flag, name in zip(flags, needed):
        if name not in options.fields:
            pairs = "; for prompt/response pairs add --mode prompt-response" if config.mode == "continuation" else ""
            raise ValueError(f"{flag} '{name}' is not one of the extracted --fields ({', '.join(options.fields)}){pairs}")


def staged_prepare(
    options: StagedPrepareOptions, progress: Progress | None = None, say: Callable[[str], None] = lambda line: None
) -> StagedPrepareResult:
    if options.to_triples:
        _check_triple_fields(options)
        check_ratios(options.val_ratio, options.test_ratio)
    extract_result, stamp = _run_extract(options, progress)
    result = StagedPrepareResult(extract=extract_result, triples=None, extract_reused=extract_result is None, stamp=stamp)
    if result.extract_reused:
        say(f"reusing {options.output_dir / EXTRACTED_FILE} ({stamp.get('written')} records; --force-extract rebuilds it)")
    if not options.to_triples:
        return result

    corpus = options.output_dir / TRIPLES_DIR
    key = _triples_key(options, stamp)
    rebuild = options.force_triples or not result.extract_reused
    if not rebuild and (corpus / "meta.json").is_file():
        old_key = load_corpus_meta(corpus).get("source", {}).get("stage_key", {})
        changed = _differences(old_key, key)
        if not changed:
            say(f"reusing {corpus} (--force-triples rebuilds it)")
            return result
        raise ValueError(f"{corpus} was made from other inputs ({', '.join(changed)} differ); pass --force-triples to rebuild it")

    carved = options.val_ratio > 0 or options.test_ratio > 0
    files = [options.output_dir / EXTRACTED_FILE]
    plan = {"train": SplitSource(files, carved=carved)}
    if options.val_ratio > 0:
        plan["val"] = SplitSource(files, carved=True)
    if options.test_ratio > 0:
        plan["test"] = SplitSource(files, carved=True)
    result.triples = build_corpus(
        plan,
        corpus,
        options.triples,
        options.tokenizer,
        splitter=RatioSplitter(options.val_ratio, options.test_ratio, options.seed) if carved else None,
        seed=options.seed,
        literal_fields=True,
        batch_size=options.batch_size,
        count_records_first=options.count_records,
        overwrite=True,
        source_info={"builder": "prepare", "path": str(options.source), "fields": options.fields, "stage_key": key},
        progress=progress,
    )
    return result
