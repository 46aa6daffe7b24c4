"""``hrm <verb>``: one module per verb group, each with ``add_parsers(verbs)`` and ``run(args, extra)``.

prepare (prepare.py), train and quickstart (train.py), eval and generate (evaluate.py), eval code
(code_eval.py), info and convert (info.py), bench (bench.py), data (data.py, language.py),
viz and report (viz.py). Flags of dataclass-configured steps are generated from the dataclass
(flags.py). Bad input ends with one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading

from hrmkit.cli.common import EXIT_INTERRUPTED, OneLineParser, run_reporting_errors

# verb -> the module that adds its parser and runs it, in the order `hrm --help` lists them.
VERBS = {
    "prepare": "prepare", "generate": "evaluate", "train": "train", "eval": "evaluate", "quickstart": "train",
    "info": "info", "convert": "info", "data": "data", "viz": "viz", "report": "viz", "bench": "bench",
}
# Verbs whose leftover words are config overrides (key.sub=value) rather than mistakes.
VERBS_WITH_OVERRIDES = ("train", "bench", "info")


def _module(name: str):
    return importlib.import_module(f"hrmkit.cli.{name}")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="hrm", description="Train and evaluate HRM / TRM recursive reasoning models.")
    verbs = parser.add_subparsers(dest="verb", required=True)
    for name in dict.fromkeys(VERBS.values()):  # each module once; it adds all of its verbs
        _module(name).add_parsers(verbs)
    parser.verbs = verbs.choices  # verb -> its parser, whose errors name the verb's own --help
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    _stop_on_sigterm_as_on_ctrl_c()
    if argv[:2] == ["eval", "code"]:  # `hrm eval code` has its own flags (code_eval.py)
        from hrmkit.cli.code_eval import main as code_eval_main
        return code_eval_main(argv[2:])
    try:
        parser = build_parser()
        args, extra = parser.parse_known_args(argv)
    except KeyboardInterrupt:  # Ctrl-C while the command starts: nothing ran yet
        print("interrupted: the command stopped before it started", file=sys.stderr)
        return EXIT_INTERRUPTED
    if extra and not _takes_overrides(args):
        parser.verbs[args.verb].error(f"unrecognized arguments: {' '.join(extra)}{_override_hint(args, extra)}")
    return run_reporting_errors(lambda: _module(VERBS[args.verb]).run(args, extra), interrupted=_after_interrupt(args))


def _stop_on_sigterm_as_on_ctrl_c() -> None:
    """SIGTERM (what a scheduler or `kill` sends) stops a command as Ctrl-C does, so each verb's cleanup
    runs: a builder or data tool killed by it left its unfinished output (hundreds of MB) under a temporary
    name for good. A training run catches both signals itself while it trains (train/stop_request.py)."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt("SIGTERM")

    # Not when an embedding program set its own, nor off the main thread (where Python takes no handlers).
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, interrupt)


def _takes_overrides(args: argparse.Namespace) -> bool:
    """hrm info applies overrides to its --config only; with another option they would do nothing."""
    return args.verb in VERBS_WITH_OVERRIDES and (args.verb != "info" or args.config is not None)


def _override_hint(args: argparse.Namespace, extra: list[str]) -> str:
    """Why hrm info refuses what looks like an override (a word with '='); a stray flag needs no hint."""
    return " (key.sub=value overrides go with --config)" if args.verb == "info" and any("=" in word for word in extra) else ""


def _after_interrupt(args: argparse.Namespace) -> str:
    """What Ctrl-C leaves, per verb: only a training run has something to resume."""
    if args.verb not in ("train", "quickstart"):
        return "the command stopped before it finished"
    if getattr(args, "reset_progress", False):
        return ("rerun the command without --reset_progress to resume from the newest checkpoint "
                "(with it, progress is reset again)")
    return "rerun the same command to resume from the newest checkpoint"


if __name__ == "__main__":
    sys.exit(main())
