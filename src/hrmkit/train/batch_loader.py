"""Training batches prepared ahead of the step in worker processes, handed out in stream order,
resumable exactly.

A batch source (the puzzle ``TrainSampler``, the text ``BatchStream``) is a deterministic stream
whose position is a small ``state_dict``. Preparing one batch has two parts: choosing its rows,
which is Python work (4.0 of the 4.3 ms of a 768-row Sudoku batch on one Xeon core), and gathering
them. With ``workers`` processes, worker ``w`` of ``W`` walks the whole stream, choosing the rows of
every batch but gathering only batches ``w, w + W, ...``; torch's DataLoader takes them from the
workers in turn, so they arrive in the stream's order. Each batch travels with the position after
it, and the loader's position is that of the last batch handed out: a checkpoint resumes at the
next batch, whatever the workers had prepared beyond it.

Processes rather than threads: choosing rows holds the GIL, which the training loop needs to launch
GPU kernels. With ``workers=0`` the source runs in the training process, as before; that is the
choice on a CPU, where a worker would take a core from the step.
"""

from __future__ import annotations

import multiprocessing
import sys
import weakref
from collections.abc import Iterator
from typing import Any, Protocol

import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from hrmkit.config import RunConfig
from hrmkit.train.distributed import pick_device
from hrmkit.train.stop_request import ignore_stop_signals


class BatchSource(Protocol):
    """An endless, deterministic stream of batches with a resumable position."""

    def next_batch(self) -> dict[str, torch.Tensor]: ...

    def skip_batch(self) -> None:
        """Move past the next batch without building it (only its rows are chosen)."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def _worker_start_method() -> str:
    """fork where it is the platform's usual choice (Linux): workers start at once and share the
    dataset's memory maps; elsewhere spawn, which pickles the source (splits pickle as their path)."""
    return "fork" if sys.platform.startswith("linux") else "spawn"


class _StreamShare(IterableDataset):
    """One worker's share of the stream: every ``workers``-th batch, each with the position after it."""

    def __init__(self, source: BatchSource):
        self.source = source

    def __iter__(self) -> Iterator[tuple[dict[str, torch.Tensor], dict[str, Any]]]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        index = 0
        while True:  # the worker's own copy of the source: the training process's copy stays put
            if index % workers == worker:
                yield self.source.next_batch(), self.source.state_dict()
            else:
                self.source.skip_batch()
            index += 1


def _leave_stop_signals_to_the_trainer(_worker_id: int) -> None:
    ignore_stop_signals()


def _stop_workers(open_iterator: list) -> None:
    """Stop the workers of the DataLoader iterator in ``open_iterator`` (emptied), by the loader's own
    shutdown: they ignore SIGTERM (ignore_stop_signals), so multiprocessing's terminate() at interpreter
    exit cannot end them, and a loader still open then hung the exit for good."""
    iterator = open_iterator.pop() if open_iterator else None
    shutdown = getattr(iterator, "_shutdown_workers", None)
    if shutdown is not None:
        shutdown()


class BatchLoader:
    """``source``'s batches, prepared by ``workers`` processes (0: in this process), in order.

    ``pin_memory`` pins each batch in a background thread, so the copy to a CUDA device can be
    ``non_blocking``. ``state_dict`` is the position after the last batch handed out.
    """

    def __init__(self, source: BatchSource, workers: int = 0, pin_memory: bool = False, prefetch: int = 2,
                 start_method: str | None = None):
        if workers < 0:
            raise ValueError(f"data.workers must be >= 0, got {workers}")
        self.source, self.workers, self.pin_memory, self.prefetch = source, workers, pin_memory, prefetch
        self.start_method = start_method or _worker_start_method()
        self._batches: list[Iterator] = []  # the DataLoader iterator while workers run
        self._position: dict[str, Any] | None = None  # after the last batch handed out; None: source's own
        # At exit (before torch's own exit hook, which turns the shutdown off), or when the loader is dropped.
        weakref.finalize(self, _stop_workers, self._batches)

    def next_batch(self) -> dict[str, torch.Tensor]:
        if self.workers == 0:
            return self.source.next_batch()
        if not self._batches:
            # The loader seeds its workers from `generator`: without one it would draw from torch's global
            # generator and shift the training's own random draws (ACT exploration). The sources draw
            # from their own seeded generators, so this seed changes no batch.
            loader = DataLoader(_StreamShare(self.source), batch_size=None, num_workers=self.workers,
                                pin_memory=self.pin_memory, prefetch_factor=self.prefetch,
                                multiprocessing_context=multiprocessing.get_context(self.start_method),
                                worker_init_fn=_leave_stop_signals_to_the_trainer,
                                generator=torch.Generator().manual_seed(0))
            self._batches.append(iter(loader))
        batch, self._position = next(self._batches[0])
        return batch

    def state_dict(self) -> dict[str, Any]:
        return self.source.state_dict() if self._position is None else self._position

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from ``state``: what the workers had prepared is dropped and they restart there."""
        self.close()
        self.source.load_state_dict(state)

    def close(self) -> None:
        """Stop the workers. The source moves to the position handed out so far, so the loader goes on
        from there if it is used again."""
        if self._position is not None:
            self.source.load_state_dict(self._position)
        _stop_workers(self._batches)
        self._position = None


def batch_loader_for(cfg: RunConfig, source: BatchSource) -> BatchLoader:
    """The loader a run's ``data.workers`` asks for (resolved from ``auto`` by the trainer). Batches are
    pinned where workers run and the run trains on CUDA: the pinning thread then does the copy the host
    would otherwise do before each non-blocking transfer. A CPU run on a machine with a GPU pins nothing:
    page-locked memory is scarce and such a run never copies to the GPU."""
    workers = cfg.data.workers
    if not isinstance(workers, int):
        raise ValueError(f"data.workers is {workers!r}: resolve it for the device first (speed_settings)")
    on_cuda = pick_device(cfg.train.device).type == "cuda"
    return BatchLoader(source, workers, pin_memory=workers > 0 and on_cuda)
