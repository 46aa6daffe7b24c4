"""Sudoku datasets (4x4, 6x6, 9x9) in the reference puzzle format: generate or import, augment, write.

Tokens follow the reference: 0 pad, 1 blank, digit d -> d + 1. Every base puzzle and its
`num_aug` shuffled variants form one group; each variant is one puzzle with one example.
Generated puzzles have exactly one solution. The test split is never augmented.
"""

from __future__ import annotations

import dataclasses
import functools
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from hrmkit.puzzles.build import (
    BuildRun,
    blank_identifier_metadata,
    require_at_least,
    uniform_arrays,
)
from hrmkit.puzzles.format import PuzzleDatasetMetadata
from hrmkit.puzzles.selection import (
    MAX_CONSECUTIVE_REJECTIONS,
    ProgressCallback,
    Selection,
    csv_table,
    imported_streams,
    require_imported_rows,
    select,
    spread,
)
from hrmkit.puzzles.sudoku import (
    BLANK_TOKEN,
    BOX_SHAPES,
    MIN_GIVENS,
    apply_symmetries,
    check_size,
    generate_puzzle,
    random_symmetries,
    shuffle_sudoku,
    unit_cells,
)

DIFFICULTY_BLANK_FRACTIONS = {"easy": 0.40, "medium": 0.55, "hard": 0.70}
DEFAULT_SIZE = 9  # Sudoku-Extreme's, the reference's

# Why a candidate puzzle is turned down (counted in the build summary).
_REPEATED_INPUT = "repeated input"
_HELD_OUT_SOLUTION = "held-out solution"

# Written into hrmkit_build.json; a stable identifier (older datasets carry it), not a module path.
BUILDER = "hrmkit.data.sudoku"


@dataclass
class SudokuBuildConfig:
    """What `build_sudoku` makes."""

    size: Literal[4, 6, 9] | None = None
    """Grid side: 4 (2x2 boxes), 6 (2x3 boxes) or 9 (3x3 boxes). Unset: 9 when generating, the CSV's own
    size when importing."""
    train: int = 1000
    """Base training puzzles (with a CSV: at most this many, a random subset)."""
    test: int = 200
    """Test puzzles (with a CSV: at most this many, a random subset)."""
    num_aug: int = 0
    """Shuffled variants added to each training puzzle's group."""
    seed: int = 0
    """Seed for everything random; the same seed builds the same bytes."""
    difficulty: Literal["easy", "medium", "hard"] = "medium"
    """easy, medium or hard: the fraction of cells blanked when generating."""
    blanks: int | None = None
    """Blanks per generated puzzle, overriding difficulty: cells are blanked in a random order while the
    solution stays unique, so a puzzle keeps more givens when no further cell can go (the build says so)."""
    disjoint_solutions: bool = False
    """No test solution appears in train, not even as an augmented variant."""
    from_csv: str | None = None
    """Import puzzles from a reference-layout CSV (source,question,answer,rating, as Sudoku-Extreme ships;
    q,a also read) instead of generating."""
    test_csv: str | None = None
    """CSV for the test split; without it the test split is drawn from from_csv."""
    min_difficulty: int | None = None
    """Keep only CSV rows whose rating is at least this."""


def _generated_candidates(size: int, target_blanks: int, rnd: random.Random) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    while True:
        puzzle, solution = generate_puzzle(size, target_blanks, rnd)
        yield np.array(puzzle, dtype=np.uint8), np.array(solution, dtype=np.uint8)


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


def _csv_question_answer(path: str) -> tuple[list[str], Iterator[tuple[int, list[str]]], int, int]:
    """(header, rows, question column, answer column) of a Sudoku CSV."""
    header, rows = csv_table(path)
    # Sudoku-Extreme's files name them question and answer; the reference reads them by position.
    q_at = next((header.index(name) for name in ("question", "q") if name in header), None)
    a_at = next((header.index(name) for name in ("answer", "a") if name in header), None)
    if q_at is None or a_at is None:
        raise ValueError(f"{path}:1: header must name columns question and answer, or q and a "
                         "(reference layout: source,question,answer,rating)")
    return header, rows, q_at, a_at


def csv_sudoku_size(path: str) -> int:
    """The grid side of the CSV's first row (4, 6 or 9); the rows after it are checked against it as they
    are read. ValueError naming the file when it has no rows, or the line when the side is none of those."""
    _, rows, q_at, _ = _csv_question_answer(path)
    line_number, row = next(rows, (None, None))
    if row is None:
        raise ValueError(f"{path}: no rows to read the Sudoku size from")
    side = next((side for side in BOX_SHAPES if side * side == len(row[q_at])), None)
    if side is None:
        raise ValueError(f"{path}:{line_number}: column q has {len(row[q_at])} characters, which is no "
                         f"Sudoku size ({', '.join(f'{s * s} for {s}x{s}' for s in BOX_SHAPES)})")
    return side


