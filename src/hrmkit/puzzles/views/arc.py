"""Page data for an ARC run: per test pair, its augmented variants segment by segment and the voted answer.

An example is one test pair of one task. Every augmented variant of it is traced, because the
answer is a vote across all of them, as ``hrm eval`` votes (``hrmkit.puzzles.arc_vote``): each variant's
prediction is cropped, its augmentation undone, and identical answers pool their votes; the most
voted wins, ties going to the higher mean sigmoid(q_halt). The page repeats that vote after every
segment, so the user sees the answer form, and draws the first few variants as the model saw them.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from hrmkit.puzzles.arc import decode_grid, parse_variant_name, unaugment_grid
from hrmkit.puzzles.format import PuzzleSplit
from hrmkit.puzzles.views.trace import SegmentTrace, Tracer, read_rows
from hrmkit.puzzles.vote import Ballot, answer_key
from hrmkit.viz.page_data import ViewerError, grid_record, rounded

SHOWN_VARIANTS = 8  # variants drawn per example; all of them vote
ROWS_PER_CHUNK = 4096


def _pair_rows(split: PuzzleSplit) -> dict[tuple[str, int], list[tuple[int, int, np.ndarray, str]]]:
    """(task, test pair) -> [(row, transform, colour map, variant name)], pairs in the split's order."""
    pairs: dict[tuple[str, int], list] = {}
    parsed: dict[int, tuple[str, int, np.ndarray, str]] = {}
    offset = 0
    for set_name in split.metadata.sets:
        arrays = split.sets[set_name]
        puzzle_indices = np.asarray(arrays["puzzle_indices"], dtype=np.int64)
        identifiers = np.asarray(arrays["puzzle_identifiers"])
        for puzzle, (begin, end) in enumerate(zip(puzzle_indices[:-1].tolist(), puzzle_indices[1:].tolist())):
            identifier = int(identifiers[puzzle])
            if identifier not in parsed:
                name = split.identifiers[identifier] if identifier < len(split.identifiers) else ""
                try:
                    parsed[identifier] = (*parse_variant_name(name), name)
                except ValueError as error:
                    raise ViewerError(str(error)) from None
            task, transform, colours, name = parsed[identifier]
            for position, row in enumerate(range(begin, end)):
                pairs.setdefault((task, position), []).append((offset + row, transform, colours, name))
        offset += len(arrays["inputs"])
    return pairs


def _variant_label(transform: int, colours: np.ndarray) -> str:
    if transform == 0 and np.array_equal(colours, np.arange(10)):
        return "original"
    return f"transform {transform}, colours {''.join(str(int(c)) for c in colours)}"


class _Pair:
    """The votes of one test pair, segment by segment, and the variants it shows."""

    def __init__(self, task: str, position: int, segments: int):
        self.task, self.position = task, position
        self.votes = [Ballot() for _ in range(segments)]  # one per segment
        self.target: np.ndarray | None = None
        self.test_input: np.ndarray | None = None
        self.shown: list[dict[str, Any]] = []
        self.halts: list[int] = []
        self.q_halt: list[np.ndarray] = []
        self.q_continue: list[np.ndarray] = []

    def add(self, inputs: np.ndarray, labels: np.ndarray, trace: SegmentTrace, index: int,
            transform: int, colours: np.ndarray, name: str) -> None:
        def undo(tokens: np.ndarray) -> np.ndarray:
            return unaugment_grid(decode_grid(tokens), transform, colours)

        if self.target is None:
            self.target, self.test_input = undo(labels), undo(inputs)
        answers = [undo(predicted) for predicted in trace.predictions[index]]
        confidence = 1.0 / (1.0 + np.exp(-trace.q_halt[index].astype(np.float64)))
        for segment, answer in enumerate(answers):
            self.votes[segment].add(answer, confidence[segment])
        self.halts.append(int(trace.halt_step[index]))
        self.q_halt.append(trace.q_halt[index])
        self.q_continue.append(trace.q_continue[index])
        if len(self.shown) < SHOWN_VARIANTS:
            self.shown.append({
                "name": _variant_label(transform, colours),
                "input": grid_record(decode_grid(inputs)),
                "segments": [grid_record(decode_grid(predicted)) for predicted in trace.predictions[index]],
                "right": [bool(np.array_equal(answer, self.target)) for answer in answers],
                "q_halt": rounded(trace.q_halt[index]),
                "q_continue": rounded(trace.q_continue[index]),
                "halt": int(trace.halt_step[index]),
            })

    def record(self) -> dict[str, Any]:
        target_key = answer_key(self.target)
        voted, correct, status = [], [], []
        variants = len(self.halts)
        for votes in self.votes:
            ranked = votes.ranked()  # the order hrm eval votes in
            keys = [candidate.key for candidate in ranked]
            rank = keys.index(target_key) + 1 if target_key in keys else None
            count, answer = ranked[0].votes, ranked[0].answer
            voted.append({"grid": grid_record(answer), "votes": count, "candidates": len(ranked), "target_rank": rank})
            correct.append(rank == 1)
            place = "not among the answers" if rank is None else f"ranked {rank} of {len(ranked)}"
            status.append(f"voted answer has {count} of {variants} votes; the target is {place}")
        halt_counts = Counter(self.halts)
        return {
            "title": f"task {self.task} · test pair {self.position}",
            "test_input": grid_record(self.test_input),
            "target": grid_record(self.target),
            "voted": voted,
            "variants": self.shown,
            "variant_count": variants,
            "correct": correct,
            "status": status,
            "solved": correct[-1],
            # The card's Q chart: the mean over all variants; it halts where most variants halt.
            "q_halt": rounded(np.mean(self.q_halt, axis=0)),
            "q_continue": rounded(np.mean(self.q_continue, axis=0)),
            "halt": max(halt_counts, key=lambda step: (halt_counts[step], -step)),
        }


def arc_page(split: PuzzleSplit, tracer: Tracer, n: int) -> dict[str, Any]:
    if split.split != "test":
        raise ViewerError("ARC pages vote over the test split's variants: use --split test "
                          "(train examples are translated, so their grids cannot be read back)")
    pairs_rows = _pair_rows(split)
    if not pairs_rows:
        raise ViewerError("the split holds no examples")
    chosen = list(pairs_rows)[:n]
    rows = [(pair, *entry) for pair in chosen for entry in pairs_rows[pair]]
    pairs: dict[tuple[str, int], _Pair] = {}
    # Read and trace a chunk at a time: with 1000 variants per task, 50 pairs are 50,000 rows.
    for chunk_start in range(0, len(rows), ROWS_PER_CHUNK):
        chunk = rows[chunk_start:chunk_start + ROWS_PER_CHUNK]
        data = read_rows(split, np.array([row for _, row, _, _, _ in chunk], dtype=np.int64))
        for start, part in tracer(data["inputs"], data["puzzle_identifiers"]):
            for index in range(len(part)):
                pair, _, transform, colours, name = chunk[start + index]
                if pair not in pairs:
                    pairs[pair] = _Pair(*pair, segments=part.q_halt.shape[1])
                pairs[pair].add(data["inputs"][start + index], data["labels"][start + index], part, index,
                                transform, colours, name)
    return {
        "solved_means": "the most voted answer, across all augmented variants, is the target after the last segment (pass@1)",
        "examples": [pairs[pair].record() for pair in chosen],
    }
