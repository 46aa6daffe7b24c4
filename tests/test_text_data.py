"""Sequence-to-sequence data: tokenizers, examples, batches, corpora, arithmetic."""

import json
import os

import pytest
import torch

from hrmkit.files import DatasetError
from hrmkit.lm import line_index
from hrmkit.lm.arithmetic import arithmetic_problems, build_arithmetic_corpus
from hrmkit.lm.batches import BatchStream, eval_batches, pad_batch
from hrmkit.lm.corpus_format import (
    CorpusSplit,
    ListSplit,
    load_corpus_meta,
    load_corpus_tokenizer,
    write_corpus,
)
from hrmkit.lm.examples import cut_at_eos, make_example, make_text_example
from hrmkit.lm.tokenizers import (
    BPETokenizer,
    SimpleTokenizer,
    load_tokenizer,
    train_bpe_tokenizer,
)
from hrmkit.train.batch_loader import BatchLoader

CORPUS_TEXT = [
    "The quick brown fox jumps over the lazy dog.",
    "def add(a, b):\n    return a + b\n",
    "Hierarchical reasoning models think in two speeds: slow planning, fast detail.",
    "What is the capital of France? Paris is the capital of France.",
    "for i in range(10):\n    print(i * i)\n",
] * 20


def numbered_examples(count, vocab_size=50):
    """Distinct, recognisable examples: example k's encoder holds k (and k's length varies)."""
    return [
        {
            "encoder_ids": [4 + k % (vocab_size - 4)] * (1 + k % 5),
            "decoder_input_ids": [1] + [5] * (k % 3),
            "labels": [5] * (k % 3) + [2],
        }
        for k in range(count)
    ]


def example_key(batch, row):
    """The example a padded batch row came from, as a hashable value."""
    mask = batch["encoder_mask"][row]
    return tuple(batch["encoder_ids"][row][mask].tolist())


@pytest.fixture
def char_tokenizer():
    return SimpleTokenizer.for_texts(["abc", "xyz 0123456789"])


@pytest.fixture
def corpus(tmp_path, char_tokenizer):
    """A written corpus of 37 train / 11 val numbered examples."""
    out = tmp_path / "corpus"
    write_corpus(
        out,
        {"train": iter(numbered_examples(37, char_tokenizer.vocab_size)), "val": numbered_examples(11)},
        char_tokenizer,
        {"source": {"test": True}},
    )
    return out


# --------------------------------------------------------------------------- tokenizers


def test_char_tokenizer_round_trips_and_maps_unknown_characters_to_unk(tmp_path, char_tokenizer):
    assert (char_tokenizer.pad_id, char_tokenizer.bos_id, char_tokenizer.eos_id, char_tokenizer.unk_id) == (0, 1, 2, 3)
    assert char_tokenizer.alphabet == " 0123456789abcxyz"
    assert char_tokenizer.vocab_size == 4 + 17
    ids = char_tokenizer.encode("abc 42")
    assert char_tokenizer.decode(ids) == "abc 42"
    assert char_tokenizer.encode("a?") == [char_tokenizer.encode("a")[0], char_tokenizer.unk_id]
    specials = [char_tokenizer.bos_id, *ids, char_tokenizer.eos_id, char_tokenizer.pad_id]
    assert char_tokenizer.decode(specials) == "abc 42"
    assert char_tokenizer.decode(specials, skip_special=False) == "<bos>abc 42<eos><pad>"

    path = tmp_path / "tok.json"
    char_tokenizer.save(path)
    assert json.loads(path.read_text())["type"] == "hrmkit-char"
    loaded = load_tokenizer(path)
    assert isinstance(loaded, SimpleTokenizer)
    assert loaded.alphabet == char_tokenizer.alphabet and loaded.encode("zyx") == char_tokenizer.encode("zyx")


def test_char_tokenizer_keeps_first_occurrence_order_of_distinct_characters():
    tokenizer = SimpleTokenizer("cabac")
    assert tokenizer.alphabet == "cab"
    assert tokenizer.encode("abc") == [5, 6, 4]


