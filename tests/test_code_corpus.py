"""hrm prepare mbpp: the HRM-LM corpus for code generation, and training + scoring on it end to end."""

import json

import pytest
from cli_helpers import MBPP_DIR

from hrmkit.code.corpus import build_mbpp_corpus, corpus_pairs
from hrmkit.code.data import load_mbpp, render_prompt
from hrmkit.lm.arithmetic import build_arithmetic_corpus
from hrmkit.lm.corpus_format import load_corpus_tokenizer

MBPP = MBPP_DIR / "mbpp.jsonl"
needs_mbpp = pytest.mark.skipif(not MBPP.exists(), reason=f"MBPP not at {MBPP_DIR}")


def hrm(*args):
    from hrmkit.cli import main
    return main([str(arg) for arg in args])


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    if not MBPP.exists():
        pytest.skip(f"MBPP not at {MBPP_DIR}")
    out = tmp_path_factory.mktemp("mbpp") / "corpus"
    build_mbpp_corpus(MBPP, out, prompt_format="plain", vocab_size=1024, max_seq_len=1024)  # nothing dropped
    return out


def test_train_and_val_are_mbpp_train_and_validation_rendered_as_hrm_eval_code_asks(corpus):
    meta = json.loads((corpus / "meta.json").read_text())
    assert meta["splits"] == {"train": 374, "val": 90} and meta["prompt_format"] == "plain"
    train_tasks = load_mbpp(MBPP, "train")
    pairs = list(corpus_pairs(corpus, "train"))
    assert [prompt for prompt, _ in pairs] == [render_prompt(task, "plain") for task in train_tasks]
    assert [answer for _, answer in pairs] == [task.reference.strip() + "\n" for task in train_tasks]


def test_the_code_tokenizer_round_trips_indentation_and_val_is_the_validation_split(corpus):
    tokenizer = load_corpus_tokenizer(corpus)
    for task in load_mbpp(MBPP, "test")[:50]:  # unseen code still encodes and decodes exactly (byte-level)
        assert tokenizer.decode(tokenizer.encode(task.reference)) == task.reference
    assert [answer for _, answer in corpus_pairs(corpus, "val")] == [
        task.reference.strip() + "\n" for task in load_mbpp(MBPP, "validation")]


def test_an_extra_corpus_is_decoded_and_added_to_train(tmp_path):
    if not MBPP.exists():
        pytest.skip(f"MBPP not at {MBPP_DIR}")
    extra = tmp_path / "extra"
    build_arithmetic_corpus(extra, train=20, val=5)  # another tokenizer (characters): decoded, then re-encoded
    out = tmp_path / "corpus"
    meta = build_mbpp_corpus(MBPP, out, vocab_size=1024, max_seq_len=1024, extra_corpora=(extra,))
    assert meta["splits"]["train"] == 374 + 20
    added = list(corpus_pairs(out, "train"))[374:]
    assert added == list(corpus_pairs(extra, "train"))


@needs_mbpp
def test_too_long_examples_are_dropped_and_counted_not_cut(tmp_path):
    meta = build_mbpp_corpus(MBPP, tmp_path / "short", vocab_size=1024, max_seq_len=64)
    dropped = meta["source"]["dropped_longer_than_max_seq_len"]
    assert dropped["train"] > 0 and meta["splits"]["train"] == 374 - dropped["train"]
    assert meta["longest"]["encoder"] <= 64 and meta["longest"]["decoder"] <= 64


@pytest.mark.cli
@needs_mbpp
def test_cli_prepare_train_and_score_with_the_trained_prompt_format(tmp_path, capsys):
    data, runs = tmp_path / "mbpp", tmp_path / "runs"
    assert hrm("prepare", "mbpp", "--data", MBPP, "--out", data, "--prompt-format", "docstring", "--vocab-size", 512) == 0
    assert hrm("prepare", "mbpp", "--data", MBPP, "--out", data) == 2  # exists, no --force
    assert "--force" in capsys.readouterr().err
    tiny = ["model.hidden_size=32", "model.num_heads=2", "model.expansion=2", "model.encoder_layers=1",
            "model.decoder_layers=1", "train.steps=4", "train.eval_interval=4", "train.eval_max_examples=4",
            "train.progress=false", "train.log_steps=2", "model.hrm_gate_warmup_steps=2"]
    assert hrm("train", "--config", "mbpp", "--dataset", data, "--save_dir", runs, "--run_name", "tiny", *tiny) == 0
    checkpoint = runs / "tiny" / "best-model"
    assert (checkpoint / "meta.json").is_file()
    capsys.readouterr()
    assert hrm("eval", "code", "--task", "mbpp", "--data", MBPP, "--checkpoint", checkpoint, "--limit", 2, "--n", 2,
               "--pass-k", 1, 2, "--max-new-tokens", 8, "--device", "cpu", "--workers", 2) == 0
    assert "pass@1 " in capsys.readouterr().out
    summary = json.loads((checkpoint / "code-eval-mbpp-test.summary.json").read_text())
    assert summary["settings"]["prompt_format"] == "docstring"  # auto = as trained, not MBPP's 3-shot default
    assert hrm("eval", "code", "--task", "mbpp", "--data", MBPP, "--checkpoint", checkpoint, "--limit", 1, "--n", 1,
               "--pass-k", 1, "--max-new-tokens", 4, "--prompt-format", "plain", "--out", tmp_path / "plain.jsonl") == 0
    assert "trained on docstring prompts" in capsys.readouterr().err


@needs_mbpp
def test_a_corpus_without_training_examples_is_refused_and_nothing_is_written(tmp_path, capsys):
    """--max-seq-len 8 dropped every example, and the corpus was written with train 0 (exit 0) for
    `hrm train` to refuse."""
    out = tmp_path / "corpus"
    assert hrm("prepare", "mbpp", "--data", MBPP, "--out", out, "--max-seq-len", 8, "--vocab-size", 300) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert "all 374 training examples are longer than max_seq_len 8 tokens (--max-seq-len)" in err
    no_train = tmp_path / "no-train.jsonl"
    no_train.write_text("".join(line + "\n" for line in MBPP.read_text().splitlines()
                                if line.strip() and json.loads(line)["task_id"] <= 600))
    assert hrm("prepare", "mbpp", "--data", no_train, "--out", out) == 2
    assert "holds none of MBPP's training tasks (601-974)" in capsys.readouterr().err
    assert not [path for path in tmp_path.iterdir() if path.name.startswith("corpus")]


def test_an_existing_output_is_refused_naming_the_flag_only(tmp_path, capsys):
    """The message named the Python parameter too: 'pass --force (overwrite=True)'."""
    out = tmp_path / "corpus"
    out.mkdir()
    for kind in (["arithmetic"], ["mbpp", "--data", MBPP]):
        assert hrm("prepare", *kind, "--out", out) == 2
        assert capsys.readouterr().err == f"error: {out}: already exists; remove it or pass --force\n"
