"""Maze datasets in the reference puzzle format: generate or import, augment, write.

Generated mazes start as a random perfect maze (Kruskal on the lattice of odd-coordinate
cells inside a one-cell wall border), then `extra_openings` of the remaining walls between
two open cells are knocked out, so most mazes have loops and several routes. Any size >= 5
works: an even size leaves its last interior row and column as wall, so a 30x30 maze (the
reference Maze-Hard shape, seq_len 900) is a 29x29 maze with a thicker bottom/right border.

Augmented variants (the 8 dihedral transforms, one group per base maze) carry the
transformed path, which is still a shortest path of the transformed maze, though not
necessarily the one BFS would pick there (see maze.py). The test split is never augmented,
and no test input appears anywhere in train.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hrmkit.puzzles.build import (
    BuildRun,
    blank_identifier_metadata,
    require_at_least,
    uniform_arrays,
)
from hrmkit.puzzles.format import PuzzleDatasetMetadata
from hrmkit.puzzles.grid import dihedral_transform
from hrmkit.puzzles.maze import (
    CHARSET,
    GOAL,
    OPEN,
    PATH,
    START,
    VOCAB_SIZE,
    WALL,
    is_valid_path,
    label_for,
    path_length,
)
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

MIN_SIZE = 5  # the smallest grid with a wall border and more than one lattice cell per side
DEFAULT_SIZE = 30  # generated mazes, when no size is given: the reference Maze-Hard shape

# Byte -> token; 0 (pad) marks a byte outside CHARSET, since pad never appears in a maze.
_CHAR_TO_TOKEN = np.zeros(256, dtype=np.uint8)
_CHAR_TO_TOKEN[np.frombuffer(CHARSET.encode(), dtype=np.uint8)] = np.arange(1, len(CHARSET) + 1)

# Why a candidate maze is turned down (counted in the build summary).
_REPEATED_INPUT = "repeated input"
_SHORT_PATH = "short path"

# Written into hrmkit_build.json; a stable identifier (older datasets carry it), not a module path.
BUILDER = "hrmkit.data.maze"


@dataclass
class MazeBuildConfig:
    """What `build_maze` makes."""

    size: int | None = None
    """Grid side (>= 5); odd sizes use every row, even ones leave the last interior row and column as wall.
    Unset: 30 when generating, the CSV's own size when importing."""
    train: int = 1000
    """Base training mazes (with a CSV: at most this many, a random subset)."""
    test: int = 1000
    """Test mazes (with a CSV: at most this many, a random subset)."""
    min_path_length: int = 0
    """Keep only mazes whose shortest S->G path takes at least this many steps."""
    aug: bool = False
    """Add the 8 dihedral transforms of each training maze as one group (test is never augmented)."""
    seed: int = 0
    """Seed for everything random; the same seed builds the same bytes."""
    extra_openings: float = 0.2
    """Fraction of the perfect maze's remaining inner walls knocked out, making loops (generated mazes only)."""
    from_csv: str | None = None
    """Import mazes from a reference-layout CSV (source,question,answer,rating) instead of generating."""
    test_csv: str | None = None
    """CSV for the test split; without it the test split is drawn from from_csv."""


# --------------------------------------------------------------------------- generator


@dataclass(frozen=True)
class _Lattice:
    cells: np.ndarray  # flat grid positions of the lattice cells (odd row, odd column)
    edges: list[tuple[int, int, int]]  # (lattice cell a, lattice cell b, flat wall position between them)


@functools.lru_cache(maxsize=None)
def _lattice(size: int) -> _Lattice:
    coordinates = np.arange(1, size - 1, 2)
    side = len(coordinates)
    cells = (coordinates[:, None] * size + coordinates[None, :]).reshape(-1)
    edges = []
    for row in range(side):
        for column in range(side):
            here = row * side + column
            if column + 1 < side:
                edges.append((here, here + 1, int(cells[here]) + 1))
            if row + 1 < side:
                edges.append((here, here + side, int(cells[here]) + size))
    return _Lattice(cells=cells, edges=edges)


def _find(roots: list[int], node: int) -> int:
    while roots[node] != node:
        roots[node] = roots[roots[node]]  # path halving keeps the trees shallow
        node = roots[node]
    return node


