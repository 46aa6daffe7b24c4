"""Sudoku (4x4, 6x6, 9x9): the solver, the generator of uniquely solvable puzzles, and the symmetries.

Grids hold digits 1..size and 0 for a blank, flat (size*size) or square; as dataset tokens every
digit d becomes d + 1, so BLANK_TOKEN is 1 and 0 stays pad (sudoku_dataset.py builds the datasets).
The symmetries are the shuffles that keep any Sudoku valid, and they depend on the size: see
`random_symmetries`.
"""

from __future__ import annotations

import functools
import itertools
import math
import random
from dataclasses import dataclass
from typing import Any

import numpy as np

# Box rows x box columns for each supported size.
BOX_SHAPES = {4: (2, 2), 6: (2, 3), 9: (3, 3)}


def sudoku_side(seq_len: int) -> int | None:
    """Grid side of a Sudoku row of ``seq_len`` cells, or None when no supported size fits."""
    side = math.isqrt(seq_len)
    return side if side * side == seq_len and side in BOX_SHAPES else None

# Fewest givens a uniquely solvable puzzle can have, so at most size*size minus this many blanks.
MIN_GIVENS = {4: 4, 6: 8, 9: 17}

BLANK_TOKEN = 1


# --------------------------------------------------------------------------- geometry


@dataclass(frozen=True)
class _Geometry:
    size: int
    box_rows: int
    box_cols: int
    row_of: tuple[int, ...]
    col_of: tuple[int, ...]
    box_of: tuple[int, ...]
    full_mask: int  # bit d set for every digit d in 1..size


