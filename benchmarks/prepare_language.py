"""Throughput and peak memory of `hrm data prepare-language`, beside a naive load-everything script.

    python benchmarks/prepare_language.py --sizes 100 500 --work /tmp/hrm-bench-language

1. Generates JSON Lines corpora of real prose of each size (MB): the docstrings of the
   standard library's source files (read with `ast`, nothing imported), cut into
   paragraphs and drawn with a fixed seed into documents of 3-30 paragraphs.
2. Trains one byte-level BPE (vocab 8192) on the first 20 MB, so every run encodes with
   the same tokenizer and the timings measure reading, tokenizing and writing.
3. For each size, in a fresh process each, measured with wait4 (peak RSS of that process):
     streaming  the tool, `prepare-language --tokenizer ... --tokenizer-num-threads 2`
                (val carved by the default ratio, so the source is read twice)
     naive      read all lines, parse all, encode all in one call, build all examples
                in a list, then `write_corpus` (the same triples and output format)
   The naive run is skipped for a size where its memory, extrapolated from the smaller
   size, would pass 70 % of the available memory.

Prints seconds, source MB/s, tokens/s and peak RSS per run; figures, not assertions.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import numpy as np

RUN_TOOL = """
import sys
from hrmkit.cli.common import OneLineParser
from hrmkit.cli.language import add_language_tools, run_language_tool
parser = OneLineParser(prog="hrm data")
add_language_tools(parser.add_subparsers(dest="tool", required=True))
sys.exit(run_language_tool(parser.parse_args(sys.argv[1:])))
"""

NAIVE = """
import json, random, sys
from hrmkit.lm.corpus_format import write_corpus
from hrmkit.lm.tokenizers import load_tokenizer
from hrmkit.lm.corpus.triples import TriplesConfig, continuation_examples
source, dest, tokenizer_path, max_seq_len = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
with open(source, encoding="utf-8") as file:
    lines = file.read().splitlines()
texts = [json.loads(line)["text"] for line in lines]
tokenizer = load_tokenizer(tokenizer_path)
ids = tokenizer.encode_many(texts)
config = TriplesConfig(max_seq_len=max_seq_len)
rng = random.Random(0)
train, val = [], []
for document in ids:
    (val if rng.random() < 0.05 else train).extend(continuation_examples(document, config, tokenizer))
write_corpus(dest, {"train": train, "val": val}, tokenizer, {"max_seq_len": max_seq_len})
print(json.dumps({"tokens": sum(map(len, ids))}))
"""


def stdlib_paragraphs() -> list[str]:
    """Paragraphs of every docstring in the standard library's source files, in a fixed order."""
    root = Path(sysconfig.get_paths()["stdlib"])
    paragraphs: list[str] = []
    seen: set[str] = set()
    for path in sorted(root.rglob("*.py")):
        if any(part in ("test", "tests", "idlelib", "lib2to3", "site-packages") for part in path.parts):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                for paragraph in (doc or "").split("\n\n"):
                    paragraph = paragraph.strip()
                    if len(paragraph) > 40 and paragraph not in seen:
                        seen.add(paragraph)
                        paragraphs.append(paragraph)
    return paragraphs


def generate_corpus(path: Path, size_mb: int, paragraphs: list[str], seed: int = 0, rare_word_share: float = 0.0) -> int:
    """Write documents of prose until `size_mb` MB; returns the number of documents.

    With `rare_word_share` > 0 that share of the words becomes made-up words drawn from a Zipf
    law (exponent 1.1) over an open vocabulary, so the distinct words keep growing with the
    corpus, as web text's do (names, numbers, typos), instead of stopping at the docstrings'.
    """
    rng = random.Random(seed)
    rare_words = np.random.default_rng(seed)
    target = size_mb * 1_000_000
    written = documents = 0
    with open(path, "w", encoding="utf-8") as file:
        while written < target:
            text = "\n\n".join(rng.sample(paragraphs, rng.randint(3, 30)))
            if rare_word_share:
                text = _with_rare_words(text, rare_word_share, rare_words)
            line = json.dumps({"id": documents, "text": text}, ensure_ascii=False) + "\n"
            file.write(line)
            written += len(line.encode("utf-8"))
            documents += 1
    return documents


def _with_rare_words(text: str, share: float, rng: np.random.Generator) -> str:
    words = text.split(" ")
    replaced = np.flatnonzero(rng.random(len(words)) < share)
    for position, rank in zip(replaced.tolist(), rng.zipf(1.1, len(replaced)).tolist()):
        words[position] = _made_up_word(rank)
    return " ".join(words)


def _made_up_word(rank: int) -> str:
    """Rank 1, 2, ... spelled in base 26 with the letters in English frequency order: short for the common ranks."""
    letters = []
    while rank:
        rank, digit = divmod(rank, 26)
        letters.append("etaoinshrdlcumwfgypbvkjxqz"[digit])
    return "".join(letters)