def test_bpe_tokenizer_trains_on_a_stream_round_trips_and_reloads(tmp_path):
    tokenizer = train_bpe_tokenizer(iter(CORPUS_TEXT), vocab_size=320)
    assert (tokenizer.pad_id, tokenizer.bos_id, tokenizer.eos_id, tokenizer.unk_id) == (0, 1, 2, 3)
    assert 260 < tokenizer.vocab_size <= 320
    sample = "The lazy fox returns a + b, naïvely ☃\n"
    ids = tokenizer.encode(sample)
    assert all(4 <= token < tokenizer.vocab_size for token in ids)
    assert len(tokenizer.encode("the capital of France")) < len("the capital of France")  # merges learned
    assert tokenizer.decode(ids) == sample
    assert tokenizer.decode([tokenizer.bos_id, *ids, tokenizer.eos_id]) == sample
    assert tokenizer.decode([tokenizer.bos_id, *ids], skip_special=False).startswith("<bos>")

    path = tmp_path / "tokenizer.json"
    tokenizer.save(path)
    loaded = load_tokenizer(path)
    assert isinstance(loaded, BPETokenizer)
    assert loaded.vocab_size == tokenizer.vocab_size and loaded.encode(sample) == ids


def test_bpe_tokenizer_without_the_special_tokens_is_refused(tmp_path):
    tokenizers = pytest.importorskip("tokenizers")
    bare = tokenizers.Tokenizer(tokenizers.models.BPE())
    with pytest.raises(ValueError, match="no '<pad>' token"):
        BPETokenizer(bare)
    path = tmp_path / "bare.json"
    path.write_text(bare.to_str())
    with pytest.raises(DatasetError, match=r"bare\.json: .*no '<pad>' token"):
        load_tokenizer(path)


def test_load_tokenizer_rejects_unknown_and_broken_files(tmp_path):
    (tmp_path / "other.json").write_text('{"type": "something"}')
    with pytest.raises(DatasetError, match="other.json: unknown tokenizer file"):
        load_tokenizer(tmp_path / "other.json")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(DatasetError, match="broken.json: not valid JSON"):
        load_tokenizer(tmp_path / "broken.json")
    with pytest.raises(DatasetError, match="missing.json: tokenizer file not found"):
        load_tokenizer(tmp_path / "missing.json")


def test_train_bpe_refuses_a_vocabulary_smaller_than_the_bytes():
    with pytest.raises(ValueError, match="vocab_size >= 260"):
        train_bpe_tokenizer(CORPUS_TEXT, vocab_size=100)


# --------------------------------------------------------------------------- examples and batches


def test_make_example_shifts_the_answer_and_truncates_prompt_from_the_left(char_tokenizer):
    example = make_example([10, 11, 12, 13], [20, 21], char_tokenizer, max_seq_len=3)
    assert example == {"encoder_ids": [11, 12, 13], "decoder_input_ids": [1, 20, 21], "labels": [20, 21, 2]}
    long_answer = make_example([10], [20, 21, 22, 23], char_tokenizer, max_seq_len=3)
    assert long_answer["decoder_input_ids"] == [1, 20, 21] and long_answer["labels"] == [20, 21, 22]
    assert make_text_example("ab", "c", char_tokenizer, 8)["labels"] == [*char_tokenizer.encode("c"), 2]


def test_pad_batch_pads_ids_with_pad_labels_with_ignore_and_masks_real_tokens():
    examples = [
        {"encoder_ids": [5, 6, 7], "decoder_input_ids": [1, 8], "labels": [8, 2]},
        {"encoder_ids": [5], "decoder_input_ids": [1, 8, 9, 10], "labels": [8, 9, -100, 2]},
    ]
    batch = pad_batch(examples, pad_id=0)
    assert batch["encoder_ids"].tolist() == [[5, 6, 7], [5, 0, 0]]
    assert batch["decoder_input_ids"].tolist() == [[1, 8, 0, 0], [1, 8, 9, 10]]
    assert batch["labels"].tolist() == [[8, 2, -100, -100], [8, 9, -100, 2]]
    assert batch["encoder_mask"].tolist() == [[True, True, True], [True, False, False]]
    assert batch["decoder_mask"].tolist() == [[True, True, False, False], [True, True, True, True]]
    for key in ("encoder_ids", "decoder_input_ids", "labels"):
        assert batch[key].dtype == torch.long
    assert batch["encoder_mask"].dtype == torch.bool and batch["decoder_mask"].dtype == torch.bool

    rounded = pad_batch(examples, pad_id=0, pad_to_multiple_of=8)
    assert rounded["encoder_ids"].shape == (2, 8) and rounded["labels"].shape == (2, 8)


