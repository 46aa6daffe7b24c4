"""Page data for a Sudoku run: each example's givens, solution and the grid after every segment.

Solved means what ``hrm eval`` counts as exact: every labelled cell right after the last segment.
"""

from __future__ import annotations

from typing import Any

from hrmkit.puzzles.format import PuzzleSplit, scored_positions
from hrmkit.puzzles.sudoku import BLANK_TOKEN, BOX_SHAPES
from hrmkit.puzzles.sudoku import sudoku_side
from hrmkit.puzzles.views.trace import Tracer, collect, read_rows, segment_fields
from hrmkit.viz.page_data import ViewerError, first_rows, tokens_text


def _status(wrong: int, scored: int) -> str:
    if wrong == 0:
        return f"all {scored} cells right"
    return f"{wrong} of {scored} cells wrong"


def sudoku_page(split: PuzzleSplit, tracer: Tracer, n: int) -> dict[str, Any]:
    side = sudoku_side(split.metadata.seq_len)
    if side is None:
        raise ViewerError(f"seq_len {split.metadata.seq_len} is not a 4x4, 6x6 or 9x9 Sudoku grid")
    rows = first_rows(split.num_examples(), n)
    data = read_rows(split, rows)
    trace = collect(tracer(data["inputs"], data["puzzle_identifiers"]))
    ignore = split.metadata.ignore_label_id
    examples = []
    for index, row in enumerate(rows.tolist()):
        labels = data["labels"][index]
        scored = scored_positions(labels, ignore)
        wrong = [int(((predicted != labels) & scored).sum()) for predicted in trace.predictions[index]]
        examples.append({
            "title": f"example {row}",
            "input": tokens_text(data["inputs"][index]),
            "label": tokens_text(labels),
            "segments": [tokens_text(predicted) for predicted in trace.predictions[index]],
            "correct": [count == 0 for count in wrong],
            "status": [_status(count, int(scored.sum())) for count in wrong],
            "solved": wrong[-1] == 0,
            **segment_fields(trace, index),
        })
    return {
        "size": side,
        "box": list(BOX_SHAPES[side]),
        "blank_token": BLANK_TOKEN,
        "solved_means": "every cell right after the last segment (exact accuracy)",
        "examples": examples,
    }
