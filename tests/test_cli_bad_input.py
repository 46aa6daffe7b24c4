"""Bad input from the command line: one line on stderr naming the real cause, exit code 2, no traceback."""

import argparse
import json

import pytest
from cli_helpers import MBPP_DIR, TINY_MODEL, hrm, hrm_here, tiny_code_checkpoint

from hrmkit.cli import build_parser
from hrmkit.lm.arithmetic import build_arithmetic_corpus

MBPP = MBPP_DIR / "mbpp.jsonl"
needs_mbpp = pytest.mark.skipif(not MBPP.exists(), reason=f"MBPP not at {MBPP_DIR}")
BAD_DEVICE = "error: device must be auto, cpu, cuda[:N] or mps, got 'nosuch'"


def one_line_error(result) -> str:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def arithmetic_corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus") / "arithmetic"
    build_arithmetic_corpus(root, digits=1, train=20, val=5, test=5)
    return root


# -- 1. a device torch does not know ------------------------------------------------------------------
@pytest.mark.cli
@pytest.mark.parametrize("verb", ["eval", "generate", "viz", "eval code"])
def test_a_bad_device_is_one_line_in_every_verb(verb, trained_sudoku_run, sudoku4, tmp_path):
    args = {
        "eval": ["eval", "--checkpoint", trained_sudoku_run, "--data", sudoku4, "--out", tmp_path / "e"],
        "generate": ["generate", "--checkpoint", trained_sudoku_run, "--prompt", "What is 1 + 1?"],
        "viz": ["viz", trained_sudoku_run, "--out", tmp_path / "z.html"],
        "eval code": ["eval", "code", "--task", "mbpp", "--data", MBPP, "--checkpoint", trained_sudoku_run,
                      "--limit", "1", "--n", "1", "--pass-k", "1", "--out", tmp_path / "x.jsonl"],
    }[verb]
    if verb == "eval code" and not MBPP.exists():
        pytest.skip(f"MBPP not at {MBPP_DIR}")
    assert one_line_error(hrm_here(*args, "--device", "nosuch", check=False)) == BAD_DEVICE
    assert list(tmp_path.iterdir()) == []  # nothing half-written


@pytest.mark.cli
def test_a_bad_device_is_one_line_in_a_real_process(trained_sudoku_run, sudoku4):
    assert one_line_error(hrm("eval", "--checkpoint", str(trained_sudoku_run), "--data", str(sudoku4),
                              "--device", "nosuch", check=False)) == BAD_DEVICE


def test_pick_device_and_the_train_config_judge_a_device_name_alike():
    from hrmkit.config import TrainConfig
    from hrmkit.train.distributed import pick_device
    for name in ("nosuch", "cuda:x", "cpu:-1"):
        with pytest.raises(ValueError) as raised:
            pick_device(name)
        assert TrainConfig(device=name).validate() == [str(raised.value)]
    assert str(pick_device("cpu")) == "cpu" and TrainConfig(device="cpu").validate() == []