def test_pad_batch_rejects_decoder_inputs_and_labels_of_different_lengths():
    with pytest.raises(ValueError, match="example 0: decoder_input_ids has 2 tokens but labels has 1"):
        pad_batch([{"encoder_ids": [4], "decoder_input_ids": [1, 5], "labels": [2]}], pad_id=0)


def test_cut_at_eos_drops_ignored_labels_and_everything_after_eos():
    assert cut_at_eos([7, -100, 8, 2, 9, 2], eos_id=2) == [7, 8]
    assert cut_at_eos(torch.tensor([5, 6]), eos_id=2) == [5, 6]


# --------------------------------------------------------------------------- arithmetic


def test_arithmetic_answers_are_correct_and_prompts_well_formed():
    problems = arithmetic_problems(300, digits=2, ops=("+", "-", "*"), seed=3)
    assert len({prompt for prompt, _ in problems}) == 300
    for prompt, answer in problems:
        assert prompt.startswith("What is ") and prompt.endswith("?")
        left, op, right = prompt[len("What is ") : -1].split(" ")
        assert op in "+-*" and 0 <= int(left) <= 99 and 0 <= int(right) <= 99
        assert answer == str(eval(f"{left} {op} {right}"))
    assert any(answer.startswith("-") for _, answer in problems)
    assert any(len(prompt.split()[2]) == 1 for prompt, _ in problems)  # short operands occur
    assert arithmetic_problems(50, seed=3) == arithmetic_problems(50, seed=3)
    assert arithmetic_problems(50, seed=3) != arithmetic_problems(50, seed=4)


def test_arithmetic_excludes_given_prompts_and_refuses_impossible_counts():
    first = arithmetic_problems(100, digits=1, seed=0)
    second = arithmetic_problems(50, digits=1, seed=1, exclude={prompt for prompt, _ in first})
    assert not {prompt for prompt, _ in first} & {prompt for prompt, _ in second}
    assert len(arithmetic_problems(200, digits=1, seed=0)) == 200  # the whole space
    with pytest.raises(ValueError, match="only 200 distinct problems"):
        arithmetic_problems(201, digits=1)


def test_arithmetic_corpus_has_disjoint_splits_that_decode_to_the_problems(tmp_path):
    out = tmp_path / "arith"
    meta = build_arithmetic_corpus(out, digits=2, train=200, val=40, test=30, seed=1)
    assert meta["splits"] == {"train": 200, "val": 40, "test": 30}
    assert load_corpus_meta(out)["max_seq_len"] == 16
    tokenizer = load_corpus_tokenizer(out)

    def problems(split):
        rows = CorpusSplit(out, split)
        rows = [rows[index] for index in range(len(rows))]
        return [(tokenizer.decode(row["encoder_ids"]), tokenizer.decode(row["labels"])) for row in rows]

    train, val, test = problems("train"), problems("val"), problems("test")
    train_prompts = {prompt for prompt, _ in train}
    assert not train_prompts & {prompt for prompt, _ in val}
    assert not train_prompts & {prompt for prompt, _ in test}
    assert not {prompt for prompt, _ in val} & {prompt for prompt, _ in test}
    for prompt, answer in train + val + test:
        assert answer == str(eval(prompt[len("What is ") : -1]))


def test_held_out_arithmetic_problems_have_the_operand_lengths_training_has(tmp_path):
    """The arithmetic preset's sizes draw 17,000 of the 20,000 problems that exist. Cut in the order
    drawn, train had used up every problem with a 1-digit operand before val was drawn: val held
    2-digit-by-2-digit problems only, so its exact match measured part of the task."""
    out = tmp_path / "arith"
    build_arithmetic_corpus(out, digits=2, train=16_000, val=1_000, seed=0)
    tokenizer = load_corpus_tokenizer(out)

    def share_with_a_short_operand(split):
        rows = CorpusSplit(out, split)
        prompts = [tokenizer.decode(rows[index]["encoder_ids"]) for index in range(len(rows))]
        operands = [prompt[len("What is "):-1].split(" ")[::2] for prompt in prompts]
        return sum(min(len(left), len(right)) == 1 for left, right in operands) / len(prompts)

    train, val = share_with_a_short_operand("train"), share_with_a_short_operand("val")
    # 3,800 problems have a 1-digit operand; the draws favour them, so all are among the 17,000
    # drawn (22 %), and each split holds about that share.
    assert 0.18 < val < 0.27 and abs(val - train) < 0.04, (train, val)