@functools.lru_cache(maxsize=None)
def _geometry(size: int) -> _Geometry:
    box_rows, box_cols = BOX_SHAPES[size]
    cells = range(size * size)
    return _Geometry(
        size=size,
        box_rows=box_rows,
        box_cols=box_cols,
        row_of=tuple(cell // size for cell in cells),
        col_of=tuple(cell % size for cell in cells),
        box_of=tuple((cell // size // box_rows) * (size // box_cols) + (cell % size) // box_cols for cell in cells),
        full_mask=((1 << size) - 1) << 1,
    )


@functools.lru_cache(maxsize=None)
def _bits_of_mask(mask: int) -> tuple[int, ...]:
    return tuple(1 << digit for digit in range(1, 10) if mask >> digit & 1)


# --------------------------------------------------------------------------- solver


def _search(
    empties: list[int],
    values: list[int],
    used: tuple[list[int], list[int], list[int]],
    geo: _Geometry,
    limit: int,
    found: list[list[int]],
    rnd: random.Random | None,
) -> int:
    """Count completions up to `limit`, branching on the cell with fewest candidates.

    `used` holds the digit bitmasks of each row, column and box. The first completion is
    appended to `found`. With `rnd`, digits are tried in random order.
    """
    rows, cols, boxes = used
    best_cell, best_mask, best_count = -1, 0, 99
    for cell in empties:
        mask = geo.full_mask & ~(rows[geo.row_of[cell]] | cols[geo.col_of[cell]] | boxes[geo.box_of[cell]])
        count = mask.bit_count()
        if count < best_count:
            if count == 0:
                return 0
            best_cell, best_mask, best_count = cell, mask, count
            if count == 1:
                break
    if best_cell < 0:
        if not found:
            found.append(values[:])
        return 1
    rest = [cell for cell in empties if cell != best_cell]
    row, col, box = geo.row_of[best_cell], geo.col_of[best_cell], geo.box_of[best_cell]
    bits = list(_bits_of_mask(best_mask))
    if rnd is not None:
        rnd.shuffle(bits)
    total = 0
    for bit in bits:
        rows[row] |= bit
        cols[col] |= bit
        boxes[box] |= bit
        values[best_cell] = bit.bit_length() - 1
        total += _search(rest, values, used, geo, limit - total, found, rnd)
        rows[row] ^= bit
        cols[col] ^= bit
        boxes[box] ^= bit
        values[best_cell] = 0
        if total >= limit:
            break
    return total


def _count_solutions(
    grid: list[int], geo: _Geometry, limit: int, rnd: random.Random | None = None
) -> tuple[int, list[int] | None]:
    """(number of solutions up to `limit`, the first one found or None)."""
    rows, cols, boxes = [0] * geo.size, [0] * geo.size, [0] * geo.size
    empties = []
    for cell, digit in enumerate(grid):
        if digit == 0:
            empties.append(cell)
            continue
        bit = 1 << digit
        row, col, box = geo.row_of[cell], geo.col_of[cell], geo.box_of[cell]
        if (rows[row] | cols[col] | boxes[box]) & bit:
            return 0, None
        rows[row] |= bit
        cols[col] |= bit
        boxes[box] |= bit
    found: list[list[int]] = []
    count = _search(empties, list(grid), (rows, cols, boxes), geo, limit, found, rnd)
    return count, (found[0] if found else None)


def solve(grid: Any, size: int) -> tuple[np.ndarray | None, int]:
    """Solve a grid of digits (0 = blank), shaped (size, size) or flat.

    Returns (a solution shaped like `grid` or None, number of solutions counted up to 2).
    """
    check_size(size)
    digits = np.asarray(grid, dtype=np.int64)
    if digits.size != size * size or digits.min(initial=0) < 0 or digits.max(initial=0) > size:
        raise ValueError(f"grid must hold {size * size} digits in 0..{size}, got shape {digits.shape}")
    count, solution = _count_solutions([int(d) for d in digits.ravel()], _geometry(size), limit=2)
    if solution is None:
        return None, count
    return np.array(solution, dtype=np.int64).reshape(digits.shape), count


# --------------------------------------------------------------------------- generator


def _random_solution(geo: _Geometry, rnd: random.Random) -> list[int]:
    _, solution = _count_solutions([0] * (geo.size * geo.size), geo, limit=1, rnd=rnd)
    assert solution is not None, "an empty grid always has a completion"
    return solution


def _candidate_mask(puzzle: list[int], cell: int, geo: _Geometry) -> int:
    used = 0
    row, col, box = geo.row_of[cell], geo.col_of[cell], geo.box_of[cell]
    for other, digit in enumerate(puzzle):
        shares_a_unit = geo.row_of[other] == row or geo.col_of[other] == col or geo.box_of[other] == box
        if digit and other != cell and shares_a_unit:
            used |= 1 << digit
    return geo.full_mask & ~used


def _still_unique_without(puzzle: list[int], cell: int, digit: int, geo: _Geometry) -> bool:
    """Whether a uniquely solvable puzzle stays so with `cell` (holding `digit`) blanked.

    Any second solution must put another digit in `cell`, so try each alternative.
    """
    alternatives = _candidate_mask(puzzle, cell, geo) & ~(1 << digit)
    for bit in _bits_of_mask(alternatives):
        puzzle[cell] = bit.bit_length() - 1
        count, _ = _count_solutions(puzzle, geo, limit=1)
        if count:
            puzzle[cell] = digit
            return False
    puzzle[cell] = 0
    return True


def generate_puzzle(size: int, target_blanks: int, rnd: random.Random) -> tuple[list[int], list[int]]:
    """(puzzle, solution) as flat digit lists: a random solution, then cells blanked in random order
    while the solution stays unique; the puzzle keeps more givens when no further cell can go."""
    geo = _geometry(size)
    solution = _random_solution(geo, rnd)
    puzzle = solution[:]
    order = list(range(geo.size * geo.size))
    rnd.shuffle(order)
    blanks = 0
    for cell in order:
        if blanks == target_blanks:
            break
        if _still_unique_without(puzzle, cell, solution[cell], geo):
            blanks += 1
    return puzzle, solution


# --------------------------------------------------------------------------- symmetries


@functools.lru_cache(maxsize=None)
def _block_permutations(num_blocks: int, block_size: int) -> np.ndarray:
    """Every order of `num_blocks` blocks with every order inside each block: [count, num_blocks * block_size]."""
    orders = []
    for block_order in itertools.permutations(range(num_blocks)):
        for inner in itertools.product(itertools.permutations(range(block_size)), repeat=num_blocks):
            orders.append(
                [block_order[b] * block_size + inner[b][i] for b in range(num_blocks) for i in range(block_size)]
            )
    return np.array(orders, dtype=np.int64)


def _line_permutations(size: int) -> tuple[np.ndarray, np.ndarray]:
    """(row orders: bands and rows within bands, column orders: stacks and columns within stacks)."""
    box_rows, box_cols = BOX_SHAPES[size]
    return _block_permutations(size // box_rows, box_rows), _block_permutations(size // box_cols, box_cols)


def _cell_maps(size: int, rows: np.ndarray, cols: np.ndarray, transpose: np.ndarray) -> np.ndarray:
    """Flat source cell of each target cell: (i, j) <- (rows[i], cols[j]), of the transpose where asked."""
    plain = rows[:, :, None] * size + cols[:, None, :]
    transposed = cols[:, None, :] * size + rows[:, :, None]
    return np.where(transpose[:, None, None], transposed, plain).reshape(len(rows), size * size)


def random_symmetries(size: int, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """`count` random symmetries as (cell maps [count, size*size], digit maps [count, size + 1]).

    Transposition is a symmetry only with square boxes; 6x6 (2x3 boxes) never transposes.
    """
    row_orders, col_orders = _line_permutations(size)
    rows = row_orders[rng.integers(len(row_orders), size=count)]
    cols = col_orders[rng.integers(len(col_orders), size=count)]
    box_rows, box_cols = BOX_SHAPES[size]
    transpose = rng.random(count) < 0.5 if box_rows == box_cols else np.zeros(count, dtype=bool)
    digits = rng.permuted(np.tile(np.arange(1, size + 1), (count, 1)), axis=1)
    digit_maps = np.concatenate([np.zeros((count, 1), dtype=np.int64), digits], axis=1)  # blank stays blank
    return _cell_maps(size, rows, cols, transpose), digit_maps


def apply_symmetries(grid: np.ndarray, cell_maps: np.ndarray, digit_maps: np.ndarray) -> np.ndarray:
    """[count, size*size] transformed copies of one flat digit grid."""
    moved = grid.reshape(-1)[cell_maps]
    return np.take_along_axis(digit_maps, moved.astype(np.int64), axis=1).astype(grid.dtype)


def shuffle_sudoku(
    board: np.ndarray, solution: np.ndarray, size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """One random validity-preserving shuffle, applied identically to a puzzle and its solution.

    Digit grids (0 = blank), shaped (size, size) or flat; returns the same shapes.
    """
    check_size(size)
    cell_maps, digit_maps = random_symmetries(size, 1, rng)
    shuffled_board = apply_symmetries(np.asarray(board), cell_maps, digit_maps)[0]
    shuffled_solution = apply_symmetries(np.asarray(solution), cell_maps, digit_maps)[0]
    return shuffled_board.reshape(np.shape(board)), shuffled_solution.reshape(np.shape(solution))


def unit_cells(size: int) -> np.ndarray:
    """[3 * size, size] flat cells of every row, column and box."""
    geo = _geometry(size)
    cells = np.arange(size * size)
    units = [cells[np.array(index) == unit] for index in (geo.row_of, geo.col_of, geo.box_of) for unit in range(size)]
    return np.stack(units)


def check_size(size: int) -> None:
    """ValueError unless `size` is a supported grid side (see BOX_SHAPES)."""
    if size not in BOX_SHAPES:
        raise ValueError(f"size must be one of {sorted(BOX_SHAPES)}, got {size}")
