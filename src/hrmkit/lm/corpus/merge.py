"""`hrm data merge`: several processed corpora -> one, by concatenation or weighted blending.

Both ways stream examples line by line into a staging folder (`write_corpus_files`), check
its line counts there and only then rename it into place, and refuse corpora whose tokenizers
differ: the same id would mean different text.

merge_chunks — every corpus folder under one folder (chunks written by separate runs),
    concatenated split by split in natural name order. The meta's counts are the sums. The
    chunk folders are deleted afterwards unless kept, and only once the merged corpus is
    complete and its line counts match the chunks' counts.

blend — named sources with weights. For each split the output holds N examples (given, or
    by default the most that need no repetition), source i contributing a quota
    round(N * w_i / sum w) (largest remainders, so quotas sum to N). A source with fewer
    examples than its quota is repeated whole as often as it fits, then sampled for the
    rest. Which examples a source contributes is a seeded selection sample (Knuth's
    algorithm S) made in one pass over its file, and the sources are interleaved at random
    in proportion to what each has left, so the result is fixed by the seed and memory
    stays constant. A source without a split sits that split out.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hrmkit.files import DatasetError, check_output_free, staged_folder
from hrmkit.lm.corpus import Progress
from hrmkit.lm.corpus.layout import SPLIT_ORDER
from hrmkit.lm.corpus_format import (
    TOKENIZER_FILE,
    load_corpus_meta,
    load_corpus_tokenizer,
    write_corpus_files,
)
from hrmkit.lm.line_index import line_offsets

_UNFINISHED = re.compile(r"\.(tmp|old)-\d+$")


@dataclass
class Corpus:
    path: Path
    meta: dict[str, Any]
    tokenizer_digest: str

    @property
    def counts(self) -> dict[str, int]:
        return self.meta["splits"]


def tokenizer_digest(corpus: Path) -> str:
    """A fingerprint of the corpus's tokenizer that ignores JSON key order and spacing."""
    path = corpus / TOKENIZER_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(path, "file not found; every corpus carries its tokenizer") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DatasetError(path, f"cannot read ({error})") from None
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def open_corpus(path: Path) -> Corpus:
    meta = load_corpus_meta(path)
    load_corpus_tokenizer(path)  # its ids must agree with the meta
    return Corpus(path, meta, tokenizer_digest(path))


def check_same_tokenizer(corpora: Sequence[Corpus]) -> None:
    first = corpora[0]
    for other in corpora[1:]:
        if other.tokenizer_digest != first.tokenizer_digest:
            raise DatasetError(
                other.path,
                f"its tokenizer differs from {first.path}'s; merged, the same id would mean different text "
                "(re-tokenize one of them with the other's tokenizer.json)",
            )


def _natural_key(path: Path) -> list:
    return [int(piece) if piece.isdigit() else piece for piece in re.split(r"(\d+)", path.name)]


def _split_names(corpora: Sequence[Corpus]) -> list[str]:
    names = {name for corpus in corpora for name in corpus.counts}
    return [name for name in SPLIT_ORDER if name in names] + sorted(names - set(SPLIT_ORDER))


def _read_examples(path: Path, counter: list[int]) -> Iterator[dict[str, Any]]:
    with open(path, "rb") as file:
        for line_number, line in enumerate(file, 1):
            try:
                example = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError) as error:
                raise DatasetError(f"{path}:{line_number}", f"not valid JSON ({error})") from None
            counter[0] += 1
            yield example


def _verify(out: Path, meta: dict[str, Any], expected: dict[str, int]) -> None:
    """The written corpus holds exactly the expected number of lines per split."""
    for split, count in expected.items():
        written = meta["splits"].get(split)
        on_disk = len(line_offsets(out / f"{split}.jsonl")) - 1
        if written != count or on_disk != count:
            raise DatasetError(
                out / f"{split}.jsonl",
                f"merged {written} examples ({on_disk} lines) but the inputs hold {count}; inputs were left in place",
            )