# --------------------------------------------------------------------------- corpus on disk


def test_corpus_split_reads_back_exactly_what_was_written(corpus, char_tokenizer):
    meta = load_corpus_meta(corpus)
    assert meta["splits"] == {"train": 37, "val": 11}
    assert (meta["pad_id"], meta["bos_id"], meta["eos_id"], meta["vocab_size"]) == (0, 1, 2, char_tokenizer.vocab_size)
    assert meta["max_seq_len"] == 5 and meta["source"] == {"test": True}
    assert sorted(os.listdir(corpus.parent)) == ["corpus"]  # no staging folder left
    train = CorpusSplit(corpus, "train")
    expected = numbered_examples(37, char_tokenizer.vocab_size)
    assert len(train) == 37
    for index in (36, 0, 17, 5, -1):
        assert train[index] == expected[index]
    with pytest.raises(IndexError):
        train[37]
    short = CorpusSplit(corpus, "train", max_seq_len=2)
    assert expected[8]["labels"] == [5, 5, 2]
    assert short[8] == {"encoder_ids": expected[8]["encoder_ids"][-2:], "decoder_input_ids": [1, 5], "labels": [5, 5]}


def test_write_corpus_refuses_to_overwrite_unless_asked(corpus, char_tokenizer):
    with pytest.raises(DatasetError, match="already exists"):
        write_corpus(corpus, {"train": numbered_examples(3)}, char_tokenizer)
    write_corpus(corpus, {"train": numbered_examples(3)}, char_tokenizer, overwrite=True)
    assert load_corpus_meta(corpus)["splits"] == {"train": 3}
    assert not (corpus / "val.jsonl").exists()


def test_write_corpus_rejects_out_of_range_ids_and_leaves_nothing(tmp_path, char_tokenizer):
    bad = numbered_examples(4) + [{"encoder_ids": [999], "decoder_input_ids": [1], "labels": [2]}]
    with pytest.raises(DatasetError, match=r"train\.jsonl: example 4: 'encoder_ids' token 999"):
        write_corpus(tmp_path / "bad", {"train": bad}, char_tokenizer)
    assert os.listdir(tmp_path) == []


def test_offset_index_is_reused_and_rebuilt_after_the_file_changes(corpus, monkeypatch):
    index_path = corpus / "train.jsonl.idx.npy"
    assert index_path.is_file()  # written with the corpus
    scans = []
    real_scan = line_index._scan_line_bounds
    monkeypatch.setattr(line_index, "_scan_line_bounds", lambda path: scans.append(path) or real_scan(path))

    assert len(CorpusSplit(corpus, "train")) == 37 and scans == []
    index_path.unlink()
    assert len(CorpusSplit(corpus, "train")) == 37 and len(scans) == 1 and index_path.is_file()
    assert len(CorpusSplit(corpus, "train")) == 37 and len(scans) == 1

    extra = {"encoder_ids": [7, 7, 7], "decoder_input_ids": [1], "labels": [2]}
    with open(corpus / "train.jsonl", "a") as file:
        file.write(json.dumps(extra))  # no final newline: the last line still counts
    rebuilt = CorpusSplit(corpus, "train")
    assert len(scans) == 2 and len(rebuilt) == 38 and rebuilt[37] == extra


def test_a_corrupted_line_or_out_of_range_id_names_file_and_line(corpus, char_tokenizer):
    path = corpus / "train.jsonl"
    lines = path.read_text().splitlines()
    lines[2] = '{"encoder_ids": [4, 5'
    lines[5] = json.dumps({"encoder_ids": [4], "decoder_input_ids": [1], "labels": [char_tokenizer.vocab_size]})
    lines[6] = json.dumps({"encoder_ids": [4], "decoder_input_ids": [1, 5], "labels": [5, -100]})
    path.write_text("\n".join(lines) + "\n")
    split = CorpusSplit(corpus, "train")
    with pytest.raises(DatasetError, match=r"train\.jsonl:3: not valid JSON"):
        split[2]
    too_big = char_tokenizer.vocab_size
    with pytest.raises(DatasetError, match=rf"train\.jsonl:6: 'labels' token {too_big} at position 0"):
        split[5]
    assert split[6]["labels"] == [5, -100]  # -100 is allowed in labels only


