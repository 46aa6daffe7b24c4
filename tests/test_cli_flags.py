"""`hrm prepare <kind>` flags are the builder config's fields: one name, one default, one meaning."""

import dataclasses
import json
from typing import Literal

import pytest

from hrmkit.cli import main
from hrmkit.cli.flags import add_dataclass_flags, dataclass_from_flags, field_docs
from hrmkit.puzzles.arc_dataset import ArcBuildConfig
from hrmkit.puzzles.maze_dataset import MazeBuildConfig
from hrmkit.puzzles.routing_dataset import RoutingBuildConfig
from hrmkit.puzzles.sudoku_dataset import SudokuBuildConfig

BUILDERS = {"sudoku": SudokuBuildConfig, "maze": MazeBuildConfig, "arc": ArcBuildConfig, "routing": RoutingBuildConfig}


@pytest.mark.cli
@pytest.mark.parametrize("kind", BUILDERS)
def test_every_config_field_is_a_flag_with_its_docstring(kind, capsys):
    with pytest.raises(SystemExit):
        main(["prepare", kind, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    docs = field_docs(BUILDERS[kind])
    for field in dataclasses.fields(BUILDERS[kind]):
        assert f"--{field.name.replace('_', '-')}" in text, field.name
        assert docs[field.name][:40] in text, field.name


@pytest.mark.cli
@pytest.mark.parametrize("kind, flags", [
    ("sudoku", ["--size", "9", "--train", "3", "--test", "2"]),
    ("maze", ["--size", "9", "--train", "3", "--test", "2"]),
    ("routing", ["--size", "10", "--train-bases", "2", "--test-bases", "1"]),
])
def test_a_build_without_flags_uses_the_config_defaults(kind, flags, tmp_path, capsys):
    """What the CLI builds by default is what the Python API builds by default."""
    out = tmp_path / kind
    assert main(["prepare", kind, *flags, "--out", str(out)]) == 0
    saved = json.loads((out / "hrmkit_build.json").read_text())["config"]
    given = {flags[i].removeprefix("--").replace("-", "_"): int(flags[i + 1]) for i in range(0, len(flags), 2)}
    expected = dataclasses.asdict(BUILDERS[kind](**given))
    assert saved == json.loads(json.dumps(expected))  # tuples saved as lists


@pytest.mark.cli
def test_a_value_outside_the_choices_is_one_line_and_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["prepare", "sudoku", "--size", "5", "--out", str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "invalid choice: 5" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "s").exists()


@dataclasses.dataclass
class Example:
    """Every kind of field the flags support."""

    count: int = 3
    """How many."""
    ratio: float = 0.5
    """A fraction."""
    name: str | None = None
    """Optional text."""
    mode: Literal["a", "b"] = "a"
    """One of two."""
    names: tuple[str, ...] | str = ("x", "y")
    """A list given as a, b."""
    switch: bool = False
    """Off unless given."""
    on: bool = True
    """On unless --no-on."""


def test_flags_read_back_into_the_dataclass():
    import argparse
    parser = argparse.ArgumentParser()
    add_dataclass_flags(parser, Example)
    assert dataclass_from_flags(Example, parser.parse_args([])) == Example()
    given = parser.parse_args(["--count", "7", "--ratio", "0.25", "--name", "n", "--mode", "b", "--names", "p, q",
                               "--switch", "--no-on"])
    assert dataclass_from_flags(Example, given) == Example(7, 0.25, "n", "b", ("p", "q"), True, False)
    with pytest.raises(SystemExit):
        parser.parse_args(["--count", "many"])


def test_building_the_command_line_imports_no_torch():
    """`hrm --help` and every verb's parser imported torch (a second of start-up, and a Ctrl-C in that second
    printed a traceback) only to read two default numbers of the MBPP corpus and the ignored-label id."""
    import subprocess
    import sys
    probe = ("import sys; from hrmkit.cli import build_parser; build_parser(); "
             "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"


def test_ctrl_c_while_the_command_starts_is_one_line(monkeypatch, capsys):
    import hrmkit.cli

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(hrmkit.cli, "build_parser", interrupted)
    assert hrmkit.cli.main(["report", "runs/x"]) == 130
    assert capsys.readouterr().err == "interrupted: the command stopped before it started\n"