def measured(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """(seconds, peak RSS in MB, stdout) of one child process."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, **(env or {})})
    stdout_text = process.stdout.read()
    stderr_text = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"{command[:4]} failed ({process.returncode}): {stderr_text[-2000:]}")
    return seconds, usage.ru_maxrss / 1024, stdout_text  # ru_maxrss is in KiB on Linux


def available_mb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    return float("inf")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 500], help="corpus sizes in MB")
    parser.add_argument("--work", type=Path, default=Path("/tmp/hrm-bench-language"), help="scratch folder")
    parser.add_argument("--max-seq-len", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2, help="tokenizer threads (the machine's cores)")
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the generated corpora and outputs")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()

    args.work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    paragraphs = stdlib_paragraphs()
    print(f"{len(paragraphs)} distinct docstring paragraphs ({sum(map(len, paragraphs)) / 1e6:.1f} M characters) "
          f"from the standard library, in {time.perf_counter() - started:.1f} s", flush=True)

    corpora = {}
    for size in sorted(args.sizes):
        path = args.work / f"corpus-{size}MB.jsonl"
        if not path.exists() or path.stat().st_size < size * 1_000_000:
            started = time.perf_counter()
            documents = generate_corpus(path, size, paragraphs)
            print(f"generated {path} ({documents} documents) in {time.perf_counter() - started:.1f} s", flush=True)
        corpora[size] = path

    tokenizer_path = args.work / "tokenizer.json"
    if not tokenizer_path.exists():
        from hrmkit.lm.tokenizers import train_bpe_tokenizer

        def sample(limit: int = 20_000_000):
            seen = 0
            with open(corpora[min(corpora)], encoding="utf-8") as file:
                for line in file:
                    text = json.loads(line)["text"]
                    yield text
                    seen += len(text)
                    if seen >= limit:
                        return

        started = time.perf_counter()
        train_bpe_tokenizer(sample(), vocab_size=8192).save(tokenizer_path)
        print(f"trained the BPE tokenizer (vocab 8192) on 20 M characters in {time.perf_counter() - started:.1f} s",
              flush=True)

    rows = []
    naive_mb_per_source_mb = None
    for size, path in corpora.items():
        source_mb = path.stat().st_size / 1e6
        dest = args.work / f"streaming-{size}"
        shutil.rmtree(dest, ignore_errors=True)
        seconds, rss, _ = measured([
            sys.executable, "-c", RUN_TOOL, "prepare-language", "--source", str(path), "--out", str(dest),
            "--tokenizer", str(tokenizer_path), "--max-seq-len", str(args.max_seq_len),
            "--tokenizer-num-threads", str(args.threads),
        ])
        meta = json.loads((dest / "meta.json").read_text())
        tokens = sum(stat["source_tokens"] for stat in meta["records"].values())
        rows.append({"size_mb": size, "run": "streaming", "seconds": seconds, "source_mb_s": source_mb / seconds,
                     "tokens_s": tokens / seconds, "tokens": tokens, "peak_rss_mb": rss,
                     "examples": sum(meta["splits"].values())})
        print(_row(rows[-1]), flush=True)
        if not args.keep:
            shutil.rmtree(dest)

        if args.skip_naive:
            continue
        if naive_mb_per_source_mb is not None and naive_mb_per_source_mb * source_mb > 0.7 * available_mb():
            print(f"naive at {size} MB skipped: about {naive_mb_per_source_mb * source_mb / 1024:.1f} GiB expected, "
                  f"{available_mb() / 1024:.1f} GiB available", flush=True)
            rows.append({"size_mb": size, "run": "naive", "skipped": "would not fit in memory"})
            continue
        dest = args.work / f"naive-{size}"
        shutil.rmtree(dest, ignore_errors=True)
        seconds, rss, out = measured([sys.executable, "-c", NAIVE, str(path), str(dest), str(tokenizer_path),
                                      str(args.max_seq_len)], env={"RAYON_NUM_THREADS": str(args.threads)})
        tokens = json.loads(out.strip().splitlines()[-1])["tokens"]
        naive_mb_per_source_mb = rss / source_mb
        rows.append({"size_mb": size, "run": "naive", "seconds": seconds, "source_mb_s": source_mb / seconds,
                     "tokens_s": tokens / seconds, "tokens": tokens, "peak_rss_mb": rss})
        print(_row(rows[-1]), flush=True)
        if not args.keep:
            shutil.rmtree(dest)

    streaming = [row for row in rows if row["run"] == "streaming"]
    if len(streaming) > 1:
        low, high = streaming[0], streaming[-1]
        print(f"streaming peak RSS: {low['peak_rss_mb']:.0f} MB at {low['size_mb']} MB, {high['peak_rss_mb']:.0f} MB "
              f"at {high['size_mb']} MB ({high['peak_rss_mb'] - low['peak_rss_mb']:+.0f} MB for "
              f"{high['size_mb'] / low['size_mb']:.0f}x the data)")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "cpus": os.cpu_count()}, indent=2) + "\n")
    if not args.keep:
        for path in corpora.values():
            path.unlink()
    return 0


def _row(row: dict) -> str:
    return (f"{row['run']:>9} {row['size_mb']:>5} MB: {row['seconds']:7.1f} s  {row['source_mb_s']:6.2f} MB/s  "
            f"{row['tokens_s']:>11,.0f} tokens/s  peak RSS {row['peak_rss_mb']:7.0f} MB  ({row['tokens']:,} tokens)")


if __name__ == "__main__":
    sys.exit(main())
