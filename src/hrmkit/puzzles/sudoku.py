"""Sudoku datasets (4x4, 6x6, 9x9) in the reference puzzle format: generate or import, augment, write.

Tokens follow the reference: 0 pad, 1 blank, digit d -> d + 1. Every base puzzle and its
`num_aug` shuffled variants form one group; each variant is one puzzle with one example.
Generated puzzles have exactly one solution. The test split is never augmented.
"""

from __future__ import annotations

import csv
import functools
import itertools
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hrmkit.files import check_output_free
from hrmkit.puzzles.format import PuzzleDatasetMetadata, write_generated_dataset
from hrmkit.puzzles.selection import (
    MAX_CONSECUTIVE_REJECTIONS,
    ProgressCallback,
    Selection,
    select,
    shuffled_rows,
    spread,
)

# Box rows x box columns for each supported size.
BOX_SHAPES = {4: (2, 2), 6: (2, 3), 9: (3, 3)}

# Fewest givens a uniquely solvable puzzle can have, so at most size*size minus this many blanks.
MIN_GIVENS = {4: 4, 6: 8, 9: 17}

DIFFICULTY_BLANK_FRACTIONS = {"easy": 0.40, "medium": 0.55, "hard": 0.70}

BLANK_TOKEN = 1

# Why a candidate puzzle is turned down (counted in the build summary).
_REPEATED_INPUT = "repeated input"
_HELD_OUT_SOLUTION = "held-out solution"

# Written into hrmkit_build.json; a stable identifier (older datasets carry it), not a module path.
BUILDER = "hrmkit.data.sudoku"


@dataclass
class SudokuBuildConfig:
    """What `build_sudoku` makes."""

    size: int = 4
    """Grid side: 4 (2x2 boxes), 6 (2x3 boxes) or 9 (3x3 boxes)."""
    train: int = 1000
    """Base training puzzles (with a CSV: at most this many, a random subset)."""
    test: int = 200
    """Test puzzles (with a CSV: at most this many, a random subset)."""
    num_aug: int = 0
    """Shuffled variants added to each training puzzle's group."""
    seed: int = 0
    """Seed for everything random; the same seed builds the same bytes."""
    difficulty: str = "medium"
    """easy, medium or hard: the fraction of cells blanked when generating."""
    blanks: int | None = None
    """Exact blank target when generating, overriding difficulty."""
    disjoint_solutions: bool = False
    """No test solution appears in train, not even as an augmented variant."""
    from_csv: str | None = None
    """Import puzzles from a reference-layout CSV (source,q,a,rating) instead of generating."""
    test_csv: str | None = None
    """CSV for the test split; without it the test split is drawn from from_csv."""
    min_difficulty: int | None = None
    """Keep only CSV rows whose rating is at least this."""


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
    _check_size(size)
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


def _generate_puzzle(geo: _Geometry, target_blanks: int, rnd: random.Random) -> tuple[list[int], list[int]]:
    """A random solution, then cells blanked in random order while the solution stays unique."""
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