def test_load_corpus_meta_names_the_file_and_the_problem(corpus):
    with pytest.raises(DatasetError, match=r"test\.jsonl: split not found \(this corpus has: train, val\)"):
        CorpusSplit(corpus, "test")
    meta_path = corpus / "meta.json"
    meta = json.loads(meta_path.read_text())
    del meta["eos_id"]
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(DatasetError, match=r"meta\.json: missing key\(s\): eos_id"):
        load_corpus_meta(corpus)
    meta["eos_id"] = "two"
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(DatasetError, match=r"meta\.json: 'eos_id' must be an integer"):
        load_corpus_meta(corpus)


# --------------------------------------------------------------------------- batch streams


def take(stream, count):
    return [stream.next_batch() for _ in range(count)]


def assert_same_batches(first, second):
    assert len(first) == len(second)
    for one, other in zip(first, second):
        assert one.keys() == other.keys()
        for key in one:
            assert torch.equal(one[key], other[key]), key


def test_batch_stream_is_deterministic_and_covers_each_epoch_once(corpus):
    split = CorpusSplit(corpus, "train")  # 37 examples, batch 8: 4 batches, 5 dropped per epoch
    batches = take(BatchStream(split, 8, pad_id=0, seed=5), 8)
    assert_same_batches(batches, take(BatchStream(split, 8, pad_id=0, seed=5), 8))
    other_seed = take(BatchStream(split, 8, pad_id=0, seed=6), 8)
    assert not all(torch.equal(a["encoder_ids"], b["encoder_ids"]) for a, b in zip(batches, other_seed))
    first_epoch = [example_key(batch, row) for batch in batches[:4] for row in range(8)]
    assert len(set(first_epoch)) == 32  # distinct examples, none repeated within an epoch
    stream = BatchStream(split, 8, pad_id=0, seed=5)
    take(stream, 4)
    assert (stream.epoch, stream.position, stream.step) == (1, 0, 4)


def test_batch_stream_wraps_into_the_next_epoch_when_the_split_is_smaller_than_a_batch():
    split = ListSplit(numbered_examples(3))
    stream = BatchStream(split, 4, pad_id=0, seed=0, shuffle=False)
    keys = [[example_key(batch, row) for row in range(4)] for batch in take(stream, 3)]
    flat = [key for batch in keys for key in batch]
    expected = [example_key(pad_batch([example], 0), 0) for example in numbered_examples(3)]
    assert flat == expected * 4
    assert (stream.epoch, stream.position) == (4, 0)


def test_resumed_stream_yields_the_batches_of_the_uninterrupted_run(corpus):
    split = CorpusSplit(corpus, "train")
    uninterrupted = take(BatchStream(split, 8, pad_id=0, seed=2), 11)
    first = BatchStream(split, 8, pad_id=0, seed=2)
    take(first, 6)
    state = json.loads(json.dumps(first.state_dict()))  # as a checkpoint would store it
    resumed = BatchStream(split, 8, pad_id=0, seed=2)
    resumed.load_state_dict(state)
    assert_same_batches(take(resumed, 5), uninterrupted[6:])
    with pytest.raises(ValueError, match="seed=2"):
        BatchStream(split, 8, pad_id=0, seed=3).load_state_dict(state)


def test_rank_shares_concatenate_to_the_one_rank_global_batch(corpus):
    split = CorpusSplit(corpus, "train")
    whole = take(BatchStream(split, 8, pad_id=0, seed=1), 6)
    shares = [take(BatchStream(split, 8, pad_id=0, seed=1, rank=rank, world_size=2), 6) for rank in range(2)]
    for step, batch in enumerate(whole):
        keys = [example_key(batch, row) for row in range(8)]
        shared = [example_key(share[step], row) for share in shares for row in range(4)]
        assert shared == keys
    with pytest.raises(ValueError, match="not divisible by world size 3"):
        BatchStream(split, 8, pad_id=0, seed=1, world_size=3)


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_worker_processes_hand_out_the_stream_in_order_and_resume_where_it_was_handed_out(corpus, start_method):
    split = CorpusSplit(corpus, "train")
    uninterrupted = take(BatchStream(split, 6, pad_id=0, seed=9), 14)
    loader = BatchLoader(BatchStream(split, 6, pad_id=0, seed=9), workers=2, start_method=start_method)
    assert_same_batches(take(loader, 5), uninterrupted[:5])
    state = json.loads(json.dumps(loader.state_dict()))  # the workers have prepared more than 5 by now
    loader.close()
    resumed = BatchLoader(BatchStream(split, 6, pad_id=0, seed=9), workers=1, start_method=start_method)
    resumed.load_state_dict(state)
    assert_same_batches(take(resumed, 9), uninterrupted[5:])
    resumed.close()