def test_a_cuda_device_this_machine_lacks_is_named_as_asked(monkeypatch):
    """cuda:1 was reported as plain 'cuda', and an index past the last GPU reached torch unchecked."""
    import torch

    from hrmkit.train.distributed import pick_device
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="device 'cuda:1' was requested but torch sees no CUDA device"):
        pick_device("cuda:1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(ValueError, match=r"device 'cuda:2' was requested but torch sees 2 CUDA device\(s\), cuda:0 to cuda:1"):
        pick_device("cuda:2")


# -- 2. zero is not "the default" -------------------------------------------------------------------
@pytest.mark.cli
@pytest.mark.parametrize("flag", ["--batch", "--steps"])
def test_bench_refuses_a_zero_batch_or_step_count(flag, capsys):
    with pytest.raises(SystemExit) as exited:  # before: --batch 0 ran at the config's batch, --steps 0 timed nothing
        build_parser().parse_known_args(["bench", "eval", "--config", "quickstart_sudoku4", flag, "0"])
    assert exited.value.code == 2
    assert capsys.readouterr().err == f"error: hrm bench: argument {flag}: must be >= 1, got 0 (see hrm bench --help)\n"


@pytest.mark.cli
@pytest.mark.parametrize(("flags", "message"), [
    (["--prompt-tokens", "0"], "argument --prompt-tokens: must be >= 1, got 0"),  # a traceback before
    (["--new-tokens", "8,a"], "argument --new-tokens: expected an integer, got 'a'"),  # named no flag
    (["--new-tokens", "8,-1"], "argument --new-tokens: must be >= 1, got -1"),
])
def test_bench_generate_refuses_bad_token_counts_naming_the_flag(flags, message, capsys):
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_known_args(["bench", "generate", "--config", "arithmetic", *flags])
    assert exited.value.code == 2
    assert capsys.readouterr().err == f"error: hrm bench: {message} (see hrm bench --help)\n"


@pytest.mark.cli
def test_bench_generate_of_a_puzzle_config_says_it_times_hrm_lm():
    result = hrm("bench", "generate", "--config", "quickstart_sudoku4", "--new-tokens", "4", check=False)
    assert result.returncode == 2
    assert result.stderr.startswith("error: bench generate times HRM-LM decoding: quickstart_sudoku4 is a puzzle "
                                    "config") and result.stderr.count("\n") == 1


@pytest.mark.cli
@needs_mbpp
def test_eval_code_refuses_max_new_tokens_zero(tmp_path):
    result = hrm_here("eval", "code", "--task", "mbpp", "--data", MBPP, "--references", "--limit", "1",
                      "--max-new-tokens", "0", "--out", tmp_path / "x.jsonl", check=False)
    assert one_line_error(result) == "error: --max-new-tokens must be >= 1 (leave it out for the model's seq_len + 1)"
    assert list(tmp_path.iterdir()) == []


# -- 3. messages that name the real cause -------------------------------------------------------------
@pytest.mark.cli
def test_a_seq2seq_preset_on_a_puzzle_dataset_says_so_and_leaves_it_alone(sudoku4, tmp_path):
    before = sorted(path.name for path in sudoku4.iterdir())
    result = hrm_here("train", "--config", "arithmetic", f"data.path={sudoku4}", f"runs_dir={tmp_path}",
                      "run_name=w2", "train.steps=1", check=False)
    line = one_line_error(result)
    assert f"{sudoku4}: is a puzzle dataset" in line and "not an HRM-LM corpus" in line, line
    assert "--force" not in line and "overwrite" not in line, line
    assert sorted(path.name for path in sudoku4.iterdir()) == before


def test_the_arithmetic_corpus_is_built_in_an_empty_folder_but_not_over_other_files(tmp_path):
    from hrmkit.config import load_run_config
    from hrmkit.files import DatasetError
    from hrmkit.lm.task import Seq2SeqData

    def data_at(path):
        cfg = load_run_config("arithmetic", {"data": {"path": str(path), "arithmetic_train": 20, "arithmetic_val": 5}})
        return Seq2SeqData.from_corpus(cfg, 0)

    (tmp_path / "empty").mkdir()
    assert len(data_at(tmp_path / "empty").train) == 20
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("mine\n")
    with pytest.raises(DatasetError, match="not an HRM-LM corpus"):
        data_at(tmp_path / "notes")
    assert [path.name for path in (tmp_path / "notes").iterdir()] == ["todo.txt"]


@pytest.mark.cli
def test_a_puzzle_checkpoint_evaluated_on_a_corpus_names_the_corpus(trained_sudoku_run, arithmetic_corpus, tmp_path):
    result = hrm_here("eval", "--checkpoint", trained_sudoku_run, "--data", arithmetic_corpus,
                      "--out", tmp_path / "e", check=False)
    line = one_line_error(result)  # before: ".../test: split not found (this dataset has: none)"
    assert f"{arithmetic_corpus}: is an HRM-LM corpus" in line and "not a puzzle dataset" in line, line


@pytest.mark.cli
def test_a_puzzle_config_trained_on_a_corpus_names_the_corpus(arithmetic_corpus, tmp_path):
    result = hrm_here("train", "--config", "quickstart_sudoku4", f"data.path={arithmetic_corpus}",
                      f"runs_dir={tmp_path}", "run_name=p2", "train.steps=1", check=False)
    line = one_line_error(result)
    assert f"{arithmetic_corpus}: is an HRM-LM corpus" in line and "not a puzzle dataset" in line, line


@pytest.mark.cli
def test_eval_code_on_a_folder_says_it_is_a_folder(sudoku4):
    result = hrm_here("eval", "code", "--task", "mbpp", "--data", sudoku4, "--references", check=False)
    assert one_line_error(result) == f"error: {sudoku4}: is a folder, not an MBPP file (mbpp.jsonl or sanitized-mbpp.json)"


@pytest.mark.cli
def test_eval_code_evalplus_on_a_folder_says_it_is_a_folder(tmp_path):
    result = hrm_here("eval", "code", "--task", "evalplus", "--data", tmp_path, "--references", check=False)
    assert one_line_error(result) == f"error: {tmp_path}: is a folder, not an EvalPlus .jsonl file (MBPP+ or HumanEval+)"


# -- 4. hrm data check on a path that is not there ------------------------------------------------------
@pytest.mark.cli
def test_data_check_of_a_missing_path_is_one_line(tmp_path):
    result = hrm_here("data", "check", tmp_path / "nosuch", "--json", tmp_path / "report.json", check=False)
    assert one_line_error(result) == f"error: {tmp_path / 'nosuch'}: no such dataset folder"
    assert result.stdout == "" and not (tmp_path / "report.json").exists()
    (tmp_path / "file").write_text("x")
    assert one_line_error(hrm_here("data", "check", tmp_path / "file", check=False)) == \
        f"error: {tmp_path / 'file'}: is a file, not a dataset folder"


@pytest.mark.cli
def test_data_check_of_a_real_dataset_that_fails_keeps_its_report(arithmetic_corpus):
    result = hrm_here("data", "check", arithmetic_corpus, check=False)
    assert result.returncode == 1 and "FAIL" in result.stdout


# -- 5. hrm info describes what the preset builds -------------------------------------------------------
@pytest.mark.cli
@pytest.mark.parametrize("preset, core", [
    ("mbpp_baseline", "no recursive core"),
    ("mbpp", "core hrm: layers H 1 L 1, cycles H 2 L 2"),
])
def test_info_of_a_seq2seq_preset_describes_its_core(preset, core, tmp_path, monkeypatch, arithmetic_corpus):
    corpus = tmp_path / "data" / "mbpp"  # where the preset reads its shapes from
    corpus.mkdir(parents=True)
    (corpus / "meta.json").write_text((arithmetic_corpus / "meta.json").read_text())
    monkeypatch.chdir(tmp_path)
    first = hrm_here("info", "--config", preset).stdout.splitlines()[0]
    vocab = json.loads((corpus / "meta.json").read_text())["vocab_size"]
    assert first.startswith(f"{preset}: seq2seq (HRM-LM) | hidden 256 | encoder ") and core in first, first
    assert f"vocab {vocab}" in first
    if preset == "mbpp_baseline":
        assert "cycles" not in first and "layers H" not in first, first


# -- 6. output folders and --help -------------------------------------------------------------------
@pytest.mark.cli
def test_bench_json_creates_its_folder_as_the_other_verbs_outputs_do(tmp_path):
    out = tmp_path / "new" / "dir" / "bench.json"
    hrm_here("bench", "eval", "--config", "quickstart_sudoku4", "model.vocab_size=6", "model.seq_len=16",
             "model.hidden_size=16", "model.L_layers=1", "model.halt_max_steps=1", "--precision", "fp32",
             "--steps", "1", "--warmup", "0", "--batch", "2", "--threads", "1", "--json", out)
    assert json.loads(out.read_text())


# Every verb that writes an output named on the command line, with that output (OUT) already there
# (hrm data prepare is not one: it reuses the finished stages of its --out).
_WRITERS = {
    "prepare sudoku": ["prepare", "sudoku", "--size", "4", "--train", "5", "--test", "2", "--out", "OUT"],
    "prepare arithmetic": ["prepare", "arithmetic", "--digits", "1", "--out", "OUT"],
    "data prepare-language": ["data", "prepare-language", "--source", "SRC", "--out", "OUT"],
    "data normalize-qa": ["data", "normalize-qa", "--source", "SRC", "--out", "OUT", "--question-field", "q",
                          "--answer-field", "a"],
    "data chunk": ["data", "chunk", "--source", "SRC", "--out", "OUT", "--tokenizer", "SRC",
                   "--target-length", "16"],
    "data merge": ["data", "merge", "--batches", "SRC", "--out", "OUT"],
    "convert": ["convert", "--checkpoint", "SRC", "--out", "OUT"],
}


@pytest.mark.parametrize("verb", sorted(_WRITERS))
def test_every_writer_refuses_an_existing_output_in_the_same_words_before_any_work(verb, tmp_path):
    out, source = tmp_path / "taken", tmp_path / "source"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    source.mkdir()
    args = [{"OUT": out, "SRC": source}.get(arg, arg) for arg in _WRITERS[verb]]
    assert one_line_error(hrm_here(*args, check=False)) == f"error: {out}: already exists; remove it or pass --force"
    assert [path.name for path in out.iterdir()] == ["keep.txt"] and (out / "keep.txt").read_text() == "mine"


def _every_action(parser: argparse.ArgumentParser, name: str):
    """(verb, action) for every flag of every verb, `hrm eval code` (parsed on its own) included."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for verb, sub in action.choices.items():
                yield from _every_action(sub, f"{name} {verb}")
        elif not isinstance(action, argparse._HelpAction):
            yield name, action


def _all_flags():
    from hrmkit.cli.code_eval import add_code_eval_parser
    from hrmkit.cli.common import OneLineParser
    code = OneLineParser(prog="hrm eval code")
    add_code_eval_parser(code)
    return [*_every_action(build_parser(), "hrm"), *_every_action(code, "hrm eval code")]


@pytest.mark.cli
def test_every_flag_has_help_text():
    missing = [f"{verb} {'/'.join(action.option_strings) or action.dest}" for verb, action in _all_flags()
               if not action.help]
    assert missing == []


def test_where_to_write_and_what_to_read_have_one_spelling_in_every_verb():
    """--out names every output, file or folder; --source every input file or folder."""
    synonyms = {"--dest", "--output", "--output-dir", "--output_dir", "--input", "--in"}
    found = [f"{verb} {flag}" for verb, action in _all_flags() for flag in action.option_strings if flag in synonyms]
    assert found == []


@pytest.mark.parametrize("verb", ["quickstart", "info"])
def test_an_unknown_flag_points_at_the_verbs_own_help(verb):
    line = one_line_error(hrm(verb, "--bogus", check=False))
    assert line == f"error: hrm {verb}: unrecognized arguments: --bogus (see hrm {verb} --help)"


def test_a_checkpoint_evaluated_on_a_dataset_with_more_puzzle_identifiers_names_them(trained_sudoku_run, sudoku4,
                                                                                       tmp_path):
    """A model's puzzle-embedding table has a row per identifier of the data it trained on; another
    dataset's identifiers (ARC trained on 10 tasks, evaluated on 400) ended in an IndexError traceback."""
    import shutil

    import numpy as np
    other = shutil.copytree(sudoku4, tmp_path / "more_puzzles")
    meta = json.loads((other / "test" / "dataset.json").read_text())
    meta["num_puzzle_identifiers"] = 5
    (other / "test" / "dataset.json").write_text(json.dumps(meta))
    (other / "identifiers.json").write_text(json.dumps(["<blank>", "a", "b", "c", "d"]))
    ids = np.load(other / "test" / "all__puzzle_identifiers.npy")
    np.save(other / "test" / "all__puzzle_identifiers.npy", np.full_like(ids, 4))
    for verb in (["eval", "--checkpoint", trained_sudoku_run, "--data", other, "--out", tmp_path / "eval"],
                 ["viz", trained_sudoku_run, "--dataset", other, "--out", tmp_path / "page.html"]):
        line = one_line_error(hrm_here(*verb, check=False))
        assert "num_puzzle_identifiers" in line and "5" in line, line
    assert not (tmp_path / "page.html").exists()


def test_select_verified_without_guesses_to_choose_among_is_refused(trained_sudoku_run, sudoku4, tmp_path):
    """It was accepted and did nothing: no verified column, no word."""
    line = one_line_error(hrm_here("eval", "--checkpoint", trained_sudoku_run, "--data", sudoku4, "--select", "verified",
                                   "--out", tmp_path / "eval", check=False))
    assert "--select verified" in line and "--tta" in line
    assert not (tmp_path / "eval").exists()


# -- the language-data and code verbs ---------------------------------------------------------------
@pytest.mark.parametrize("counts", [["--train", "-5"], ["--train", "0"], ["--val", "-3"], ["--test", "-2"]])
def test_prepare_arithmetic_refuses_a_negative_or_empty_split_and_writes_nothing(counts, tmp_path):
    """A negative count cut the drawn problems from the end: --train -5 wrote 1,990 training problems."""
    line = one_line_error(hrm_here("prepare", "arithmetic", *counts, "--out", tmp_path / "a", check=False))
    assert "train >= 1 and val, test >= 0" in line
    assert not (tmp_path / "a").exists()


@needs_mbpp
@pytest.mark.cli
@pytest.mark.parametrize("verb", ["eval code", "generate"])
def test_a_puzzle_checkpoint_given_to_a_language_verb_is_named_as_one(verb, trained_sudoku_run, tmp_path):
    """Both said the checkpoint had no tokenizer beside it; eval code printed its sandbox line first."""
    args = {"eval code": ["eval", "code", "--task", "mbpp", "--data", MBPP, "--checkpoint", trained_sudoku_run,
                          "--limit", "1", "--n", "1", "--pass-k", "1", "--out", tmp_path / "x.jsonl"],
            "generate": ["generate", "--checkpoint", trained_sudoku_run, "--prompt", "What is 1 + 1?"]}[verb]
    result = hrm(*args, check=False)
    assert "is a puzzle model" in one_line_error(result) and not result.stdout


@pytest.mark.cli
def test_a_tokenizer_of_another_corpus_beside_a_language_model_is_refused(tmp_path):
    """A 30-token tokenizer beside a model of another vocabulary generated noise, exit 0."""
    from hrmkit.lm.tokenizers import SimpleTokenizer
    checkpoint = tiny_code_checkpoint(tmp_path / "run", precision="fp32")
    SimpleTokenizer.for_texts(["abcdefghijklmnopqrstuvwxyz"]).save(tmp_path / "run" / "tokenizer.json")
    line = one_line_error(hrm("generate", "--checkpoint", checkpoint, "--prompt", "hi", check=False))
    assert "it is not the tokenizer of this model's corpus" in line


def test_a_missing_corpus_points_at_every_corpus_builder_and_not_at_the_arithmetic_one(tmp_path):
    """`hrm train --config mbpp` without data/mbpp suggested data.build=arithmetic, which would train the
    MBPP recipe on arithmetic."""
    line = one_line_error(hrm_here("train", "--config", "mbpp", f"data.path={tmp_path / 'none'}", check=False))
    assert "hrm prepare mbpp" in line and "data.build" not in line


def test_a_config_file_not_named_yaml_is_told_so_and_not_called_missing(tmp_path):
    config = tmp_path / "my_config"
    config.write_text("run_name: x\n")
    line = one_line_error(hrm_here("train", "--config", str(config), check=False))
    assert "ends in .yaml or .yml" in line


@pytest.mark.cli
def test_an_evaluation_split_the_data_lacks_is_refused_and_an_empty_one_trains_without(arithmetic_corpus, sudoku4,
                                                                                       tmp_path):
    """A typo in data.eval_split (or a corpus without that split) trained without ever evaluating, and the
    last line named a best-model/ folder that was never written."""
    runs = [f"runs_dir={tmp_path}", "train.steps=2", "train.progress=false"]
    corpus = ["train", "--config", "arithmetic", f"data.path={arithmetic_corpus}", *runs]
    line = one_line_error(hrm_here(*corpus, "data.eval_split=vall", check=False))
    assert "has no 'vall' split to evaluate on (it has: test, train, val)" in line
    puzzles = ["train", "--config", "quickstart_sudoku4", f"data.path={sudoku4}", *runs, *TINY_MODEL]
    line = one_line_error(hrm_here(*puzzles, "data.eval_split=val", check=False))
    assert "has no 'val' split to evaluate on (it has: test, train)" in line
    trained = hrm_here(*corpus, "data.eval_split=", "run_name=no_eval")
    assert "best-model" not in trained.stdout and not (tmp_path / "no_eval" / "best-model").exists()


@pytest.mark.cli
def test_an_output_file_named_as_a_folder_or_a_folder_named_as_a_file_is_one_line(sudoku4, trained_sudoku_run,
                                                                                   tmp_path):
    """A --json / --out that names an existing folder ended, after all the work, in an IsADirectoryError
    traceback; an --out folder that names a file said only '[Errno 17] File exists'."""
    folder, file = tmp_path / "a_folder", tmp_path / "a_file"
    folder.mkdir()
    file.write_text("keep me")
    for args in (["bench", "train", "--config", "quickstart_sudoku4", "model.vocab_size=6", "model.seq_len=16",
                  "--steps", "1", "--json", str(folder)],
                 ["data", "check", str(sudoku4), "--json", str(folder)],
                 ["viz", "--dataset", str(sudoku4), "--out", str(folder)]):
        assert one_line_error(hrm(*args, check=False)) == f"error: {folder} is a folder; give the name of the file to write"
    for args in (["report", str(trained_sudoku_run), "--out", str(file)],
                 ["eval", "--checkpoint", str(trained_sudoku_run), "--data", str(sudoku4), "--out", str(file)]):
        assert one_line_error(hrm(*args, check=False)) == f"error: {file} is a file; give the name of a folder to write into"
    assert file.read_text() == "keep me" and not list(folder.iterdir())


@pytest.mark.cli
@pytest.mark.parametrize(("override", "message"), [
    ("train.log_steps=0", "train: log_steps must be >= 1, got 0"),  # a ZeroDivisionError traceback after writing the run
    ("train.grad_clip=-1", "train: grad_clip must be >= 0"),  # below 0 each of these was taken as 0 (or as 'all')
    ("train.checkpoint_limit=-1", "train: checkpoint_limit must be >= 0"),
    ("train.eval_batch_size=-1", "train: eval_batch_size must be >= 0"),
    ("train.eval_loss_patience=2", "train.eval_loss_patience watches the validation loss"),  # never stopped a puzzle run
    ("train.depth_schedule=[[0.5,5,9]]", "train.depth_schedule: stages [(5, 9)] are deeper than the model's"),
])
def test_training_values_that_would_be_ignored_or_crash_are_one_line_before_the_run_starts(sudoku4, tmp_path, override,
                                                                                           message, capsys):
    from hrmkit.cli import main
    assert main(["train", "--config", "quickstart_sudoku4", f"data.path={sudoku4}", f"runs_dir={tmp_path}",
                 "train.steps=2", override]) == 2
    assert capsys.readouterr().err.startswith(f"error: {message}")
    assert not list(tmp_path.iterdir())


def test_a_config_path_that_is_not_there_is_not_read_as_the_preset_of_its_name(tmp_path, capsys):
    """myconfig/quickstart_sudoku4.yaml (a typo for the user's edited copy) trained the shipped preset."""
    from hrmkit.cli import main
    assert main(["info", "--config", str(tmp_path / "myconfig" / "quickstart_sudoku4.yaml")]) == 2
    assert capsys.readouterr().err == f"error: config file not found: {tmp_path / 'myconfig' / 'quickstart_sudoku4.yaml'}\n"


@pytest.mark.cli
def test_resuming_with_another_optimizer_or_a_broken_config_yaml_is_one_line(sudoku4, tmp_path, capsys):
    """Another train.optimizer on resume ended in a traceback at the first step, after config.yaml had been
    rewritten; a finished run whose config.yaml was edited into invalid YAML ended in a traceback."""
    from hrmkit.cli import main
    run = ["train", "--config", "quickstart_sudoku4", f"data.path={sudoku4}", f"runs_dir={tmp_path}", "run_name=r",
           "train.progress=false", *TINY_MODEL]
    assert main([*run, "train.steps=2"]) == 0
    saved = (tmp_path / "r" / "config.yaml").read_text()
    capsys.readouterr()
    assert main([*run, "train.steps=4", "train.optimizer=adam_atan2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "was trained with AdamW, not AdamATan2" in err and err.count("\n") == 1
    assert (tmp_path / "r" / "config.yaml").read_text() == saved
    (tmp_path / "r" / "config.yaml").write_text("train: [unclosed\n")
    assert main([*run, "train.steps=2"]) == 0
    assert "is not a YAML mapping of settings" in capsys.readouterr().out


@pytest.mark.cli
@pytest.mark.parametrize(("override", "line"), [
    ("train.lr=inf", "error: train.lr: expected a finite float, got 'inf'"),
    ("train.grad_clip=nan", "error: train.grad_clip: expected a finite float, got 'nan'"),
    ("model.rope_theta=0", "error: model: rope_theta and rms_norm_eps must be > 0"),
    ("run_name=../elsewhere", "error: run_name must be one folder name (no '/', '..' or surrounding spaces), got "
                              "'../elsewhere'"),
    ("train.optimizer_kwargs={lr: 10}", "error: train: optimizer_kwargs: lr is train.lr; set it there"),
])
def test_settings_that_trained_to_nan_or_elsewhere_or_were_silently_overridden_are_refused(override, line, sudoku4,
                                                                                          tmp_path):
    """Each of these trained and exited 0 (a user audit): lr=inf and rope_theta=0 to a NaN loss, grad_clip=nan with
    clipping off, run_name=../x into a folder outside runs_dir, optimizer_kwargs' lr over train.lr while
    config.yaml said train.lr."""
    result = hrm_here("train", "--config", "quickstart_sudoku4", f"data.path={sudoku4}", f"runs_dir={tmp_path / 'runs'}",
                      "train.steps=1", *TINY_MODEL, override, check=False)
    assert one_line_error(result) == line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.cli
def test_a_field_given_as_a_guide_flag_and_as_an_override_is_refused(sudoku4, tmp_path):
    """--steps=abc train.steps=2 trained 2 steps and exited 0: the override won whatever the order, and the
    flag's value was never checked (a user audit)."""
    result = hrm_here("train", "--config", "quickstart_sudoku4", f"data.path={sudoku4}", f"runs_dir={tmp_path / 'runs'}",
                      "--steps=abc", "train.steps=2", *TINY_MODEL, check=False)
    assert one_line_error(result) == "error: train.steps is given twice, as --steps and as an override; give it once"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.cli
def test_guide_flags_take_dashes_as_run_name_does(sudoku4, tmp_path):
    """--run-name worked and --batch-size was 'unknown key batch_size' with no hint."""
    common = ["train", "--config", "quickstart_sudoku4", f"data.path={sudoku4}", f"runs_dir={tmp_path}", "--steps", "1",
              *TINY_MODEL[:-3], "train.progress=false"]
    hrm_here(*common, "--run-name", "dashed", "--batch-size", "8")
    hrm_here(*common, "--run_name", "underscored", "--batch_size", "8")
    for run in ("dashed", "underscored"):
        assert "global_batch_size: 8" in (tmp_path / run / "config.yaml").read_text()


@pytest.mark.cli
def test_a_run_evaluated_on_the_split_it_trains_on_does_not_call_its_score_held_out(sudoku4, tmp_path):
    result = hrm_here("train", "--config", "quickstart_sudoku4", f"data.path={sudoku4}", f"runs_dir={tmp_path}",
                      "train.steps=1", "data.eval_split=train", *TINY_MODEL)
    assert "training-split (train, not held-out) exact accuracy" in result.stdout and "held-out exact" not in result.stdout