def _generated_candidates(
    geo: _Geometry, target_blanks: int, rnd: random.Random
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    while True:
        puzzle, solution = _generate_puzzle(geo, target_blanks, rnd)
        yield np.array(puzzle, dtype=np.uint8), np.array(solution, dtype=np.uint8)


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


def _random_symmetries(size: int, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
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


def _apply_symmetries(grid: np.ndarray, cell_maps: np.ndarray, digit_maps: np.ndarray) -> np.ndarray:
    """[count, size*size] transformed copies of one flat digit grid."""
    moved = grid.reshape(-1)[cell_maps]
    return np.take_along_axis(digit_maps, moved.astype(np.int64), axis=1).astype(grid.dtype)


def shuffle_sudoku(
    board: np.ndarray, solution: np.ndarray, size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """One random validity-preserving shuffle, applied identically to a puzzle and its solution.

    Digit grids (0 = blank), shaped (size, size) or flat; returns the same shapes.
    """
    _check_size(size)
    cell_maps, digit_maps = _random_symmetries(size, 1, rng)
    shuffled_board = _apply_symmetries(np.asarray(board), cell_maps, digit_maps)[0]
    shuffled_solution = _apply_symmetries(np.asarray(solution), cell_maps, digit_maps)[0]
    return shuffled_board.reshape(np.shape(board)), shuffled_solution.reshape(np.shape(solution))


# --------------------------------------------------------------------------- CSV import


def _parse_digits(strings: list[str], size: int, path: str, line_numbers: list[int], column: str) -> np.ndarray:
    """[rows, size*size] uint8 digits from strings of '1'..'9', with '.' or '0' for blank."""
    raw = np.frombuffer("".join(strings).encode("ascii", errors="replace"), dtype=np.uint8)
    raw = raw.reshape(len(strings), size * size).copy()
    raw[raw == ord(".")] = ord("0")
    digits = raw - ord("0")  # wraps below '0' to large values, which the range check catches
    bad = digits > size
    if bad.any():
        row, position = (int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{path}:{line_numbers[row]}: column {column} has {strings[row][position]!r} at position "
            f"{position}; expected '.', '0' or a digit 1..{size}"
        )
    return digits


def _read_csv_rows(path: str, size: int, min_difficulty: int | None) -> tuple[list[str], list[str], list[int]]:
    with open(path, newline="") as file:
        reader = csv.reader(file)
        header = next(reader, [])
        if "q" not in header or "a" not in header:
            raise ValueError(f"{path}:1: header must name columns q and a (reference layout: source,q,a,rating)")
        if min_difficulty is not None and "rating" not in header:
            raise ValueError(f"{path}:1: min_difficulty needs a rating column")
        q_at, a_at = header.index("q"), header.index("a")
        rating_at = header.index("rating") if "rating" in header else None
        questions, answers, line_numbers = [], [], []
        for line_number, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise ValueError(f"{path}:{line_number}: expected {len(header)} fields, got {len(row)}")
            if min_difficulty is not None and _rating(row[rating_at], path, line_number) < min_difficulty:
                continue
            for column, text in (("q", row[q_at]), ("a", row[a_at])):
                if len(text) != size * size or not text.isascii():
                    raise ValueError(
                        f"{path}:{line_number}: column {column} must be {size * size} ASCII characters "
                        f"for size {size}, got {len(text)}"
                    )
            questions.append(row[q_at])
            answers.append(row[a_at])
            line_numbers.append(line_number)
    return questions, answers, line_numbers


def _rating(text: str, path: str, line_number: int) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{path}:{line_number}: rating {text!r} is not a number") from None


def _unit_cells(size: int) -> np.ndarray:
    """[3 * size, size] flat cells of every row, column and box."""
    geo = _geometry(size)
    cells = np.arange(size * size)
    units = [cells[np.array(index) == unit] for index in (geo.row_of, geo.col_of, geo.box_of) for unit in range(size)]
    return np.stack(units)


def _check_csv_pairs(puzzles: np.ndarray, solutions: np.ndarray, size: int, path: str, line_numbers: list[int]) -> None:
    in_units = np.sort(solutions[:, _unit_cells(size)], axis=2)
    invalid = ~np.all(in_units == np.arange(1, size + 1), axis=(1, 2))
    disagreeing = np.any((puzzles != 0) & (puzzles != solutions), axis=1)
    for mask, problem in ((invalid, f"a is not a valid {size}x{size} solution"), (disagreeing, "q disagrees with a")):
        if mask.any():
            raise ValueError(f"{path}:{line_numbers[int(np.argmax(mask))]}: {problem}")


def read_sudoku_csv(path: str, size: int, min_difficulty: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(puzzles, solutions) from a reference-layout CSV as [rows, size*size] uint8 digits, 0 = blank.

    Rows rated below `min_difficulty` are skipped. Solutions are checked for validity and
    agreement with the givens; uniqueness is not checked (hard puzzles would take long).
    """
    _check_size(size)
    if not Path(path).is_file():
        raise ValueError(f"{path}: CSV file not found")
    questions, answers, line_numbers = _read_csv_rows(path, size, min_difficulty)
    if not questions:
        return np.zeros((0, size * size), np.uint8), np.zeros((0, size * size), np.uint8)
    puzzles = _parse_digits(questions, size, path, line_numbers, "q")
    solutions = _parse_digits(answers, size, path, line_numbers, "a")
    _check_csv_pairs(puzzles, solutions, size, path, line_numbers)
    return puzzles, solutions


# --------------------------------------------------------------------------- building


def _impossible_request_message(description: str, count: int, selection: Selection) -> str:
    made = len(selection.inputs)
    if selection.rejected[_HELD_OUT_SOLUTION] >= selection.rejected[_REPEATED_INPUT]:
        return (
            f"{description}: made {made} of {count}, then {MAX_CONSECUTIVE_REJECTIONS} grids in a row were "
            "held-out solutions (4x4 has only 288 solution grids); use fewer test puzzles or "
            "disjoint_solutions=False"
        )
    return (
        f"{description}: made only {made} of {count} distinct puzzles, then {MAX_CONSECUTIVE_REJECTIONS} "
        "duplicates in a row; ask for fewer puzzles or more blanks"
    )


def _solution_filter(test_solutions: list[np.ndarray], enabled: bool) -> Callable[[np.ndarray], bool]:
    if not enabled:
        return lambda solution: False
    exact = {solution.tobytes() for solution in test_solutions}
    return lambda solution: solution.tobytes() in exact


def _solution_overlap(train_labels: np.ndarray, test_labels: np.ndarray) -> dict[str, int]:
    """How many held-out solution grids occur among the train labels (augmented variants included)."""
    seen_in_train = {row.tobytes() for row in train_labels}
    test_seen = sum(row.tobytes() in seen_in_train for row in test_labels)
    test_solutions = {row.tobytes() for row in test_labels}
    train_hits = sum(row.tobytes() in test_solutions for row in train_labels)
    return {"test_puzzles_with_solution_in_train": test_seen, "train_examples_with_a_test_solution": train_hits}


def _augmented_group(
    puzzle: np.ndarray, solution: np.ndarray, size: int, num_aug: int, rng: np.random.Generator,
    test_inputs: set[bytes], test_solutions: set[bytes],
) -> tuple[np.ndarray, np.ndarray]:
    """The base puzzle then `num_aug` variants, redrawing any variant that equals a test input
    (or, when `test_solutions` is non-empty, whose solution is a test solution)."""
    cell_maps, digit_maps = _random_symmetries(size, num_aug, rng)
    inputs = np.concatenate([puzzle[None], _apply_symmetries(puzzle, cell_maps, digit_maps)])
    labels = np.concatenate([solution[None], _apply_symmetries(solution, cell_maps, digit_maps)])
    for row in range(1, num_aug + 1):
        for _ in range(MAX_CONSECUTIVE_REJECTIONS):
            if inputs[row].tobytes() not in test_inputs and labels[row].tobytes() not in test_solutions:
                break
            inputs[row], labels[row] = shuffle_sudoku(puzzle, solution, size, rng)
        else:
            raise ValueError("augmentation keeps producing held-out puzzles or solutions; use fewer test puzzles")
    return inputs, labels


def _split_arrays(
    selection: Selection,
    size: int,
    num_aug: int,
    rng: np.random.Generator,
    test_inputs: set[bytes],
    test_solutions: set[bytes],
    report: ProgressCallback,
) -> dict[str, np.ndarray]:
    """The five reference arrays: one group per base puzzle, one example per puzzle."""
    cells = size * size
    inputs, labels = [np.zeros((0, cells), np.uint8)], [np.zeros((0, cells), np.uint8)]
    total = len(selection.inputs)
    for done, (puzzle, solution) in enumerate(zip(selection.inputs, selection.labels), start=1):
        group_inputs, group_labels = _augmented_group(puzzle, solution, size, num_aug, rng, test_inputs, test_solutions)
        inputs.append(group_inputs)
        labels.append(group_labels)
        if num_aug:
            report("augmenting", done, total)
    num_puzzles = total * (1 + num_aug)
    return {
        "inputs": np.concatenate(inputs) + BLANK_TOKEN,
        "labels": np.concatenate(labels) + BLANK_TOKEN,
        "puzzle_identifiers": np.zeros(num_puzzles, dtype=np.int32),
        "puzzle_indices": np.arange(num_puzzles + 1, dtype=np.int32),
        "group_indices": np.arange(0, num_puzzles + 1, 1 + num_aug, dtype=np.int32),
    }


def _metadata(size: int, num_groups: int) -> PuzzleDatasetMetadata:
    return PuzzleDatasetMetadata(
        pad_id=0,
        ignore_label_id=0,
        blank_identifier_id=0,
        vocab_size=size + 2,
        seq_len=size * size,
        num_puzzle_identifiers=1,
        total_groups=num_groups,
        mean_puzzle_examples=1.0,
        sets=["all"],
        total_puzzles=num_groups,  # what TRM writes for Sudoku
    )


def _check_size(size: int) -> None:
    if size not in BOX_SHAPES:
        raise ValueError(f"size must be one of {sorted(BOX_SHAPES)}, got {size}")


def _validate_config(cfg: SudokuBuildConfig) -> None:
    _check_size(cfg.size)
    for name in ("train", "test", "num_aug", "seed"):
        if getattr(cfg, name) < 0:
            raise ValueError(f"{name} must be >= 0, got {getattr(cfg, name)}")
    if cfg.difficulty not in DIFFICULTY_BLANK_FRACTIONS:
        raise ValueError(f"difficulty must be one of {sorted(DIFFICULTY_BLANK_FRACTIONS)}, got {cfg.difficulty!r}")
    most_blanks = cfg.size * cfg.size - MIN_GIVENS[cfg.size]
    if cfg.blanks is not None and not 0 <= cfg.blanks <= most_blanks:
        raise ValueError(
            f"blanks={cfg.blanks} is impossible for {cfg.size}x{cfg.size}: a uniquely solvable puzzle "
            f"keeps at least {MIN_GIVENS[cfg.size]} givens, so blanks must be in 0..{most_blanks}"
        )
    if cfg.from_csv is None:
        for name in ("test_csv", "min_difficulty"):
            if getattr(cfg, name) is not None:
                raise ValueError(f"{name} applies to CSV imports; set from_csv too")
    elif cfg.blanks is not None:
        raise ValueError("blanks applies to generated puzzles, not to a CSV import")


def _target_blanks(cfg: SudokuBuildConfig) -> int:
    """Blanks each generated puzzle aims for; it gets fewer when no further cell can go."""
    if cfg.blanks is not None:
        return cfg.blanks
    return round(DIFFICULTY_BLANK_FRACTIONS[cfg.difficulty] * cfg.size * cfg.size)


def _base_puzzles(cfg: SudokuBuildConfig, report: ProgressCallback) -> tuple[Selection, Selection]:
    """(train, test) base puzzles; test first so train can avoid it."""
    taken_inputs: set[bytes] = set()
    if cfg.from_csv is None:
        geo = _geometry(cfg.size)
        blanks = _target_blanks(cfg)
        test_stream = _generated_candidates(geo, blanks, random.Random(f"hrmkit-sudoku/{cfg.seed}/test"))
        train_stream = _generated_candidates(geo, blanks, random.Random(f"hrmkit-sudoku/{cfg.seed}/train"))
        endless = True
    else:
        puzzles, solutions = read_sudoku_csv(cfg.from_csv, cfg.size, cfg.min_difficulty)
        train_stream = shuffled_rows(puzzles, solutions, np.random.default_rng([cfg.seed, 3]))
        test_stream = train_stream  # without test_csv, test takes the first shuffled rows
        if cfg.test_csv is not None:
            test_rows = read_sudoku_csv(cfg.test_csv, cfg.size, cfg.min_difficulty)
            test_stream = shuffled_rows(*test_rows, np.random.default_rng([cfg.seed, 4]))
        endless = False
    test = _select(test_stream, cfg.test, taken_inputs, lambda solution: False, endless, report, "test puzzles")
    forbidden = _solution_filter(test.labels, cfg.disjoint_solutions)
    train = _select(train_stream, cfg.train, taken_inputs, forbidden, endless, report, "train puzzles")
    if cfg.from_csv is not None and cfg.train > 0 and not train.inputs:
        raise ValueError(f"{cfg.from_csv}: no rows left for the train split")
    return train, test


def _select(candidates, count: int, taken_inputs: set[bytes], forbidden_solution: Callable[[np.ndarray], bool],
            endless: bool, report: ProgressCallback, description: str) -> Selection:
    """Candidates whose input is new (``taken_inputs`` grows) and whose solution is allowed."""

    def rejection(puzzle: np.ndarray, solution: np.ndarray) -> str | None:
        if puzzle.tobytes() in taken_inputs:
            return _REPEATED_INPUT
        return _HELD_OUT_SOLUTION if forbidden_solution(solution) else None

    return select(candidates, count, rejection, lambda puzzle: taken_inputs.add(puzzle.tobytes()), endless, report,
                  description, lambda selection: _impossible_request_message(description, count, selection))


def _blank_stats(selection: Selection) -> dict[str, float] | None:
    if not selection.inputs:
        return None
    return spread(np.sum(np.stack(selection.inputs) == 0, axis=1))


def build_sudoku(
    cfg: SudokuBuildConfig,
    out_dir: str | Path,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    """Build a train/test Sudoku dataset at `out_dir`; returns the summary also saved in hrmkit_build.json."""
    started = time.perf_counter()
    _validate_config(cfg)
    out_dir = check_output_free(out_dir, overwrite)
    report = progress or (lambda description, completed, total: None)
    train, test = _base_puzzles(cfg, report)
    test_inputs = {puzzle.tobytes() for puzzle in test.inputs}
    augment_rng = np.random.default_rng([cfg.seed, 2])
    test_solutions = {solution.tobytes() for solution in test.labels} if cfg.disjoint_solutions else set()
    train_arrays = _split_arrays(train, cfg.size, cfg.num_aug, augment_rng, test_inputs, test_solutions, report)
    test_arrays = _split_arrays(test, cfg.size, 0, augment_rng, set(), set(), report)
    summary: dict[str, Any] = {
        "builder": BUILDER,
        "config": asdict(cfg),
        "source": "csv" if cfg.from_csv else "generated",
        "train_puzzles": len(train.inputs),
        "train_examples": len(train_arrays["inputs"]),
        "test_puzzles": len(test.inputs),
        "blanks": {"train": _blank_stats(train), "test": _blank_stats(test)},
        "solution_overlap": _solution_overlap(train_arrays["labels"], test_arrays["labels"]),
        "rejected": {
            "train_duplicate_inputs": train.rejected[_REPEATED_INPUT],
            "test_duplicate_inputs": test.rejected[_REPEATED_INPUT],
            "train_solutions_in_test": train.rejected[_HELD_OUT_SOLUTION],
        },
    }
    summary["seconds"] = round(time.perf_counter() - started, 3)
    return write_generated_dataset(out_dir, train_arrays, test_arrays, _metadata(cfg.size, len(train.inputs)),
                                   _metadata(cfg.size, len(test.inputs)), summary, overwrite, report)
