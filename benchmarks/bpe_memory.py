"""Peak memory of `hrm data prepare-language` when it trains its BPE tokenizer, before and after
the tokenizer's training text was bounded by --tokenizer-sample-mb.

    git archive <commit before> src | tar -x -C /tmp/hrm-before     # the code to compare against
    python benchmarks/bpe_memory.py --sizes 100 300 1000 --work /tmp/hrm-bench-bpe --before-src /tmp/hrm-before/src

1. Generates JSON Lines corpora of each size (MB) with prepare_language.py's generator, one word
   in five made up from an open vocabulary: the BPE trainer's memory follows the distinct words
   of its input, and these keep growing with the corpus, as in web text.
2. For each size, in a fresh process each, runs `prepare-language` without --tokenizer (vocab
   8192, 2 tokenizer threads, val carved by the default ratio) and measures its peak RSS (wait4):
     after    this checkout, with the default --tokenizer-sample-mb
     before   the same command on the source tree --before-src (skipped without it)
3. With --held-out-samples, trains a BPE on samples of those sizes (MB) of the largest corpus and
   encodes 5 MB of held-out text (the same generator, another seed): bytes per token show what a
   bigger sample would buy.

Prints peak RSS, seconds and the tokenizer sample that meta.json records; figures, not assertions.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import sys
import time
from pathlib import Path

from prepare_language import RUN_TOOL, generate_corpus, measured, stdlib_paragraphs

RARE_WORD_SHARE = 0.2


def corpus_of(size_mb: int, work: Path, paragraphs: list[str]) -> Path:
    path = work / f"corpus-{size_mb}MB-open-vocabulary.jsonl"
    if not path.exists() or path.stat().st_size < size_mb * 1_000_000:
        started = time.perf_counter()
        documents = generate_corpus(path, size_mb, paragraphs, rare_word_share=RARE_WORD_SHARE)
        print(f"generated {path} ({documents} documents) in {time.perf_counter() - started:.0f} s", flush=True)
    return path


def prepare(corpus: Path, dest: Path, threads: int, source_tree: Path | None) -> dict:
    """Run prepare-language (from `source_tree` when given) in a child; its figures and sample."""
    shutil.rmtree(dest, ignore_errors=True)
    env = {"PYTHONPATH": str(source_tree)} if source_tree else None
    seconds, rss_mb, _ = measured([sys.executable, "-c", RUN_TOOL, "prepare-language", "--source", str(corpus),
                                   "--out", str(dest), "--tokenizer-num-threads", str(threads)], env=env)
    tokenizer = json.loads((dest / "meta.json").read_text())["source"]["tokenizer"]
    shutil.rmtree(dest)
    return {"seconds": seconds, "peak_rss_mb": rss_mb, "tokenizer": tokenizer}


def describe_sample(tokenizer: dict) -> str:
    sample = tokenizer.get("sample")
    if sample is None:  # the code before: the first this-many characters of the training split
        return f"first {tokenizer.get('sample_chars')} characters"
    return f"{sample['bytes'] / 1e6:.1f} MB of {sample['split_bytes'] / 1e6:.0f} MB ({sample['texts']} texts)"


def measure_memory(corpora: dict[int, Path], runs: list[tuple[str, Path | None]], work: Path,
                   threads: int) -> list[dict]:
    rows = []
    for size, corpus in corpora.items():
        for name, source_tree in runs:
            row = {"size_mb": size, "run": name, **prepare(corpus, work / f"{name}-{size}", threads, source_tree)}
            rows.append(row)
            print(f"{name:>6} {size:>5} MB: peak RSS {row['peak_rss_mb']:6.0f} MB  {row['seconds']:6.0f} s  "
                  f"BPE trained on {describe_sample(row['tokenizer'])}", flush=True)
    return rows


def held_out_bytes_per_token(corpus: Path, sample_mb: int, held_out: list[str]) -> float:
    from hrmkit.lm.corpus.tokenizer_sample import sample_texts
    from hrmkit.lm.tokenizers import train_bpe_tokenizer

    def text_batches(batch_size: int = 1000):
        with open(corpus, encoding="utf-8") as file:
            while batch := [json.loads(line)["text"] for line in itertools.islice(file, batch_size)]:
                yield batch

    sample = sample_texts(text_batches(), sample_mb * 1_000_000, seed=0)
    tokenizer = train_bpe_tokenizer(sample.texts, vocab_size=8192)
    tokens = sum(map(len, tokenizer.encode_many(held_out)))
    return sum(len(text.encode("utf-8")) for text in held_out) / tokens


def compare_sample_sizes(corpus: Path, sample_mbs: list[int], work: Path, paragraphs: list[str]) -> None:
    path = work / "held-out-5MB.jsonl"
    generate_corpus(path, 5, paragraphs, seed=1, rare_word_share=RARE_WORD_SHARE)
    held_out = [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines()]
    for sample_mb in sample_mbs:
        print(f"BPE on a {sample_mb} MB sample of {corpus.name}: "
              f"{held_out_bytes_per_token(corpus, sample_mb, held_out):.4f} bytes/token on held-out text", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 300, 1000], help="corpus sizes in MB")
    parser.add_argument("--work", type=Path, default=Path("/tmp/hrm-bench-bpe"), help="scratch folder")
    parser.add_argument("--before-src", type=Path, default=None,
                        help="a source tree (its src/ folder) to run as 'before', e.g. the commit before the change")
    parser.add_argument("--threads", type=int, default=2, help="tokenizer threads (the machine's cores)")
    parser.add_argument("--held-out-samples", type=int, nargs="*", default=[],
                        help="sample sizes (MB) whose BPEs are compared on held-out text")
    parser.add_argument("--skip-memory", action="store_true", help="only the held-out comparison")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()

    args.work.mkdir(parents=True, exist_ok=True)
    paragraphs = stdlib_paragraphs()
    corpora = {size: corpus_of(size, args.work, paragraphs) for size in sorted(args.sizes)}
    runs = [("after", None)] + ([("before", args.before_src.resolve())] if args.before_src else [])
    rows = [] if args.skip_memory else measure_memory(corpora, runs, args.work, args.threads)
    if args.held_out_samples:
        compare_sample_sizes(corpora[max(corpora)], args.held_out_samples, args.work, paragraphs)
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "cpus": os.cpu_count()}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