def test_eval_batches_cover_each_example_once_across_ranks(corpus, char_tokenizer):
    split = CorpusSplit(corpus, "train")
    expected = [example_key(pad_batch([split[i]], 0), 0) for i in range(len(split))]
    single = [(batch, valid) for batch, valid in eval_batches(split, 8, pad_id=0)]
    assert [example_key(batch, row) for batch, valid in single for row in range(valid)] == expected

    per_rank = [list(eval_batches(split, 8, pad_id=0, rank=rank, world_size=2)) for rank in range(2)]
    # Collectives need every rank to yield as many batches, with as many rows.
    rows_per_batch = [[batch["labels"].shape[0] for batch, _ in batches] for batches in per_rank]
    assert rows_per_batch[0] == rows_per_batch[1]
    seen = []
    for rank_batches in per_rank:
        for batch, valid in rank_batches:
            seen += [example_key(batch, row) for row in range(valid)]
            assert (batch["labels"][valid:] == -100).all() and batch["encoder_mask"][valid:].any(dim=1).all()
    assert sorted(seen) == sorted(expected)

    limited = list(eval_batches(split, 4, pad_id=0, max_examples=10))
    assert sum(valid for _, valid in limited) == 10


def test_offset_index_is_exact_when_lines_straddle_scan_chunks(tmp_path, monkeypatch):
    path = tmp_path / "lines.jsonl"
    path.write_bytes(b"ab\n\ncdefghij\nklmnopqrstuv\nw")
    monkeypatch.setattr(line_index, "_INDEX_SCAN_BYTES", 5)
    assert line_index.line_offsets(path).tolist() == [0, 3, 4, 13, 26, 27]


def test_a_bpe_corpus_stores_its_tokenizer_and_reloads_it(tmp_path):
    tokenizer = train_bpe_tokenizer(CORPUS_TEXT, vocab_size=300)
    pairs = [(sentence[:20], sentence[20:40]) for sentence in CORPUS_TEXT[:5]]
    examples = [make_text_example(prompt, answer, tokenizer, 64) for prompt, answer in pairs]
    write_corpus(tmp_path / "bpe", {"train": examples, "val": examples[:2]}, tokenizer)
    loaded = load_corpus_tokenizer(tmp_path / "bpe")
    assert isinstance(loaded, BPETokenizer)
    row = CorpusSplit(tmp_path / "bpe", "train")[3]
    assert (loaded.decode(row["encoder_ids"]), loaded.decode(cut_at_eos(row["labels"], loaded.eos_id))) == pairs[3]


def test_an_empty_split_is_written_and_read_as_empty(tmp_path, char_tokenizer):
    write_corpus(tmp_path / "c", {"train": numbered_examples(2), "val": []}, char_tokenizer)
    assert len(CorpusSplit(tmp_path / "c", "val")) == 0
    assert list(eval_batches(CorpusSplit(tmp_path / "c", "val"), 4, pad_id=0)) == []
    with pytest.raises(ValueError, match="empty split"):
        BatchStream(CorpusSplit(tmp_path / "c", "val"), 4, pad_id=0, seed=0)



@pytest.mark.cli
def test_prepare_arithmetic_with_its_defaults_builds_what_training_builds(tmp_path):
    # The README's command as printed (its defaults once asked for 22,000 of the 20,000 problems).
    from cli_helpers import hrm

    from hrmkit.config import load_run_config
    from hrmkit.lm.task import _build_or_fail
    prepared, built = tmp_path / "prepared", tmp_path / "built"
    hrm("prepare", "arithmetic", "--digits", "2", "--out", str(prepared))
    _build_or_fail(load_run_config("arithmetic", {"data": {"path": str(built)}}), rank=0)
    # The .idx.npy offset indexes are caches keyed to the file's stat, not content.
    files = sorted(p.relative_to(built) for p in built.rglob("*") if p.is_file() and not p.name.endswith(".idx.npy"))
    assert files == sorted(p.relative_to(prepared) for p in prepared.rglob("*") if p.is_file() and not p.name.endswith(".idx.npy"))
    for name in files:
        assert (built / name).read_bytes() == (prepared / name).read_bytes(), name