def _perfect_maze(size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(flat WALL/OPEN grid of a random spanning-tree maze, flat positions of the walls it kept between cells)."""
    lattice = _lattice(size)
    grid = np.full(size * size, WALL, dtype=np.uint8)
    grid[lattice.cells] = OPEN
    roots = list(range(len(lattice.cells)))
    kept_walls = []
    for edge in rng.permutation(len(lattice.edges)).tolist():
        a, b, wall = lattice.edges[edge]
        root_a, root_b = _find(roots, a), _find(roots, b)
        if root_a == root_b:
            kept_walls.append(wall)  # opening it would close a loop: that is what extra_openings is for
        else:
            roots[root_a] = root_b
            grid[wall] = OPEN
    return grid, np.array(kept_walls, dtype=np.int64)


def _random_maze(size: int, extra_openings: float, rng: np.random.Generator) -> np.ndarray:
    """A flat token maze with loops and a random S and G on distinct open cells."""
    grid, kept_walls = _perfect_maze(size, rng)
    grid[rng.choice(kept_walls, round(extra_openings * len(kept_walls)), replace=False)] = OPEN
    start, goal = rng.choice(np.flatnonzero(grid == OPEN), 2, replace=False)
    grid[start], grid[goal] = START, GOAL
    return grid


def _generated_candidates(
    size: int, extra_openings: float, rng: np.random.Generator
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    while True:
        inputs = _random_maze(size, extra_openings, rng)
        labels = label_for(inputs, size)
        # Every open cell of a generated maze is connected; checking the label guards the generator.
        if labels is None or not is_valid_path(inputs, labels, size):
            raise RuntimeError("generated a maze whose label is not a shortest S->G path")
        yield inputs, labels


# --------------------------------------------------------------------------- augmentation


def _as_is(flat: np.ndarray) -> np.ndarray:
    """[1, size*size]: the grid alone, for splits without augmentation."""
    return flat[None]


def _dihedral_variants(flat: np.ndarray, size: int) -> np.ndarray:
    """[8, size*size]: every dihedral transform of one flat grid."""
    square = flat.reshape(size, size)
    return np.stack([dihedral_transform(square, index).reshape(-1) for index in range(8)])


# --------------------------------------------------------------------------- CSV import


def _csv_error(path: str, line_number: int, problem: str) -> ValueError:
    return ValueError(f"{path}:{line_number}: {problem}")


def _grid_side(text: str, column: str, path: str, line_number: int) -> int:
    side = math.isqrt(len(text))
    if side * side != len(text) or not text:
        raise _csv_error(path, line_number, f"{column} has {len(text)} characters, not a square grid")
    return side


def _parse_grid(text: str, column: str, size: int, path: str, line_number: int) -> np.ndarray:
    side = _grid_side(text, column, path, line_number)
    if side != size:
        raise _csv_error(path, line_number, f"{column} is a {side}x{side} maze but size is {size}")
    # One byte per character; anything outside Latin-1 becomes '?', which maps to 0 like any stranger.
    raw = np.frombuffer(text.encode("latin-1", errors="replace"), dtype=np.uint8)
    tokens = _CHAR_TO_TOKEN[raw]
    if not tokens.all():
        position = int(np.argmin(tokens))
        problem = f"{column} has {text[position]!r} at position {position}; allowed: {CHARSET!r}"
        raise _csv_error(path, line_number, problem)
    return tokens


def _check_csv_pair(question: np.ndarray, answer: np.ndarray, size: int, path: str, line_number: int) -> None:
    for token in (START, GOAL):
        if np.count_nonzero(question == token) != 1:
            raise _csv_error(path, line_number, f"question must have exactly one {CHARSET[token - 1]!r}")
    if np.any(question == PATH):
        raise _csv_error(path, line_number, "question must not contain path cells 'o'")
    if not is_valid_path(question, answer, size):
        raise _csv_error(path, line_number, "answer is not the question with one shortest S->G path marked 'o'")


def _csv_grids(path: str) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, {"question": text, "answer": text}) of each row of a reference-layout CSV."""
    header, rows = csv_table(path)
    if "question" not in header or "answer" not in header:
        raise _csv_error(path, 1, "header must name columns question and answer (source,question,answer,rating)")
    question_at, answer_at = header.index("question"), header.index("answer")
    for line_number, row in rows:
        yield line_number, {"question": row[question_at], "answer": row[answer_at]}


def read_maze_csv(path: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, labels) as [rows, size*size] uint8 tokens from a reference-layout CSV.

    The reference layout is `source,question,answer,rating`, each grid a string of size*size
    characters from "# SGo". Every answer must mark one shortest S->G path of its question.
    """
    _check_size(size)
    inputs, labels = [], []
    for line_number, grids in _csv_grids(path):
        question = _parse_grid(grids["question"], "question", size, path, line_number)
        answer = _parse_grid(grids["answer"], "answer", size, path, line_number)
        _check_csv_pair(question, answer, size, path, line_number)
        inputs.append(question)
        labels.append(answer)
    return _stack(inputs, size), _stack(labels, size)


def csv_maze_size(paths: list[str]) -> int:
    """The grid side that every question and answer of the CSVs `paths` shares; ValueError naming the first
    grid that differs from the first row's, or the first file when there are no rows."""
    first = None
    for path in paths:
        for line_number, grids in _csv_grids(path):
            for column, text in grids.items():
                side = _grid_side(text, column, path, line_number)
                if first is None:
                    first = side, f"{path}:{line_number}"
                elif side != first[0]:
                    problem = f"{column} is a {side}x{side} maze but {first[1]} holds a {first[0]}x{first[0]} one"
                    raise _csv_error(path, line_number, problem)
    if first is None:
        raise ValueError(f"{paths[0]}: no rows to read the maze size from")
    return first[0]


def _stack(grids: list[np.ndarray], size: int) -> np.ndarray:
    return np.stack(grids) if grids else np.zeros((0, size * size), dtype=np.uint8)


# --------------------------------------------------------------------------- building


def _split_arrays(selection: Selection, size: int, aug: bool) -> dict[str, np.ndarray]:
    """The five reference arrays: one group per base maze, one example per puzzle."""
    if aug:
        inputs = [_dihedral_variants(grid, size) for grid in selection.inputs]
        labels = [_dihedral_variants(grid, size) for grid in selection.labels]
    else:
        inputs = [grid[None] for grid in selection.inputs]
        labels = [grid[None] for grid in selection.labels]
    empty = np.zeros((0, size * size), dtype=np.uint8)
    return uniform_arrays(np.concatenate([empty, *inputs]), np.concatenate([empty, *labels]),
                          examples_per_puzzle=1, puzzles_per_group=8 if aug else 1)


def _metadata(size: int, num_groups: int) -> PuzzleDatasetMetadata:
    # total_puzzles: TRM writes the number of groups for mazes.
    return blank_identifier_metadata(VOCAB_SIZE, size * size, num_groups, total_puzzles=num_groups)


def _check_size(size: int) -> None:
    if not isinstance(size, int) or size < MIN_SIZE:
        raise ValueError(f"size must be an integer >= {MIN_SIZE}, got {size!r}")


def _with_size(cfg: MazeBuildConfig) -> MazeBuildConfig:
    """`cfg` with its size set: as given, else DEFAULT_SIZE when generating or the CSVs' own when importing."""
    if cfg.size is not None:
        return cfg
    if cfg.from_csv is None:
        return dataclasses.replace(cfg, size=DEFAULT_SIZE)
    return dataclasses.replace(cfg, size=csv_maze_size([path for path in (cfg.from_csv, cfg.test_csv) if path]))


def _validate_config(cfg: MazeBuildConfig) -> None:
    _check_size(cfg.size)
    require_at_least(1, cfg, ("train", "test"))
    require_at_least(0, cfg, ("seed", "min_path_length"))
    if cfg.min_path_length >= cfg.size * cfg.size:
        raise ValueError(f"min_path_length={cfg.min_path_length} cannot fit in a {cfg.size}x{cfg.size} grid")
    if not 0.0 <= cfg.extra_openings <= 1.0:
        raise ValueError(f"extra_openings must be a fraction in [0, 1], got {cfg.extra_openings}")
    if cfg.test_csv is not None and cfg.from_csv is None:
        raise ValueError("test_csv applies to CSV imports; set from_csv too")


def _select(candidates, count: int, taken_inputs: set[bytes], min_path_length: int,
            variants: Callable[[np.ndarray], np.ndarray], endless: bool, report: ProgressCallback,
            description: str) -> Selection:
    """Mazes long enough whose input (and every variant of it) is new; ``taken_inputs`` grows
    with the variants of every kept input, so a later split never repeats a grid of an earlier one."""

    def rejection(inputs: np.ndarray, labels: np.ndarray) -> str | None:
        if path_length(labels) < min_path_length:
            return _SHORT_PATH
        return _REPEATED_INPUT if any(grid.tobytes() in taken_inputs for grid in variants(inputs)) else None

    def impossible(selection: Selection) -> str:
        return (f"{description}: made {len(selection.inputs)} of {count}, then {MAX_CONSECUTIVE_REJECTIONS} "
                f"mazes in a row were turned down ({selection.rejected[_SHORT_PATH]} so far shorter than "
                f"min_path_length={min_path_length}, {selection.rejected[_REPEATED_INPUT]} already taken); "
                "lower min_path_length, ask for fewer mazes or use a larger size")

    return select(candidates, count, rejection, lambda inputs: taken_inputs.update(g.tobytes() for g in variants(inputs)),
                  endless, report, description, impossible)


def _base_mazes(cfg: MazeBuildConfig, report: ProgressCallback) -> tuple[Selection, Selection]:
    """(train, test) base mazes; test first so train can avoid every test grid."""
    if cfg.from_csv is None:
        test_stream = _generated_candidates(cfg.size, cfg.extra_openings, np.random.default_rng([cfg.seed, 0]))
        train_stream = _generated_candidates(cfg.size, cfg.extra_openings, np.random.default_rng([cfg.seed, 1]))
        endless = True
    else:
        read = functools.partial(read_maze_csv, size=cfg.size)
        train_stream, test_stream = imported_streams(read, cfg.from_csv, cfg.test_csv, cfg.seed)
        endless = False
    taken_inputs: set[bytes] = set()
    train_variants = functools.partial(_dihedral_variants, size=cfg.size) if cfg.aug else _as_is
    test = _select(test_stream, cfg.test, taken_inputs, cfg.min_path_length, _as_is, endless, report, "test mazes")
    train = _select(
        train_stream, cfg.train, taken_inputs, cfg.min_path_length, train_variants, endless, report, "train mazes"
    )
    if cfg.from_csv is not None:
        require_imported_rows(train, test, cfg.from_csv, cfg.test_csv)
    return train, test


def _path_stats(selection: Selection) -> dict[str, float] | None:
    if not selection.labels:
        return None
    return spread(np.array([path_length(labels) for labels in selection.labels]))


def build_maze(
    cfg: MazeBuildConfig,
    out_dir: str | Path,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    """Build a train/test maze dataset at `out_dir`; returns the summary saved in hrmkit_build.json
    with the seconds taken added (they are not saved, so the same seed builds the same bytes).
    The saved config holds the size built, also where `cfg` leaves it unset."""
    cfg = _with_size(cfg)
    _validate_config(cfg)
    run = BuildRun.start(BUILDER, cfg, out_dir, overwrite, progress)
    train, test = _base_mazes(cfg, run.report)
    train_arrays = _split_arrays(train, cfg.size, cfg.aug)
    test_arrays = _split_arrays(test, cfg.size, aug=False)
    summary = run.summary({
        "source": "csv" if cfg.from_csv else "generated",
        "train_groups": len(train.inputs),
        "train_examples": len(train_arrays["inputs"]),
        "test_puzzles": len(test.inputs),
        "path_length": {"train": _path_stats(train), "test": _path_stats(test)},
        "rejected": {
            "train_inputs_already_taken": train.rejected[_REPEATED_INPUT],
            "test_inputs_already_taken": test.rejected[_REPEATED_INPUT],
            "train_paths_too_short": train.rejected[_SHORT_PATH],
            "test_paths_too_short": test.rejected[_SHORT_PATH],
        },
    })
    metadata = {"train": _metadata(cfg.size, len(train.inputs)), "test": _metadata(cfg.size, len(test.inputs))}
    return run.write({"train": train_arrays, "test": test_arrays}, metadata, summary)