def _write_verified(
    output: Path,
    splits: dict[str, Iterator[dict[str, Any]]],
    tokenizer: Any,
    meta_extra: dict[str, Any],
    expected: dict[str, int],
    overwrite: bool,
) -> dict[str, Any]:
    """The corpus written under a staging name, its counts checked there, then renamed to `output`."""
    check_output_free(output, overwrite)
    if expected.get("train") == 0:  # `hrm train` refuses an empty train split: refuse it before writing
        raise DatasetError(output, "its train split would hold 0 examples; nothing to train on")
    with staged_folder(output, suffix="-unverified") as staging:
        meta = write_corpus_files(staging, splits, tokenizer, meta_extra, final_dir=output)
        _verify(staging, meta, expected)
    return meta


@dataclass
class MergeResult:
    meta: dict[str, Any]
    inputs: list[Path]
    deleted: list[Path] = field(default_factory=list)
    seconds: float = 0.0
    quotas: dict[str, dict[str, int]] = field(default_factory=dict)


def find_chunks(folder: Path, output: Path) -> list[Path]:
    if not folder.is_dir():
        raise DatasetError(folder, "folder of chunk corpora not found")
    resolved_output = output.resolve()
    if resolved_output == folder.resolve() or folder.resolve() in resolved_output.parents:
        raise ValueError(f"the output {output} must not lie inside the chunk folder {folder}: it would be merged or deleted")
    chunks, unfinished = [], []
    for path in sorted(folder.iterdir(), key=_natural_key):
        if not path.is_dir():
            continue
        if _UNFINISHED.search(path.name):
            continue  # a staging folder of a run that is still going or died
        if not (path / "meta.json").is_file():
            unfinished.append(path.name)
            continue
        chunks.append(path)
    if unfinished:
        raise DatasetError(folder, f"{len(unfinished)} folder(s) have no meta.json (unfinished chunks?): {', '.join(unfinished[:5])}")
    if not chunks:
        raise DatasetError(folder, "no corpus folders (with meta.json) inside")
    return chunks


