"""Stop a training run cleanly on Ctrl-C (SIGINT) or SIGTERM, the signal a cluster scheduler sends
before it kills a job.

Without this, Ctrl-C lands wherever the step happens to be and every step since the newest
checkpoint is lost (with ``train.checkpoint_interval=0`` that is everything since the last
evaluation). With it, the first signal only asks the run to stop: the step in flight finishes, the
trainer saves a checkpoint of that step and stops as an interrupted run, so rerunning the same
command goes on from there (a signal during the last step or the final evaluation lets the run
finish instead: its final weights are then written). The first signal also puts the previous
handlers back, so a second Ctrl-C interrupts at once, as it always did.

Under torchrun, Ctrl-C reaches the launcher only (its workers run in sessions of their own); it
sends the same signal to every worker and kills those still running after ``--shutdown-timeout``
seconds (30 by default). Each worker gets the signal at its own moment, so the trainer has them vote
after every step (``collectives.any_process``) and all stop after the same one, which they save
together. A step plus its checkpoint that takes longer than the launcher waits is lost as before.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class RunStopped(KeyboardInterrupt):
    """Raised by the trainer after it saved the checkpoint a stop request asked for; the CLI reports it
    as any interruption (exit 130)."""


class StopRequest:
    """While open (a ``with`` block), the first SIGINT or SIGTERM sets :attr:`signal_name` instead of
    interrupting. Off the main thread (signals cannot be caught there) or when ``enabled`` is false
    it does nothing, and signals act as usual."""

    def __init__(self, enabled: bool, log: Callable[[str], None]):
        self.enabled, self.log = enabled, log
        self.signal_name: str | None = None  # the signal that asked to stop, once one did
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopRequest:
        if self.enabled and threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._ask_to_stop) for sig in STOP_SIGNALS}
        return self

    def __exit__(self, *_exc) -> None:
        self._restore()

    def _ask_to_stop(self, signum: int, _frame) -> None:
        self.signal_name = signal.Signals(signum).name
        self._restore()  # a second signal interrupts at once
        self.log(f"{self.signal_name}: the run stops once the step in flight is saved (a run in its final evaluation "
                 "finishes it); Ctrl-C again stops at once")

    def _restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}


def ignore_stop_signals() -> None:
    """For a data-loader worker: leave SIGINT and SIGTERM to the training process. Ctrl-C reaches the
    whole process group; a worker that died of it would make the loader raise 'worker exited
    unexpectedly' in the step the run is finishing. Workers end when the training process drops the
    loader or exits."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
