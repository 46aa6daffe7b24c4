"""Which puzzle family a dataset holds, so the viewer knows how to draw it.

The builder named in ``hrmkit_build.json`` decides; a dataset built by the reference
repositories has no such name and is recognised by its tokens and files instead (``hrm data check``
asks more of a reference Sudoku, fully solved labels, because it checks them).
"""

from __future__ import annotations

from pathlib import Path

from hrmkit.puzzles import maze_dataset, routing_dataset, sudoku_dataset
from hrmkit.puzzles.arc_vote import is_arc_dataset
from hrmkit.puzzles.check import path_split_kind
from hrmkit.puzzles.format import PuzzleSplit
from hrmkit.puzzles.build import build_summary
from hrmkit.puzzles.sudoku import sudoku_side

KINDS = ("sudoku", "maze", "routing", "arc")
_KIND_OF_BUILDER = {sudoku_dataset.BUILDER: "sudoku", maze_dataset.BUILDER: "maze", routing_dataset.BUILDER: "routing"}


def _builder(root: Path) -> str | None:
    return build_summary(root).get("builder")


def _looks_like_sudoku(split: PuzzleSplit) -> bool:
    # Reference Sudoku: pad, blank, then one token per digit.
    side = sudoku_side(split.metadata.seq_len)
    return side is not None and split.metadata.vocab_size == side + 2


def dataset_kind(root: str | Path, split: PuzzleSplit) -> str | None:
    """'sudoku', 'maze', 'routing' or 'arc'; None when the dataset is none of them."""
    root = Path(root)
    builder = _builder(root)
    if builder in _KIND_OF_BUILDER:
        return _KIND_OF_BUILDER[builder]
    if is_arc_dataset(root):
        return "arc"
    path_kind = path_split_kind(root, split)
    if path_kind is not None:
        return path_kind
    return "sudoku" if _looks_like_sudoku(split) else None
