"""Every `hrm` command in the README parses as written: its verb and flags exist, its config preset
loads and its key=value overrides name real fields (nothing is run; the other tests run the verbs)."""

import re
import shlex
from pathlib import Path

import pytest

from hrmkit.cli import VERBS_WITH_OVERRIDES, build_parser
from hrmkit.cli.code_eval import add_code_eval_parser
from hrmkit.cli.common import OneLineParser
from hrmkit.cli.train import _train_config
from hrmkit.config import load_run_config
from hrmkit.config_base import parse_overrides

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_commands() -> list[list[str]]:
    """The argument lists after `hrm` (or `torchrun ... -m hrmkit`) in the README's bash blocks."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", README.read_text(), re.S):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words[:1] == ["hrm"]:
                commands.append(words[1:])
            elif words[:1] == ["torchrun"] and "hrmkit" in words:
                commands.append(words[words.index("hrmkit") + 1:])
    return commands


COMMANDS = readme_commands()


def test_the_readme_shows_every_verb():
    shown = {argv[0] for argv in COMMANDS}
    assert shown >= {"prepare", "train", "eval", "generate", "info", "convert", "data", "viz", "report", "bench"}


@pytest.mark.parametrize("argv", COMMANDS, ids=[" ".join(argv)[:70] for argv in COMMANDS])
def test_readme_command_parses(argv):
    if argv[:2] == ["eval", "code"]:
        parser = OneLineParser(prog="hrm eval code")
        add_code_eval_parser(parser)
        parser.parse_args(argv[2:])
        return
    args, extra = build_parser().parse_known_args(argv)
    if args.verb not in VERBS_WITH_OVERRIDES:
        assert not extra, f"unknown arguments {extra}"
    elif args.verb == "train":
        _train_config(args, extra)  # the preset, the guide flags and every override, checked together
    else:
        load_run_config(args.config, parse_overrides(extra))
