"""Language-data tools behind `hrm data <verb>`: every one streams, so memory stays bounded
whatever the corpus size, and every output appears under its final name only when complete.

    sources.py        read one file (jsonl / json / parquet / arrow, .gz / .zst) as record batches
    layout.py         find the data files of a folder (Hugging Face caches too) and their splits
    field_paths.py    dotted field paths with list indices: data.answers.text[0]
    triples.py        how text or prompt/response records become training examples
    encoding.py       batched tokenization that overlaps with the rest of the work
    corpus_builder.py records -> a processed corpus (lm/corpus_format.py), splits kept or carved
    tokenizer_sample.py   the bounded, seeded sample of training text a new BPE is trained on
    seeded_draws.py   seeded draws by record number: the val / test carving and that sample
    prepare_language.py   hrm data prepare-language
    extract.py, staged_prepare.py   hrm data prepare (fields -> extracted.jsonl -> triples)
    chunk.py          hrm data chunk: overlapping token windows, multiprocess, ordered output
    merge.py          hrm data merge: concatenate chunk corpora or blend sources by weight
    normalize_qa.py   hrm data normalize-qa: QA records -> prompt/response JSONL
    download.py       hrm data download-slice: a resumable slice of a sharded web corpus
    fetch.py          one URL to disk, resumably: Range requests or aria2c, retries
"""

from collections.abc import Callable

# How every tool reports progress: (what is being counted, count so far, total or None).
# `hrmkit.progress.BuildProgress.update` fits it.
Progress = Callable[[str, int, "int | None"], None]
