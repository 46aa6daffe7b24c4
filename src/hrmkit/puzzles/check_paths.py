"""Maze and routing splits for `hrm data check` and `hrm eval`: recognise them, check their labels as
paths, score a model's predicted paths.

A maze label must mark a shortest S->G path (`path_validity`); a routing label a legal route for
the example's vehicle that is as cheap as the A* oracle's (`routing_label_fault`). A prediction is
scored by the same rules, so a malformed one just scores as invalid.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from hrmkit.puzzles import routing
from hrmkit.puzzles.check_base import Check, paired_chunks, row_chunks
from hrmkit.puzzles.format import PuzzleSplit
from hrmkit.puzzles.grid import cells_off_a_route, reachable_cells
from hrmkit.puzzles.maze import GOAL, OPEN, PATH, START, shortest_path
from hrmkit.puzzles.maze import VOCAB_SIZE as MAZE_VOCAB_SIZE


@dataclass
class _LabelTally:
    """How many labels of a split mark a valid path and an optimal one; the first example failing each."""

    total: int = 0
    valid: int = 0
    optimal: int = 0
    first_invalid: str = ""  # "example <index><note>"
    first_detour: str = ""  # valid but not optimal

    def detail(self, valid: str, optimal: str, invalid: str) -> str:
        """'<n> of <total> labels <valid>, <n> <optimal>', then the first <invalid> and first non-optimal example."""
        text = f"{self.valid} of {self.total} labels {valid}, {self.optimal} {optimal}"
        text += f"; first {invalid}: {self.first_invalid}" if self.first_invalid else ""
        text += f"; first non-optimal: {self.first_detour}" if self.first_detour else ""
        return text


def _tally_labels(split: PuzzleSplit, judge: Callable[[np.ndarray, np.ndarray], tuple[bool, bool, str]]) -> _LabelTally:
    """Runs ``judge(input, label) -> (valid, optimal, note)`` over every example of the split."""
    tally = _LabelTally(total=split.num_examples())
    for start, inputs, labels in paired_chunks(split):
        for row, (input_row, label_row) in enumerate(zip(inputs, labels)):
            valid, optimal, note = judge(input_row, label_row)
            tally.valid += valid
            tally.optimal += optimal
            if not valid and not tally.first_invalid:
                tally.first_invalid = f"example {start + row}{note}"
            if valid and not optimal and not tally.first_detour:
                tally.first_detour = f"example {start + row}{note}"
    return tally


# --------------------------------------------------------------------------- mazes


def path_validity(input_row: Any, label_row: Any, size: int) -> tuple[bool, bool]:
    """(valid, optimal) for a maze answer `label_row` to the maze `input_row` (flat or square tokens).

    Valid: the label is the input with some open cells marked 'o', and S, those cells and G form one
    simple 4-connected route: each 'o' next to exactly two route cells (the ones before and after it),
    S and G to one, all connected. A branch, a loop, a stray 'o' or a marked blob is not a route.
    Optimal: valid and the route is exactly as long as the BFS shortest path. A malformed
    input (not one S and one G) scores (False, False), so model predictions can be scored blindly.
    """
    inputs = np.asarray(input_row).reshape(-1)
    labels = np.asarray(label_row).reshape(-1)
    if inputs.size != size * size or labels.size != size * size:
        return False, False
    marked = labels == PATH
    if not np.array_equal(np.where(marked, OPEN, labels), inputs):
        return False, False  # something besides open cells changed, or an 'o' sits off an open cell
    starts, goals = np.flatnonzero(inputs == START), np.flatnonzero(inputs == GOAL)
    if len(starts) != 1 or len(goals) != 1:
        return False, False
    start, goal = int(starts[0]), int(goals[0])
    reached = reachable_cells(marked | (labels == GOAL), size, start)
    valid = bool(reached[goal]) and bool(reached[marked].all())
    if not valid or cells_off_a_route(marked | (labels == START) | (labels == GOAL), size, (start, goal)).size:
        return False, False
    shortest = shortest_path(inputs, size)
    optimal = shortest is not None and int(marked.sum()) == len(shortest) - 2
    return True, optimal


def _maze_size(seq_len: int) -> int | None:
    size = math.isqrt(seq_len)
    return size if size * size == seq_len else None


def looks_like_maze(split: PuzzleSplit) -> bool:
    """A reference-built maze: the maze vocabulary and exactly one S and one G in every input."""
    if split.metadata.vocab_size != MAZE_VOCAB_SIZE:
        return False
    return all(
        _within_vocabulary(inputs, MAZE_VOCAB_SIZE)
        and ((inputs == START).sum(axis=1) == 1).all() and ((inputs == GOAL).sum(axis=1) == 1).all()
        for _, inputs in row_chunks(split, "inputs")
    )


def _within_vocabulary(tokens: np.ndarray, vocab_size: int) -> bool:
    return bool(((tokens >= 0) & (tokens < vocab_size)).all())


def maze_check(split_name: str, split: PuzzleSplit) -> Check:
    """Every label of a maze split marks a shortest S->G path."""
    name = f"maze:{split_name}"
    size = _maze_size(split.metadata.seq_len)
    if size is None:
        return Check(name, False, f"seq_len {split.metadata.seq_len} is not a square grid")
    tally = _tally_labels(split, lambda maze, answer: (*path_validity(maze, answer, size), ""))
    return Check(name, tally.optimal == tally.total, tally.detail("valid", "optimal", "invalid"))


def maze_path_scores(split: PuzzleSplit, predictions: np.ndarray) -> dict[str, float]:
    """Share of predicted maze grids that mark a valid S->G path, and a shortest one."""
    size = _maze_size(split.metadata.seq_len)
    inputs = np.concatenate([arrays["inputs"] for arrays in split.sets.values()])[: len(predictions)]
    scores = [path_validity(maze, predicted, size) for maze, predicted in zip(inputs, predictions)]
    total = max(len(scores), 1)
    return {"valid_path": sum(valid for valid, _ in scores) / total,
            "optimal_path": sum(optimal for _, optimal in scores) / total}


# --------------------------------------------------------------------------- city routing


def _routing_size(seq_len: int) -> int | None:
    """Grid side of a routing row (size*size map cells plus the vehicle token)."""
    size = math.isqrt(max(seq_len - 1, 0))
    return size if size > 0 and size * size == seq_len - 1 else None


def looks_like_routing(split: PuzzleSplit) -> bool:
    """A routing dataset: its vocabulary, a square map plus one position, and a vehicle token last in every input."""
    vehicle_tokens = np.array(sorted(routing.VEHICLE_TOKENS.values()))
    if split.metadata.vocab_size != routing.VOCAB_SIZE or _routing_size(split.metadata.seq_len) is None:
        return False
    return all(_within_vocabulary(inputs, routing.VOCAB_SIZE) and np.isin(inputs[:, -1], vehicle_tokens).all()
               for _, inputs in row_chunks(split, "inputs"))


def routing_label_fault(input_row: Any, label_row: Any, size: int) -> tuple[str | None, bool]:
    """(fault, legal) for one routing label: (None, True) when it marks a cost-optimal legal route.

    legal is False for an illegal, disconnected or malformed label; a legal route that costs more
    than the oracle's optimum comes back as (fault, True).
    """
    fault, cost = routing.judge_path(input_row, label_row, size)
    if fault is not None:
        return fault, False
    ignored = int(np.asarray(label_row).reshape(-1)[-1])
    if ignored != 0:
        return f"label at the vehicle position is {ignored}, expected 0 (ignored)", False
    optimum = routing.optimal_cost(input_row, size)
    if cost != optimum:
        return f"route costs {cost} but the optimum is {optimum}", True
    return None, True


def _vehicle_of(input_row: np.ndarray) -> str:
    token = int(input_row[-1])
    return next((name for name, t in routing.VEHICLE_TOKENS.items() if t == token), f"token {token}")


def routing_check(split_name: str, split: PuzzleSplit) -> Check:
    """Every label of a routing split marks a legal route for its vehicle, as cheap as the oracle's."""
    name = f"routing:{split_name}"
    size = _routing_size(split.metadata.seq_len)
    if size is None:
        return Check(name, False, f"seq_len {split.metadata.seq_len} is not a square map plus a vehicle token")

    def judge(scenario: np.ndarray, answer: np.ndarray) -> tuple[bool, bool, str]:
        fault, legal = routing_label_fault(scenario, answer, size)
        return legal, fault is None, f" ({_vehicle_of(scenario)}): {fault}"

    tally = _tally_labels(split, judge)
    return Check(name, tally.optimal == tally.total, tally.detail("legal routes", "cost-optimal", "illegal"))


def routing_path_scores(split: PuzzleSplit, predictions: np.ndarray) -> dict[str, float]:
    """Share of predictions marking a legal route and a cost-optimal one, overall and per vehicle."""
    size = _routing_size(split.metadata.seq_len)
    inputs = np.concatenate([arrays["inputs"] for arrays in split.sets.values()])[: len(predictions)]
    tallies: dict[str, list[int]] = {}  # vehicle -> [examples, legal, optimal]
    for scenario, predicted in zip(inputs, predictions):
        valid, cost = routing.is_legal_path(scenario, predicted, size)
        optimal = valid and cost == routing.optimal_cost(scenario, size)
        tally = tallies.setdefault(_vehicle_of(scenario), [0, 0, 0])
        tally[0], tally[1], tally[2] = tally[0] + 1, tally[1] + valid, tally[2] + optimal
    total = max(sum(t[0] for t in tallies.values()), 1)
    scores = {"valid_path": sum(t[1] for t in tallies.values()) / total,
              "optimal_path": sum(t[2] for t in tallies.values()) / total}
    for vehicle, (examples, valid, optimal) in tallies.items():
        scores[f"valid_path/{vehicle}"] = valid / examples
        scores[f"optimal_path/{vehicle}"] = optimal / examples
    return scores
