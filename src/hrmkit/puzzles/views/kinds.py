"""Which puzzle family a dataset holds, so the viewer knows how to draw it.

The builder named in ``hrmkit_build.json`` decides; a dataset built by the reference
repositories has no such name and is recognised by its tokens instead (as ``hrm data check``
and ``hrm eval`` recognise them).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from hrmkit.puzzles import maze_dataset, routing_dataset, sudoku_dataset
from hrmkit.puzzles.arc_vote import is_arc_dataset
from hrmkit.puzzles.check import path_split_kind
from hrmkit.puzzles.format import PuzzleSplit
from hrmkit.puzzles.sudoku import BOX_SHAPES

KINDS = ("sudoku", "maze", "routing", "arc")
_KIND_OF_BUILDER = {sudoku_dataset.BUILDER: "sudoku", maze_dataset.BUILDER: "maze", routing_dataset.BUILDER: "routing"}


def _builder(root: Path) -> str | None:
    try:
        summary = json.loads((root / "hrmkit_build.json").read_text())
    except (OSError, ValueError):
        return None
    return summary.get("builder") if isinstance(summary, dict) else None


def sudoku_side(seq_len: int) -> int | None:
    """Grid side of a Sudoku row of ``seq_len`` cells, or None when no supported size fits."""
    side = math.isqrt(seq_len)
    return side if side * side == seq_len and side in BOX_SHAPES else None


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
