"""What every verb shares: one-line usage errors, exit codes, the errors that mean bad input."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


class UsageError(ValueError):
    """Bad command-line input detected by the CLI itself."""


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line (the full usage stays in --help)."""

    def error(self, message: str):
        self.exit(EXIT_BAD_INPUT, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def expected_errors() -> tuple[type[BaseException], ...]:
    """Every error type that means bad input (imported only once an error is on its way)."""
    from hrmkit.code.data import CodeDataError
    from hrmkit.code.evaluate import CodeEvalError
    from hrmkit.code.sandbox import SandboxError
    from hrmkit.config_base import ConfigError
    from hrmkit.files import DatasetError
    from hrmkit.train.checkpoint import CheckpointError
    from hrmkit.viz.headless import BrowserError
    from hrmkit.viz.run_folder import ReportError
    return (ConfigError, DatasetError, CheckpointError, ReportError, BrowserError, CodeDataError, CodeEvalError,
            SandboxError, UsageError, FileNotFoundError, FileExistsError, IsADirectoryError, ValueError)


def run_reporting_errors(run: Callable[[], int], interrupted: str) -> int:
    """``run()``'s exit code; bad input is one line on stderr and exit 2, Ctrl-C prints ``interrupted``."""
    try:
        return run()
    except expected_errors() as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:  # output piped into `head` and the like
        return 0
    except KeyboardInterrupt as stop:  # a stopped training run says where it stopped (train/stop_request.py)
        if os.environ.get("RANK", "0") == "0":  # under torchrun every process is interrupted: one says so
            print(f"interrupted: {f'{stop}; ' if str(stop) else ''}{interrupted}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:
        if _a_peer_process_ended(error):  # its own error, printed by it, is the one to read
            print("error: another process of this torchrun job ended (its error is above); this one stops too",
                  file=sys.stderr)
            return EXIT_FAILED
        if not _raised_by_an_interrupt(error):
            raise
        # Ctrl-C while a module imports (torch takes a second) surfaces as the import's own error.
        print(f"interrupted: {interrupted}", file=sys.stderr)
        return EXIT_INTERRUPTED


def _a_peer_process_ended(error: BaseException) -> bool:
    """Under torchrun, a collective broken because another process of the job exited (gloo: 'Connection
    closed by peer'); that process printed why."""
    text = str(error)
    return "RANK" in os.environ and isinstance(error, RuntimeError) and (
        "Connection closed by peer" in text or "Connection reset by peer" in text)


def _raised_by_an_interrupt(error: BaseException) -> bool:
    """Whether a KeyboardInterrupt is among the errors this one was raised while handling."""
    seen: set[int] = set()
    cause = error.__context__
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, KeyboardInterrupt):
            return True
        seen.add(id(cause))
        cause = cause.__context__
    return False