def merge_chunks(
    folder: str | Path,
    output: str | Path,
    keep_chunks: bool = False,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> MergeResult:
    started = time.perf_counter()
    folder, output = Path(folder), Path(output)
    corpora = [open_corpus(path) for path in find_chunks(folder, output)]
    check_same_tokenizer(corpora)
    expected = {split: sum(corpus.counts.get(split, 0) for corpus in corpora) for split in _split_names(corpora)}
    counter = [0]
    total = sum(expected.values())

    def split_examples(split: str) -> Iterator[dict[str, Any]]:
        for corpus in corpora:
            if split in corpus.counts:
                for example in _read_examples(corpus.path / f"{split}.jsonl", counter):
                    yield example
                    if progress and counter[0] % 4096 == 0:
                        progress("merge: examples", counter[0], total)

    first = corpora[0]
    meta_extra = {
        "max_seq_len": max(corpus.meta["max_seq_len"] for corpus in corpora),
        "source": {"merged_chunks": [{"path": corpus.path.name, "splits": corpus.counts} for corpus in corpora]},
    }
    tokenizer = load_corpus_tokenizer(first.path)
    splits = {split: split_examples(split) for split in expected}
    meta = _write_verified(output, splits, tokenizer, meta_extra, expected, overwrite)
    if progress:
        progress("merge: examples", counter[0], total)
    result = MergeResult(meta=meta, inputs=[corpus.path for corpus in corpora])
    if not keep_chunks:
        for corpus in corpora:
            shutil.rmtree(corpus.path)
            result.deleted.append(corpus.path)
        try:
            folder.rmdir()  # only when nothing else was in it
        except OSError:
            pass
    result.seconds = time.perf_counter() - started
    return result


# --------------------------------------------------------------------------- blending


def quotas(total: int, weights: Sequence[float]) -> list[int]:
    """Split `total` in proportion to `weights` by largest remainders (ties to the earlier source)."""
    weight_sum = sum(weights)
    exact = [total * weight / weight_sum for weight in weights]
    shares = [math.floor(value) for value in exact]
    by_remainder = sorted(range(len(weights)), key=lambda index: (-(exact[index] - shares[index]), index))
    for index in by_remainder[: total - sum(shares)]:
        shares[index] += 1
    return shares


def default_total(available: Sequence[int], weights: Sequence[float]) -> int:
    """The most examples a blend can hold without repeating any source."""
    weight_sum = sum(weights)
    limits = [math.floor(count * weight_sum / weight) for count, weight in zip(available, weights) if weight > 0]
    total = min(limits) if limits else 0
    while total > 0 and any(quota > count for quota, count in zip(quotas(total, weights), available)):
        total -= 1  # rounding can push one quota past its source; step back until none is
    return total


def _selected(path: Path, available: int, quota: int, rng: random.Random, counter: list[int]) -> Iterator[dict[str, Any]]:
    """`quota` examples of the file: whole passes while they fit, then a seeded sample of the rest."""
    passes, rest = divmod(quota, available) if available else (0, 0)
    for _ in range(passes):
        yield from _read_examples(path, counter)
    if not rest:
        return
    needed, remaining = rest, available
    with open(path, "rb") as file:
        for line in file:
            # Algorithm S: take this line with probability needed / remaining, which gives
            # every subset of size `rest` the same chance, in one sequential pass.
            if rng.random() * remaining < needed:
                counter[0] += 1
                yield json.loads(line)
                needed -= 1
                if not needed:
                    return
            remaining -= 1


def blend(
    sources: Sequence[str | Path],
    weights: Sequence[float],
    output: str | Path,
    samples: dict[str, int | None] | None = None,
    seed: int = 0,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> MergeResult:
    started = time.perf_counter()
    if len(sources) < 2:
        raise ValueError("blending needs at least two sources")
    if len(weights) != len(sources):
        raise ValueError(f"{len(sources)} source(s) but {len(weights)} weight(s); give one weight per source")
    if any(not math.isfinite(weight) or weight < 0 for weight in weights) or not any(weights):
        raise ValueError(f"weights must be >= 0 and not all 0, got {list(weights)}")
    samples = samples or {}
    corpora = [open_corpus(Path(path)) for path in sources]
    check_same_tokenizer(corpora)
    counter = [0]
    plans: dict[str, list[int]] = {}
    for split in _split_names(corpora):
        available = [corpus.counts.get(split, 0) for corpus in corpora]
        split_weights = [weight if count else 0.0 for weight, count in zip(weights, available)]
        if not any(split_weights):
            continue
        wanted = samples.get(split)
        total = default_total(available, split_weights) if wanted is None else wanted
        plans[split] = quotas(total, split_weights)
    unknown = sorted(set(samples) - set(_split_names(corpora)))
    if unknown:
        raise ValueError(f"no source has split(s) {', '.join(unknown)}")
    grand_total = sum(map(sum, plans.values()))

    def split_examples(split: str) -> Iterator[dict[str, Any]]:
        streams, left = [], list(plans[split])
        for index, corpus in enumerate(corpora):
            rng = random.Random(f"{seed}:{split}:select:{index}")
            count = corpus.counts.get(split, 0)
            path = corpus.path / f"{split}.jsonl"
            streams.append(_selected(path, count, left[index], rng, counter) if left[index] else iter(()))
        interleave = random.Random(f"{seed}:{split}:interleave")
        remaining = sum(left)
        while remaining:
            # Pick a source with probability proportional to what it still has to give.
            pick = interleave.randrange(remaining)
            index = 0
            while pick >= left[index]:
                pick -= left[index]
                index += 1
            left[index] -= 1
            remaining -= 1
            example = next(streams[index], None)
            if example is None:
                raise DatasetError(corpora[index].path / f"{split}.jsonl", "holds fewer examples than its meta.json says")
            yield example
            if progress and counter[0] % 4096 == 0:
                progress("blend: examples", counter[0], grand_total)

    meta_extra = {
        "max_seq_len": max(corpus.meta["max_seq_len"] for corpus in corpora),
        "source": {
            "blend": [
                {"path": str(corpus.path), "weight": weight, "available": corpus.counts,
                 "quota": {split: plan[index] for split, plan in plans.items()}}
                for index, (corpus, weight) in enumerate(zip(corpora, weights))
            ],
            "seed": seed,
        },
    }
    if not plans:
        raise ValueError("nothing to blend: no split has examples in a source with weight > 0")
    tokenizer = load_corpus_tokenizer(corpora[0].path)
    splits = {split: split_examples(split) for split in plans}
    meta = _write_verified(Path(output), splits, tokenizer, meta_extra,
                           {split: sum(plan) for split, plan in plans.items()}, overwrite)
    return MergeResult(
        meta=meta,
        inputs=[corpus.path for corpus in corpora],
        seconds=time.perf_counter() - started,
        quotas={split: {str(corpus.path): plan[index] for index, corpus in enumerate(corpora)} for split, plan in plans.items()},
    )
