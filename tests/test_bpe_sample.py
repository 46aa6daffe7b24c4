"""The byte-level BPE that `hrm data prepare-language` trains sees a bounded, seeded sample of the
whole training split, and the corpus's meta.json says which."""

import json
import random

import pytest
from cli_helpers import hrm

from hrmkit.cli.common import OneLineParser
from hrmkit.cli.language import add_language_tools, run_language_tool
from hrmkit.lm.corpus import corpus_builder
from hrmkit.lm.corpus.seeded_draws import TOKENIZER_SAMPLE_STREAM, SeededDraws
from hrmkit.lm.corpus.tokenizer_sample import sample_texts
from hrmkit.lm.tokenizers import train_bpe_tokenizer

WORDS = ("the", "model", "reasons", "over", "a", "grid", "of", "cells", "and", "halts", "when", "sure",
         "café", "naïve", "東京", "straße")  # some are several bytes a character: the budget counts bytes
DOCUMENTS = 1200  # of about 2 kB each: 2.4 MB, more than twice a 1 MB sample
SAMPLE_MB = 1


def document(number: int) -> str:
    rng = random.Random(number)
    return f"document {number}: " + " ".join(rng.choice(WORDS) for _ in range(400))


def utf8_size(texts) -> int:
    return sum(len(text.encode("utf-8")) for text in texts)


def hrm_data(*argv) -> int:
    """`hrm data ARGV` in this process (so the trainer can be watched); the exit code."""
    parser = OneLineParser(prog="hrm data")
    add_language_tools(parser.add_subparsers(dest="tool", required=True))
    try:
        return run_language_tool(parser.parse_args([str(arg) for arg in argv]))
    except SystemExit as exit_:
        return exit_.code


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("bpe-sample") / "documents.jsonl"
    with open(path, "w", encoding="utf-8") as file:
        for number in range(DOCUMENTS):
            file.write(json.dumps({"text": document(number)}, ensure_ascii=False) + "\n")
    return path


@pytest.fixture(scope="module")
def builds(corpus, tmp_path_factory):
    """seed -> [(the texts the BPE trainer was given, the corpus folder)] of prepare-language runs."""
    runs = {}

    def watched_trainer(texts, vocab_size):
        texts = list(texts)
        runs[seed].append({"texts": texts})
        return train_bpe_tokenizer(texts, vocab_size)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(corpus_builder, "train_bpe_tokenizer", watched_trainer)
        for seed in (0, 0, 1):
            runs.setdefault(seed, [])
            dest = tmp_path_factory.mktemp(f"seed-{seed}") / "corpus"
            # No val carving: the seed then chooses the tokenizer sample alone.
            code = hrm_data("prepare-language", "--source", corpus, "--out", dest, "--vocab-size", 300,
                            "--max-seq-len", 64, "--val-ratio", 0, "--tokenizer-sample-mb", SAMPLE_MB, "--seed", seed)
            assert code == 0
            runs[seed][-1]["dest"] = dest
    return runs


def test_the_trainer_sees_at_most_the_sample_budget_of_a_larger_corpus(builds, corpus):
    sampled = builds[0][0]["texts"]
    assert corpus.stat().st_size > 2 * SAMPLE_MB * 1_000_000
    assert 0.9 * SAMPLE_MB * 1_000_000 < utf8_size(sampled) <= SAMPLE_MB * 1_000_000


def test_the_sample_is_fixed_by_the_seed(builds):
    first, again = builds[0]
    assert first["texts"] == again["texts"]
    assert (first["dest"] / "tokenizer.json").read_bytes() == (again["dest"] / "tokenizer.json").read_bytes()
    assert builds[1][0]["texts"] != first["texts"]


def test_the_sample_is_drawn_from_the_whole_corpus(builds):
    numbers = [int(text.split(":")[0].removeprefix("document ")) for text in builds[0][0]["texts"]]
    last_quarter = [number for number in numbers if number >= 3 * DOCUMENTS // 4]
    assert 0.15 < len(last_quarter) / len(numbers) < 0.35  # a quarter, give or take the draw


def test_meta_records_the_sample_the_tokenizer_was_trained_on(builds):
    run = builds[0][0]
    sample = json.loads((run["dest"] / "meta.json").read_text())["source"]["tokenizer"]["sample"]
    assert sample["budget_bytes"] == SAMPLE_MB * 1_000_000
    assert sample["bytes"] == utf8_size(run["texts"]) and sample["texts"] == len(run["texts"])
    assert sample["seed"] == 0
    assert sample["split_texts"] == DOCUMENTS and sample["split_bytes"] > 2 * sample["bytes"]


@pytest.mark.cli
@pytest.mark.parametrize("size", ["0", "-5"])
def test_a_sample_size_below_one_mb_is_one_line_of_error(tmp_path, corpus, size):
    dest = tmp_path / "corpus"
    result = hrm("data", "prepare-language", "--source", str(corpus), "--out", str(dest),
                 "--tokenizer-sample-mb", size, check=False)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "--tokenizer-sample-mb" in result.stderr, result.stderr
    assert not dest.exists()


def test_the_sample_does_not_depend_on_how_the_split_is_batched():
    texts = [document(number) for number in range(300)]
    whole = sample_texts([texts], 100_000, seed=5)
    batched = sample_texts([texts[start : start + 7] for start in range(0, len(texts), 7)], 100_000, seed=5)
    assert whole == batched
    assert (whole.texts_seen, whole.bytes_seen) == (300, utf8_size(texts))


def test_the_sample_is_the_smallest_keys_that_fit_in_the_budget():
    texts = [document(number)[: 100 + 37 * (number % 50)] for number in range(400)]  # of many sizes
    budget = 40_000
    keys = SeededDraws(9, TOKENIZER_SAMPLE_STREAM).draws(0, len(texts))
    expected, used = [], 0
    for number in sorted(range(len(texts)), key=lambda number: keys[number]):
        size = utf8_size([texts[number]])
        if used + size > budget:
            break
        expected.append(number)
        used += size
    sample = sample_texts([texts], budget, seed=9)
    assert sample.texts == [texts[number] for number in sorted(expected)]
    assert sample.bytes == used


def test_a_text_longer_than_the_whole_budget_is_cut_to_it():
    text = document(0) * 3
    sample = sample_texts([[text]], 1001, seed=0)
    assert len(sample.texts) == 1 and text.startswith(sample.texts[0])
    assert 1001 - 4 < utf8_size(sample.texts) <= 1001  # cut between characters, never inside one
