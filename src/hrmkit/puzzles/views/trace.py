"""Run a puzzle model over chosen rows of a split and keep what every ACT segment said.

Evaluation (``hrmkit.puzzles.evaluate``) keeps only the last segment; a viewer needs each one: the
predicted tokens after every segment, both Q logits, and the segment where the Q head would
have halted (the same rule as evaluation: q_halt > 0 for TRM, q_halt > q_continue for HRM,
never before the first segment ends, at the latest at ``halt_max_steps``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from hrmkit.model.losses import IGNORE_LABEL_ID
from hrmkit.puzzles.format import PuzzleSplit
from hrmkit.viz.page_data import rounded


@dataclass
class SegmentTrace:
    """What the model said about some rows, segment by segment (segments count from 1)."""

    predictions: np.ndarray  # [rows, segments, seq_len] argmax tokens after each segment
    q_halt: np.ndarray  # [rows, segments] float32 logits
    q_continue: np.ndarray  # [rows, segments] float32 logits
    halt_step: np.ndarray  # [rows] int32: the segment where the model would stop, 1..segments

    def __len__(self) -> int:
        return len(self.predictions)


# (inputs [rows, seq_len], puzzle_identifiers [rows]) -> traces of those rows, one batch at a time.
Tracer = Callable[[np.ndarray, np.ndarray], Iterator[tuple[int, SegmentTrace]]]


def halting_steps(q_halt: np.ndarray, q_continue: np.ndarray, halts_on_q_halt_alone: bool) -> np.ndarray:
    """[rows] first segment (1-based) whose Q logits say halt, else the last segment.

    The last segment always halts, so a wish to halt there is no decision: like evaluation,
    only segments before the last one count.
    """
    wants_halt = q_halt > 0 if halts_on_q_halt_alone else q_halt > q_continue
    segments = q_halt.shape[1]
    wants_halt[:, segments - 1] = True
    return (wants_halt.argmax(axis=1) + 1).astype(np.int32)


def read_rows(split: PuzzleSplit, rows: np.ndarray) -> dict[str, np.ndarray]:
    """inputs, labels and puzzle_identifiers of the split's rows (numbered across its sets, in order)."""
    rows = np.asarray(rows, dtype=np.int64)
    seq_len = split.metadata.seq_len
    sets = [split.sets[name] for name in split.metadata.sets]
    # The files' own dtypes (uint8 tokens, mostly): ARC pages read many rows.
    picked = {name: np.zeros((len(rows), seq_len) if name != "puzzle_identifiers" else len(rows),
                             dtype=np.result_type(*(arrays[name].dtype for arrays in sets)))
              for name in ("inputs", "labels", "puzzle_identifiers")}
    offset = 0
    for set_name in split.metadata.sets:
        arrays = split.sets[set_name]
        count = len(arrays["inputs"])
        here = np.flatnonzero((rows >= offset) & (rows < offset + count))
        if here.size:
            local = rows[here] - offset
            puzzles = np.searchsorted(np.asarray(arrays["puzzle_indices"], dtype=np.int64), local, side="right") - 1
            picked["inputs"][here] = arrays["inputs"][local]
            picked["labels"][here] = arrays["labels"][local]
            picked["puzzle_identifiers"][here] = np.asarray(arrays["puzzle_identifiers"])[puzzles]
        offset += count
    return picked


def model_tracer(model, device: torch.device, batch_size: int, autocast=contextlib.nullcontext) -> Tracer:
    """A Tracer running ``model`` (an ACTModel) for all of its ``halt_max_steps`` segments, each under
    ``autocast()`` (the run's precision, as its evaluations ran)."""

    @torch.no_grad()
    def trace(inputs: np.ndarray, puzzle_identifiers: np.ndarray) -> Iterator[tuple[int, SegmentTrace]]:
        was_training = model.training
        model.eval()
        try:
            for start in range(0, len(inputs), batch_size):
                yield start, _trace_batch(model, device, inputs[start:start + batch_size],
                                          puzzle_identifiers[start:start + batch_size], autocast)
        finally:
            model.train(was_training)

    return trace


def _trace_batch(model, device: torch.device, inputs: np.ndarray, puzzle_identifiers: np.ndarray,
                 autocast) -> SegmentTrace:
    batch = {
        "inputs": torch.from_numpy(np.array(inputs, dtype=np.int32)).to(device),
        # Labels only ride along in the carry (the model never reads them); none is needed here.
        "labels": torch.full(inputs.shape, IGNORE_LABEL_ID, dtype=torch.int64, device=device),
        "puzzle_identifiers": torch.from_numpy(np.array(puzzle_identifiers, dtype=np.int32)).to(device),
    }
    carry = model.initial_carry(batch)
    predictions, q_halt, q_continue = [], [], []
    for _ in range(model.config.halt_max_steps):
        with autocast():
            carry, outputs = model(carry=carry, batch=batch)
        predictions.append(outputs["logits"].argmax(-1).cpu().numpy())
        q_halt.append(outputs["q_halt_logits"].float().cpu().numpy())
        q_continue.append(outputs["q_continue_logits"].float().cpu().numpy())
    token_type = np.uint8 if model.config.vocab_size <= 256 else np.int32
    q_halt_rows, q_continue_rows = np.stack(q_halt, axis=1), np.stack(q_continue, axis=1)
    return SegmentTrace(
        predictions=np.stack(predictions, axis=1).astype(token_type),
        q_halt=q_halt_rows.astype(np.float32),
        q_continue=q_continue_rows.astype(np.float32),
        halt_step=halting_steps(q_halt_rows, q_continue_rows, model.config.halts_on_q_halt_alone),
    )


def collect(traces: Iterator[tuple[int, SegmentTrace]]) -> SegmentTrace:
    """One SegmentTrace from a Tracer's batches (for a few rows; ARC streams instead)."""
    parts = [part for _, part in traces]
    if not parts:
        raise ValueError("no rows to trace")
    return SegmentTrace(*(np.concatenate([getattr(part, name) for part in parts])
                          for name in ("predictions", "q_halt", "q_continue", "halt_step")))


def segment_fields(trace: SegmentTrace, index: int) -> dict[str, Any]:
    """The Q logits of every segment and the halting segment of one traced row."""
    return {
        "q_halt": rounded(trace.q_halt[index]),
        "q_continue": rounded(trace.q_continue[index]),
        "halt": int(trace.halt_step[index]),
    }
