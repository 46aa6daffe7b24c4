"""Page data for maze and city-routing runs: the map, the oracle's path and the predicted one per segment.

A path answer is judged the way ``hrm eval`` scores paths, not by exact match, because several
paths can be equally short (mazes) or equally cheap (routing): solved means the last segment
marks a valid shortest maze path, or a legal cost-optimal route for the example's vehicle.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from hrmkit.puzzles import routing
from hrmkit.puzzles.check_paths import path_validity
from hrmkit.puzzles.format import PuzzleSplit
from hrmkit.puzzles.maze import PATH as MAZE_PATH
from hrmkit.puzzles.views.trace import Tracer, collect, read_rows, segment_fields
from hrmkit.viz.page_data import ViewerError, first_rows, tokens_text


def _maze_verdict(maze: np.ndarray, answer: np.ndarray, size: int, shortest: int) -> tuple[bool, str, int | None]:
    """(solved, status line, steps of the predicted path or None) for one predicted maze grid."""
    valid, optimal = path_validity(maze, answer, size)
    if not valid:
        return False, f"no valid S→G path (shortest: {shortest} steps)", None
    steps = int(np.count_nonzero(answer == MAZE_PATH)) + 1
    if optimal:
        return True, f"shortest path, {steps} steps", steps
    return False, f"valid path, {steps} steps (shortest: {shortest})", steps


def _routing_verdict(scenario: np.ndarray, answer: np.ndarray, size: int, optimum: int) -> tuple[bool, str, int | None]:
    """(solved, status line, cost of the predicted route or None) for one predicted routing row."""
    fault, cost = routing.judge_path(scenario, answer, size)
    if fault is not None:
        fault = re.sub(r"^label ", "prediction ", fault)  # judge_path words its faults for dataset labels
        return False, f"{fault} (optimal cost: {optimum})", None
    if cost == optimum:
        return True, f"cost-optimal route, cost {cost}", cost
    return False, f"legal route, cost {cost} (optimal: {optimum})", cost


def _examples(split: PuzzleSplit, tracer: Tracer, n: int, kind: str, size: int) -> list[dict[str, Any]]:
    rows = first_rows(split.num_examples(), n)
    data = read_rows(split, rows)
    trace = collect(tracer(data["inputs"], data["puzzle_identifiers"]))
    examples = []
    for index, row in enumerate(rows.tolist()):
        inputs, labels = data["inputs"][index], data["labels"][index]
        record: dict[str, Any] = {"title": f"example {row}"}
        if kind == "maze":
            oracle = int(np.count_nonzero(labels == MAZE_PATH)) + 1
            verdicts = [_maze_verdict(inputs, answer, size, oracle) for answer in trace.predictions[index]]
        else:
            scenario = routing.decode(inputs, size)
            oracle = routing.optimal_cost(inputs, size)
            verdicts = [_routing_verdict(inputs, answer, size, oracle) for answer in trace.predictions[index]]
            record["title"] += f" · {scenario.vehicle}"
            record["vehicle"] = scenario.vehicle
            # 0 marks a cell this vehicle may not enter: the page greys those roads out.
            record["costs"] = tokens_text(routing.entry_costs(scenario.grid, scenario.vehicle))
        cells = size * size  # routing rows end with the vehicle token, which is not drawn
        record.update({
            "input": tokens_text(inputs[:cells]),
            "label": tokens_text(labels[:cells]),
            "segments": [tokens_text(answer[:cells]) for answer in trace.predictions[index]],
            "oracle_cost": oracle,
            "path_costs": [cost for _, _, cost in verdicts],
            "correct": [solved for solved, _, _ in verdicts],
            "status": [status for _, status, _ in verdicts],
            "solved": verdicts[-1][0],
            **segment_fields(trace, index),
        })
        examples.append(record)
    return examples


def maze_page(split: PuzzleSplit, tracer: Tracer, n: int) -> dict[str, Any]:
    size = math.isqrt(split.metadata.seq_len)
    if size * size != split.metadata.seq_len:
        raise ViewerError(f"seq_len {split.metadata.seq_len} is not a square maze")
    return {"size": size, "cost_name": "steps",
            "solved_means": "the last segment marks a valid shortest S→G path (exact match not needed)",
            "examples": _examples(split, tracer, n, "maze", size)}


def routing_page(split: PuzzleSplit, tracer: Tracer, n: int) -> dict[str, Any]:
    size = math.isqrt(max(split.metadata.seq_len - 1, 0))
    if size < 1 or size * size + 1 != split.metadata.seq_len:
        raise ViewerError(f"seq_len {split.metadata.seq_len} is not a square city map plus a vehicle token")
    return {"size": size, "cost_name": "cost", "token_names": list(routing.TOKEN_NAMES),
            "solved_means": "the last segment marks a legal, cost-optimal route for the vehicle",
            "examples": _examples(split, tracer, n, "routing", size)}
