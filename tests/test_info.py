"""``hrm info``, as a user runs it: a preset's parameter count with key.sub=value overrides, and
options that would do nothing refused in one line."""

import pytest
from cli_helpers import hrm

pytestmark = pytest.mark.cli


def refused(*args) -> str:
    """The one ``error: `` line (exit 2, no traceback) that ``hrm ARGS`` ends with."""
    result = hrm(*args, check=False)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_overrides_give_a_preset_its_shapes_and_settings(tmp_path):
    result = hrm("info", "--config", "quickstart_sudoku4", f"data.path={tmp_path / 'none'}", "model.vocab_size=6",
                 "model.seq_len=16", "model.hidden_size=32")
    assert "| hidden 32 |" in result.stdout and "vocab 6 seq 16" in result.stdout, result.stdout
    assert "parameters: " in result.stdout


def test_data_path_reads_the_shapes_from_a_dataset(sudoku4):
    result = hrm("info", "--config", "quickstart_sudoku4", f"data.path={sudoku4}")
    assert "vocab 6 seq 16" in result.stdout, result.stdout


def test_a_preset_without_its_dataset_says_which_overrides_count_its_parameters(tmp_path):
    line = refused("info", "--config", "quickstart_sudoku4", f"data.path={tmp_path / 'none'}")
    assert "give data.path=DIR" in line and "model.vocab_size=N model.seq_len=N" in line, line


@pytest.mark.parametrize("option", [["--data", "data/sudoku4"], ["--fields"], ["--names"]])
def test_overrides_without_config_are_refused(option):
    line = refused("info", *option, "model.vocab_size=6")
    assert line == ("error: hrm info: unrecognized arguments: model.vocab_size=6 "
                    "(key.sub=value overrides go with --config) (see hrm info --help)")


@pytest.mark.parametrize("other", [["--data", "data/sudoku4"], ["--fields"], ["--checkpoint", "runs/x"]])
def test_config_and_another_option_are_refused_not_half_ignored(other):
    line = refused("info", "--config", "quickstart_sudoku4", *other)
    assert f"argument {other[0]}: not allowed with argument --config" in line, line


@pytest.mark.cli
def test_info_keeps_a_size_given_by_hand_beside_a_dataset(sudoku4):
    """With one of model.vocab_size / model.seq_len given, both were replaced by the dataset's, and hrm info
    printed the parameter count of another model than the one asked about (a user audit)."""
    from cli_helpers import hrm_here
    printed = hrm_here("info", "--config", "quickstart_sudoku4", f"data.path={sudoku4}", "model.seq_len=20").stdout
    assert "vocab 6 seq 20" in printed.splitlines()[0]