def _read_csv_rows(path: str, size: int, min_difficulty: int | None) -> tuple[list[str], list[str], list[int]]:
    header, rows, q_at, a_at = _csv_question_answer(path)
    if min_difficulty is not None and "rating" not in header:
        raise ValueError(f"{path}:1: min_difficulty needs a rating column")
    rating_at = header.index("rating") if "rating" in header else None
    questions, answers, line_numbers = [], [], []
    for line_number, row in rows:
        if min_difficulty is not None and _rating(row[rating_at], path, line_number) < min_difficulty:
            continue
        for column, text in (("q", row[q_at]), ("a", row[a_at])):
            if len(text) != size * size or not text.isascii():
                other = [side for side in BOX_SHAPES if side * side == len(text) and side != size]
                hint = f" (a {other[0]}x{other[0]} grid: give --size {other[0]})" if other else ""
                raise ValueError(
                    f"{path}:{line_number}: column {column} must be {size * size} ASCII characters "
                    f"for size {size}, got {len(text)}{hint}"
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


def _check_csv_pairs(puzzles: np.ndarray, solutions: np.ndarray, size: int, path: str, line_numbers: list[int]) -> None:
    in_units = np.sort(solutions[:, unit_cells(size)], axis=2)
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
    check_size(size)
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
    cell_maps, digit_maps = random_symmetries(size, num_aug, rng)
    inputs = np.concatenate([puzzle[None], apply_symmetries(puzzle, cell_maps, digit_maps)])
    labels = np.concatenate([solution[None], apply_symmetries(solution, cell_maps, digit_maps)])
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
    return uniform_arrays(np.concatenate(inputs) + BLANK_TOKEN, np.concatenate(labels) + BLANK_TOKEN,
                          examples_per_puzzle=1, puzzles_per_group=1 + num_aug)


def _metadata(size: int, num_groups: int) -> PuzzleDatasetMetadata:
    # total_puzzles: TRM writes the number of groups for Sudoku.
    return blank_identifier_metadata(size + 2, size * size, num_groups, total_puzzles=num_groups)


def _with_size(cfg: SudokuBuildConfig) -> SudokuBuildConfig:
    """`cfg` with its size set: as given, else 9 when generating or the first CSV row's when importing."""
    if cfg.size is not None:
        return cfg
    return dataclasses.replace(cfg, size=csv_sudoku_size(cfg.from_csv) if cfg.from_csv else DEFAULT_SIZE)


def _validate_config(cfg: SudokuBuildConfig) -> None:
    check_size(cfg.size)
    require_at_least(1, cfg, ("train", "test"))
    require_at_least(0, cfg, ("num_aug", "seed"))
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


def _blanks_short_of_target(target: int, splits: dict[str, Selection]) -> list[str]:
    """A note when generated puzzles kept more givens than asked: blanking stops where any further blank
    would admit a second solution, which one random order of cells reaches well before the fewest givens."""
    parts = []
    for split, selection in splits.items():
        blanks = np.sum(np.stack(selection.inputs) == 0, axis=1) if selection.inputs else np.zeros(0)
        short = blanks[blanks < target]
        if len(short):
            span = f"{short.min()}" if short.min() == short.max() else f"{short.min()}-{short.max()}"
            parts.append(f"{len(short)} of {len(blanks)} {split} puzzles have {span} blanks")
    if not parts:
        return []
    return [f"{target} blanks per puzzle asked, but blanking more cells would have made the solution ambiguous: "
            f"{'; '.join(parts)}; ask for fewer, or import harder puzzles with --from-csv"]


def _base_puzzles(cfg: SudokuBuildConfig, report: ProgressCallback) -> tuple[Selection, Selection]:
    """(train, test) base puzzles; test first so train can avoid it."""
    taken_inputs: set[bytes] = set()
    if cfg.from_csv is None:
        blanks = _target_blanks(cfg)
        test_stream = _generated_candidates(cfg.size, blanks, random.Random(f"hrmkit-sudoku/{cfg.seed}/test"))
        train_stream = _generated_candidates(cfg.size, blanks, random.Random(f"hrmkit-sudoku/{cfg.seed}/train"))
        endless = True
    else:
        read = functools.partial(read_sudoku_csv, size=cfg.size, min_difficulty=cfg.min_difficulty)
        train_stream, test_stream = imported_streams(read, cfg.from_csv, cfg.test_csv, cfg.seed)
        endless = False
    test = _select(test_stream, cfg.test, taken_inputs, lambda solution: False, endless, report, "test puzzles")
    forbidden = _solution_filter(test.labels, cfg.disjoint_solutions)
    train = _select(train_stream, cfg.train, taken_inputs, forbidden, endless, report, "train puzzles")
    if cfg.from_csv is not None:
        require_imported_rows(train, test, cfg.from_csv, cfg.test_csv)
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
    """Build a train/test Sudoku dataset at `out_dir`; returns the summary saved in hrmkit_build.json
    with the seconds taken added (they are not saved, so the same seed builds the same bytes)."""
    cfg = _with_size(cfg)
    _validate_config(cfg)
    run = BuildRun.start(BUILDER, cfg, out_dir, overwrite, progress)
    train, test = _base_puzzles(cfg, run.report)
    test_inputs = {puzzle.tobytes() for puzzle in test.inputs}
    augment_rng = np.random.default_rng([cfg.seed, 2])
    test_solutions = {solution.tobytes() for solution in test.labels} if cfg.disjoint_solutions else set()
    train_arrays = _split_arrays(train, cfg.size, cfg.num_aug, augment_rng, test_inputs, test_solutions, run.report)
    test_arrays = _split_arrays(test, cfg.size, 0, augment_rng, set(), set(), run.report)
    summary = run.summary({
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
        "notes": [] if cfg.from_csv else _blanks_short_of_target(_target_blanks(cfg), {"train": train, "test": test}),
    })
    metadata = {"train": _metadata(cfg.size, len(train.inputs)), "test": _metadata(cfg.size, len(test.inputs))}
    return run.write({"train": train_arrays, "test": test_arrays}, metadata, summary)
