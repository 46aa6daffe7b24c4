"""ARC-AGI grids as tokens, and the names of augmented variants, as the reference writes them.

- Tokens: 0 pad, 1 EOS, colours 0..9 -> 2..11. Each grid sits in a 30x30 canvas (seq_len 900)
  with a row of EOS just below it and a column of EOS just right of it, where they fit (the
  corner cell below-right stays pad).
- Variants: one dihedral transform (8) plus one permutation of colours 1..9 (black, colour 0,
  stays), named `<task>|||t<k>|||<colour map>` (the task itself: just `<task>`), so the evaluator
  can undo every augmentation from the puzzle identifier alone.

arc_tasks.py reads task files; arc_dataset.py builds the datasets.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hrmkit.puzzles.grid import DIHEDRAL_INVERSE, dihedral_transform

MAX_GRID_SIZE = 30
SEQ_LEN = MAX_GRID_SIZE * MAX_GRID_SIZE
PAD, EOS, COLOUR_OFFSET = 0, 1, 2
NUM_COLOURS = 10
VOCAB_SIZE = NUM_COLOURS + 2
ID_SEPARATOR = "|||"

IDENTITY_COLOURS = np.arange(NUM_COLOURS, dtype=np.uint8)


def parse_grid(value: Any, where: str) -> np.ndarray:
    """A JSON grid (list of equal-length rows of colours 0..9, at most 30x30) as uint8; ValueError otherwise."""
    try:
        grid = np.array(value)
    except ValueError:
        raise ValueError(f"{where}: rows have different lengths") from None
    if grid.ndim != 2 or grid.size == 0:
        raise ValueError(f"{where}: expected a non-empty list of equal-length rows, got shape {grid.shape}")
    if grid.shape[0] > MAX_GRID_SIZE or grid.shape[1] > MAX_GRID_SIZE:
        raise ValueError(f"{where}: grid is {grid.shape[0]}x{grid.shape[1]}, over {MAX_GRID_SIZE}x{MAX_GRID_SIZE}")
    if grid.dtype.kind not in "iu" or grid.min() < 0 or grid.max() >= NUM_COLOURS:
        raise ValueError(f"{where}: cells must be integers 0..9")
    return grid.astype(np.uint8)


def encode_grid(grid: np.ndarray, row: int = 0, column: int = 0) -> np.ndarray:
    """[900] tokens: `grid` (colours) at (row, column) of the canvas with its EOS border."""
    canvas = np.full((MAX_GRID_SIZE, MAX_GRID_SIZE), PAD, dtype=np.uint8)
    height, width = grid.shape
    canvas[row : row + height, column : column + width] = grid + COLOUR_OFFSET
    if row + height < MAX_GRID_SIZE:
        canvas[row + height, column : column + width] = EOS
    if column + width < MAX_GRID_SIZE:
        canvas[row : row + height, column + width] = EOS
    return canvas.reshape(-1)


def grid_sizes(tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(heights, widths) of the grids in [rows, 900] token rows, read like the reference's crop.

    The grid is the largest top-left rectangle of colour tokens: row r allows as many columns
    as the colour run at its start and every row above it allow, and the best area wins.
    A row that starts with pad or EOS gives an empty (0x0) grid.
    """
    square = np.asarray(tokens).reshape(-1, MAX_GRID_SIZE, MAX_GRID_SIZE)
    not_colour = (square < COLOUR_OFFSET) | (square >= COLOUR_OFFSET + NUM_COLOURS)
    run = np.where(not_colour.any(axis=2), not_colour.argmax(axis=2), MAX_GRID_SIZE)  # [rows, 30]
    columns = np.minimum.accumulate(run, axis=1)
    area = columns * np.arange(1, MAX_GRID_SIZE + 1)
    best = area.argmax(axis=1)
    found = area.max(axis=1) > 0
    heights = np.where(found, best + 1, 0)
    widths = np.where(found, columns[np.arange(len(columns)), best], 0)
    return heights, widths


def decode_grid(tokens: np.ndarray) -> np.ndarray:
    """The colour grid held in [900] tokens (placed at the top-left), as uint8 colours 0..9."""
    heights, widths = grid_sizes(tokens)
    square = np.asarray(tokens).reshape(MAX_GRID_SIZE, MAX_GRID_SIZE)
    return (square[: heights[0], : widths[0]] - COLOUR_OFFSET).astype(np.uint8)


def augment_grid(grid: np.ndarray, trans_id: int, colours: np.ndarray) -> np.ndarray:
    """Recolour (colour c becomes colours[c]) then apply dihedral transform `trans_id`."""
    return dihedral_transform(colours[grid], trans_id)


def unaugment_grid(grid: np.ndarray, trans_id: int, colours: np.ndarray) -> np.ndarray:
    """Undo `augment_grid(grid, trans_id, colours)`."""
    return np.argsort(colours).astype(np.uint8)[dihedral_transform(grid, DIHEDRAL_INVERSE[trans_id])]


def variant_name(task_id: str, trans_id: int, colours: np.ndarray) -> str:
    """The reference's puzzle identifier of one variant; the untouched task is named by its id alone."""
    if trans_id == 0 and np.array_equal(colours, IDENTITY_COLOURS):
        return task_id
    return f"{task_id}{ID_SEPARATOR}t{trans_id}{ID_SEPARATOR}{''.join(str(int(c)) for c in colours)}"


def parse_variant_name(name: str) -> tuple[str, int, np.ndarray]:
    """(task id, dihedral transform, colour map) of a puzzle identifier; ValueError if malformed."""
    if ID_SEPARATOR not in name:
        return name, 0, IDENTITY_COLOURS
    parts = name.split(ID_SEPARATOR)
    task_id, transform, colours = parts[0], parts[-2], parts[-1]
    valid = (
        len(parts) == 3
        and len(transform) == 2 and transform[0] == "t" and transform[1] in "01234567"
        and sorted(colours) == list("0123456789")
    )
    if not valid:
        raise ValueError(f"puzzle identifier {name!r} is not <task>|||t<0-7>|||<permutation of 0123456789>")
    return task_id, int(transform[1]), np.array([int(c) for c in colours], dtype=np.uint8)
