"""Which puzzle family a dataset holds: one answer for the checker, `hrm eval`'s scoring and voting,
the trainer's summary line and the viewer.

The builder named in ``hrmkit_build.json`` decides. A dataset without that summary (built by the
reference repositories) is recognised by its shape and tokens: ARC by its 12-token 30x30 canvas, a
maze or a routing scenario by its inputs, a Sudoku by a square grid of one token per digit after pad
and blank. Labels are never asked: the checker has to recognise a dataset whose labels are broken in
order to say so.
"""

from __future__ import annotations

import os
from pathlib import Path

from hrmkit.files import DatasetError
from hrmkit.puzzles import arc_dataset, maze_dataset, routing_dataset, sudoku_dataset
from hrmkit.puzzles.build import build_summary
from hrmkit.puzzles.check_arc import looks_like_arc
from hrmkit.puzzles.check_paths import looks_like_maze, looks_like_routing
from hrmkit.puzzles.format import PuzzleSplit, load_split
from hrmkit.puzzles.sudoku import sudoku_side

KINDS = ("sudoku", "maze", "routing", "arc")
PATH_KINDS = ("maze", "routing")  # predictions are scored as routes (check.path_scores)
_KIND_OF_BUILDER = {sudoku_dataset.BUILDER: "sudoku", maze_dataset.BUILDER: "maze",
                    routing_dataset.BUILDER: "routing", arc_dataset.BUILDER: "arc"}


def _looks_like_sudoku(split: PuzzleSplit) -> bool:
    # Reference Sudoku: pad, blank, then one token per digit.
    side = sudoku_side(split.metadata.seq_len)
    return side is not None and split.metadata.vocab_size == side + 2


def puzzle_kind(root: str | os.PathLike, split: PuzzleSplit) -> str | None:
    """'sudoku', 'maze', 'routing' or 'arc' for a loaded split of the dataset at `root`; None when it
    is none of them (an hrmkit dataset of another builder, or an unrecognised reference one)."""
    builder = build_summary(Path(root)).get("builder")
    if builder is not None:
        return _KIND_OF_BUILDER.get(builder) if isinstance(builder, str) else None
    if looks_like_arc(split):
        return "arc"
    # Mazes before Sudoku: a 4x4 maze and a 4x4 Sudoku share vocabulary size and length.
    if looks_like_maze(split):
        return "maze"
    if looks_like_routing(split):
        return "routing"
    return "sudoku" if _looks_like_sudoku(split) else None


def dataset_kind(root: str | os.PathLike) -> str | None:
    """The kind of the dataset at `root`, judged on its test split; None without a readable one."""
    try:
        split = load_split(root, "test")
    except DatasetError:
        return None
    return puzzle_kind(root, split)
