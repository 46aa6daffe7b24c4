"""Audit a puzzle dataset beyond the structural validation of `load_split`.

`check_dataset` runs every check and keeps going after failures, so one report names every
fault: per-split structure, train/test input overlap, augmentation group sizes, label
distribution, and for Sudoku, maze and routing datasets whether every label is a correct answer
(for routing: a legal S->G route for the example's vehicle, as cheap as the A* oracle's). ARC
datasets get a layout check of every grid (one colour rectangle, its EOS border, pad elsewhere),
the builders' translation rule per puzzle, and a check of identifiers.json and test_puzzles.json.
Big splits are memory-mapped, so every pass over examples reads `CHUNK_ROWS` rows at a time.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hrmkit.config_base import atomic_write_text
from hrmkit.data import arc, routing
from hrmkit.data.maze import GOAL, OPEN, PATH, START, VOCAB_SIZE as MAZE_VOCAB_SIZE, shortest_path
from hrmkit.data.grid import reachable_cells
from hrmkit.data.puzzle_format import DatasetError, PuzzleSplit, load_split
from hrmkit.data.sudoku import BLANK_TOKEN, BOX_SHAPES
from hrmkit.data.selection import spread

CHUNK_ROWS = 65_536
STANDARD_SPLITS = ("train", "test")
SUDOKU_BUILDER = "hrmkit.data.sudoku"
MAZE_BUILDER = "hrmkit.data.maze"
ROUTING_BUILDER = "hrmkit.data.routing"
ARC_BUILDER = arc.BUILDER
MAX_LISTED = 3  # faults named in one check's line; the rest are counted


@dataclass
class Check:
    """One named check: whether it passed and a one-line explanation."""

    name: str
    ok: bool
    detail: str


@dataclass
class CheckReport:
    """Every check run on the dataset at `root`, plus per-split statistics."""

    root: str
    checks: list[Check] = field(default_factory=list)
    stats: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)

    @property
    def failed(self) -> list[str]:
        return [check.name for check in self.checks if not check.ok]

    def to_json(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "ok": self.ok,
            "failed": self.failed,
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks],
            "stats": self.stats,
        }

    def format(self) -> str:
        width = max((len(check.name) for check in self.checks), default=0)
        lines = [f"dataset check: {self.root}"]
        lines += [f"  {'PASS' if c.ok else 'FAIL'}  {c.name:<{width}}  {c.detail}" for c in self.checks]
        for split, split_stats in self.stats.items():
            lines.append(f"stats [{split}]")
            lines += [f"  {key}: {value}" for key, value in split_stats.items()]
        lines.append("OK" if self.ok else f"FAILED: {', '.join(self.failed)}")
        return "\n".join(lines)


# --------------------------------------------------------------------------- reading in chunks


def _row_chunks(split: PuzzleSplit, array_name: str) -> Iterator[tuple[int, np.ndarray]]:
    """(index of the first row across all sets, rows) for one array of every set, in metadata order."""
    offset = 0
    for set_name in split.metadata.sets:
        array = split.sets[set_name][array_name]
        for start in range(0, len(array), CHUNK_ROWS):
            yield offset + start, np.asarray(array[start : start + CHUNK_ROWS])
        offset += len(array)


def _paired_chunks(split: PuzzleSplit) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    for (start, inputs), (_, labels) in zip(_row_chunks(split, "inputs"), _row_chunks(split, "labels")):
        yield start, inputs, labels


def _histogram(split: PuzzleSplit, array_name: str) -> dict[int, int]:
    counts: Counter[int] = Counter()
    for _, chunk in _row_chunks(split, array_name):
        tokens, token_counts = np.unique(chunk, return_counts=True)
        counts.update(dict(zip(tokens.tolist(), token_counts.tolist())))
    return dict(sorted(counts.items()))


def _row_digests(split: PuzzleSplit, with_labels: bool = False) -> Iterator[bytes]:
    """A digest per example of its input row, or of its (input, label) pair."""
    if with_labels:
        chunks = ((inputs, labels) for _, inputs, labels in _paired_chunks(split))
    else:
        chunks = ((inputs, None) for _, inputs in _row_chunks(split, "inputs"))
    for inputs, labels in chunks:
        # One dtype for both splits, so equal tokens hash equal whatever each file stores.
        rows = np.ascontiguousarray(inputs if labels is None else np.concatenate([inputs, labels], axis=1),
                                    dtype=np.int64)
        for row in rows:
            yield hashlib.blake2b(row.tobytes(), digest_size=16).digest()


# --------------------------------------------------------------------------- generic checks


def _split_names(root: Path) -> list[str]:
    """train and test always (a missing one is a fault), plus any other folder holding a dataset.json."""
    found = {path.name for path in root.iterdir() if (path / "dataset.json").is_file()} if root.is_dir() else set()
    return [*STANDARD_SPLITS, *sorted(found - set(STANDARD_SPLITS))]


def _structure_check(root: Path, split_name: str) -> tuple[Check, PuzzleSplit | None]:
    name = f"structure:{split_name}"
    try:
        split = load_split(root, split_name)
    except DatasetError as error:
        return Check(name, False, str(error)), None
    summary = f"{split.num_examples()} examples, {split.num_groups} groups, sets {split.metadata.sets}"
    return Check(name, True, summary), split


def _shared_rows(train: PuzzleSplit, test: PuzzleSplit, with_labels: bool) -> int:
    train_digests = set(_row_digests(train, with_labels))
    return sum(digest in train_digests for digest in _row_digests(test, with_labels))


def _overlap_check(train: PuzzleSplit, test: PuzzleSplit, arc_like: bool = False) -> Check:
    shared = _shared_rows(train, test, with_labels=False)
    detail = f"{shared} of {test.num_examples()} test inputs also occur in train"
    if not arc_like or shared == 0:
        return Check("overlap:train/test", shared == 0, detail)
    # ARC-AGI itself repeats some grids across tasks (an evaluation task's test input can be another
    # task's demo input), so for ARC only a test input seen in train *with the same answer* leaks.
    leaked = _shared_rows(train, test, with_labels=True)
    return Check("overlap:train/test", leaked == 0,
                 f"{detail} (ARC-AGI repeats grids across tasks); {leaked} of them with the same answer")


def _group_sizes(split: PuzzleSplit) -> tuple[np.ndarray, np.ndarray]:
    """Puzzles and examples in each group of every set."""
    puzzles, examples = [], []
    for arrays in split.sets.values():
        group_bounds = np.asarray(arrays["group_indices"], dtype=np.int64)
        example_bounds = np.asarray(arrays["puzzle_indices"], dtype=np.int64)[group_bounds]
        puzzles.append(np.diff(group_bounds))
        examples.append(np.diff(example_bounds))
    return np.concatenate(puzzles), np.concatenate(examples)


def _spread(values: np.ndarray) -> dict[str, float]:
    return spread(values) if values.size else {"min": 0, "mean": 0.0, "max": 0}


def _augmentation_check(split_name: str, puzzles_per_group: np.ndarray) -> Check:
    spread = _spread(puzzles_per_group)
    empty = int(np.count_nonzero(puzzles_per_group == 0))
    detail = f"puzzles per group min {spread['min']} / mean {spread['mean']} / max {spread['max']}"
    if empty:
        return Check(f"augmentation:{split_name}", False, f"{empty} group(s) hold no puzzle; {detail}")
    # Uneven group sizes are legitimate (e.g. imported data), so they are only reported.
    uneven = " (uneven)" if spread["min"] != spread["max"] else ""
    return Check(f"augmentation:{split_name}", True, detail + uneven)


def _label_check(split_name: str, histogram: dict[int, int], ignore_id: int | None) -> Check:
    name = f"labels:{split_name}"
    if not histogram:
        return Check(name, False, "the split has no labels")
    if len(histogram) == 1:
        token = next(iter(histogram))
        what = "the ignore token" if token == ignore_id else "token"
        return Check(name, False, f"every label is {what} {token}, nothing to learn")
    return Check(name, True, f"{len(histogram)} distinct label tokens")


def _split_stats(split: PuzzleSplit, examples_per_group: np.ndarray, labels: dict, inputs: dict) -> dict[str, Any]:
    return {
        "examples": split.num_examples(),
        "puzzles": split.num_puzzles,
        "groups": split.num_groups,
        "examples_per_group": _spread(examples_per_group),
        # String keys: the stats are written to JSON as they are.
        "label_histogram": {str(token): count for token, count in labels.items()},
        "input_histogram": {str(token): count for token, count in inputs.items()},
    }


# --------------------------------------------------------------------------- Sudoku


def _sudoku_size(seq_len: int) -> int | None:
    size = math.isqrt(seq_len)
    return size if size * size == seq_len and size in BOX_SHAPES else None


def _looks_like_sudoku(split: PuzzleSplit, label_histogram: dict[int, int]) -> bool:
    """A reference-built Sudoku: digits 2..size+1 after pad and blank, and labels fully solved."""
    size = _sudoku_size(split.metadata.seq_len)
    solved = not any(token in label_histogram for token in (0, BLANK_TOKEN))
    return size is not None and split.metadata.vocab_size == size + 2 and solved


def _units(grids: np.ndarray, size: int) -> dict[str, np.ndarray]:
    """[rows, size units, size cells] views of every row, column and box of [rows, size, size] grids."""
    box_rows, box_cols = BOX_SHAPES[size]
    boxes = grids.reshape(-1, size // box_rows, box_rows, size // box_cols, box_cols).transpose(0, 1, 3, 2, 4)
    return {"row": grids, "column": grids.transpose(0, 2, 1), "box": boxes.reshape(-1, size, size)}


def sudoku_label_faults(inputs: np.ndarray, labels: np.ndarray, size: int) -> list[str | None]:
    """For each [seq_len] label row: None if it solves its input, else the first broken rule."""
    grids = labels.reshape(-1, size, size).astype(np.int64)
    digits = np.arange(BLANK_TOKEN + 1, BLANK_TOKEN + size + 1)
    faults: list[str | None] = [None] * len(labels)
    for kind, units in _units(grids, size).items():
        broken = ~(np.sort(units, axis=2) == digits).all(axis=2)  # [rows, units]
        for row in np.flatnonzero(broken.any(axis=1)):
            faults[row] = faults[row] or f"{kind} {int(np.argmax(broken[row]))} is not a permutation"
    givens = inputs != BLANK_TOKEN
    contradicted = (givens & (inputs != labels)).any(axis=1)
    for row in np.flatnonzero(contradicted):
        faults[row] = faults[row] or "disagrees with a given of its input"
    return faults


def _sudoku_check(split_name: str, split: PuzzleSplit) -> Check:
    name = f"sudoku:{split_name}"
    size = _sudoku_size(split.metadata.seq_len)
    if size is None:
        return Check(name, False, f"seq_len {split.metadata.seq_len} is not a 4x4, 6x6 or 9x9 grid")
    bad, first = 0, ""
    for start, inputs, labels in _paired_chunks(split):
        faults = sudoku_label_faults(inputs, labels, size)
        for row, fault in enumerate(faults):
            if fault is not None:
                bad += 1
                first = first or f"; first bad: example {start + row}: {fault}"
    total = split.num_examples()
    return Check(name, bad == 0, f"{total - bad} of {total} labels are valid solutions{first}")


# --------------------------------------------------------------------------- mazes


def path_validity(input_row: Any, label_row: Any, size: int) -> tuple[bool, bool]:
    """(valid, optimal) for a maze answer `label_row` to the maze `input_row` (flat or square tokens).

    Valid: the label is the input with some open cells marked 'o', and those cells form one
    4-connected S->G route (every 'o' is reachable from S through 'o' cells, and G is too).
    Optimal: valid and the route is exactly as long as the BFS shortest path. A malformed
    input (not one S and one G) scores (False, False), so model predictions can be scored blindly.
    """
    inputs = np.asarray(input_row).reshape(-1)
    labels = np.asarray(label_row).reshape(-1)
    if inputs.size != size * size or labels.size != size * size:
        return False, False
    marked = labels == PATH
    if not np.array_equal(np.where(marked, OPEN, labels), inputs):
        return False, False  # something besides open cells changed, or an 'o' sits off an open cell
    starts, goals = np.flatnonzero(inputs == START), np.flatnonzero(inputs == GOAL)
    if len(starts) != 1 or len(goals) != 1:
        return False, False
    reached = reachable_cells(marked | (labels == GOAL), size, int(starts[0]))
    valid = bool(reached[goals[0]]) and bool(reached[marked].all())
    if not valid:
        return False, False
    shortest = shortest_path(inputs, size)
    optimal = shortest is not None and int(marked.sum()) == len(shortest) - 2
    return True, optimal


def _maze_size(seq_len: int) -> int | None:
    size = math.isqrt(seq_len)
    return size if size * size == seq_len else None


def _looks_like_maze(split: PuzzleSplit, input_histogram: dict[int, int]) -> bool:
    """A reference-built maze: the maze vocabulary and exactly one S and one G in every input."""
    if split.metadata.vocab_size != MAZE_VOCAB_SIZE or not set(input_histogram) <= set(range(MAZE_VOCAB_SIZE)):
        return False
    return all(
        ((inputs == START).sum(axis=1) == 1).all() and ((inputs == GOAL).sum(axis=1) == 1).all()
        for _, inputs in _row_chunks(split, "inputs")
    )


def _maze_check(split_name: str, split: PuzzleSplit) -> Check:
    name = f"maze:{split_name}"
    size = _maze_size(split.metadata.seq_len)
    if size is None:
        return Check(name, False, f"seq_len {split.metadata.seq_len} is not a square grid")
    valid_count = optimal_count = 0
    first_invalid = first_detour = None
    for start, inputs, labels in _paired_chunks(split):
        for row, (maze, answer) in enumerate(zip(inputs, labels)):
            valid, optimal = path_validity(maze, answer, size)
            valid_count += valid
            optimal_count += optimal
            if not valid and first_invalid is None:
                first_invalid = start + row
            if valid and not optimal and first_detour is None:
                first_detour = start + row
    total = split.num_examples()
    detail = f"{valid_count} of {total} labels valid, {optimal_count} optimal"
    if first_invalid is not None:
        detail += f"; first invalid: example {first_invalid}"
    if first_detour is not None:
        detail += f"; first non-optimal: example {first_detour}"
    return Check(name, optimal_count == total, detail)


# --------------------------------------------------------------------------- city routing


def _routing_size(seq_len: int) -> int | None:
    """Grid side of a routing row (size*size map cells plus the vehicle token)."""
    size = math.isqrt(max(seq_len - 1, 0))
    return size if size > 0 and size * size == seq_len - 1 else None


def _looks_like_routing(split: PuzzleSplit, input_histogram: dict[int, int]) -> bool:
    """A routing dataset: its vocabulary, a square map plus one position, and a vehicle token last in every input."""
    vehicle_tokens = np.array(sorted(routing.VEHICLE_TOKENS.values()))
    if split.metadata.vocab_size != routing.VOCAB_SIZE or _routing_size(split.metadata.seq_len) is None:
        return False
    if not set(input_histogram) <= set(range(routing.VOCAB_SIZE)):
        return False
    return all(np.isin(inputs[:, -1], vehicle_tokens).all() for _, inputs in _row_chunks(split, "inputs"))


def routing_label_fault(input_row: Any, label_row: Any, size: int) -> tuple[str | None, bool]:
    """(fault, legal) for one routing label: (None, True) when it marks a cost-optimal legal route.

    legal is False for an illegal, disconnected or malformed label; a legal route that costs more
    than the oracle's optimum comes back as (fault, True).
    """
    fault, cost = routing.judge_path(input_row, label_row, size)
    if fault is not None:
        return fault, False
    ignored = int(np.asarray(label_row).reshape(-1)[-1])
    if ignored != 0:
        return f"label at the vehicle position is {ignored}, expected 0 (ignored)", False
    optimum = routing.optimal_cost(input_row, size)
    if cost != optimum:
        return f"route costs {cost} but the optimum is {optimum}", True
    return None, True


def _vehicle_of(input_row: np.ndarray) -> str:
    token = int(input_row[-1])
    return next((name for name, t in routing.VEHICLE_TOKENS.items() if t == token), f"token {token}")


def _routing_check(split_name: str, split: PuzzleSplit) -> Check:
    name = f"routing:{split_name}"
    size = _routing_size(split.metadata.seq_len)
    if size is None:
        return Check(name, False, f"seq_len {split.metadata.seq_len} is not a square map plus a vehicle token")
    legal_count = optimal_count = 0
    first_illegal = first_detour = ""
    for start, inputs, labels in _paired_chunks(split):
        for row, (scenario, answer) in enumerate(zip(inputs, labels)):
            fault, legal = routing_label_fault(scenario, answer, size)
            legal_count += legal
            optimal_count += fault is None
            named = f"example {start + row} ({_vehicle_of(scenario)}): {fault}"
            if not legal and not first_illegal:
                first_illegal = f"; first illegal: {named}"
            if legal and fault is not None and not first_detour:
                first_detour = f"; first non-optimal: {named}"
    total = split.num_examples()
    detail = f"{legal_count} of {total} labels legal routes, {optimal_count} cost-optimal{first_illegal}{first_detour}"
    return Check(name, optimal_count == total, detail)


def routing_path_scores(split: PuzzleSplit, predictions: np.ndarray) -> dict[str, float]:
    """Share of predictions marking a legal route and a cost-optimal one, overall and per vehicle."""
    size = _routing_size(split.metadata.seq_len)
    inputs = np.concatenate([arrays["inputs"] for arrays in split.sets.values()])[: len(predictions)]
    tallies: dict[str, list[int]] = {}  # vehicle -> [examples, legal, optimal]
    for scenario, predicted in zip(inputs, predictions):
        valid, cost = routing.is_legal_path(scenario, predicted, size)
        optimal = valid and cost == routing.optimal_cost(scenario, size)
        tally = tallies.setdefault(_vehicle_of(scenario), [0, 0, 0])
        tally[0], tally[1], tally[2] = tally[0] + 1, tally[1] + valid, tally[2] + optimal
    total = max(sum(t[0] for t in tallies.values()), 1)
    scores = {"valid_path": sum(t[1] for t in tallies.values()) / total,
              "optimal_path": sum(t[2] for t in tallies.values()) / total}
    for vehicle, (examples, valid, optimal) in tallies.items():
        scores[f"valid_path/{vehicle}"] = valid / examples
        scores[f"optimal_path/{vehicle}"] = optimal / examples
    return scores


# --------------------------------------------------------------------------- ARC

_SIDE = arc.MAX_GRID_SIZE
_NAME_SCHEME = f"<task>{arc.ID_SEPARATOR}t<k>{arc.ID_SEPARATOR}<colours>"
_TRANSLATION_RULES = {  # what every puzzle of a split must show, by how the builder translated it
    "example": "keep one example at the top-left (translate example, the reference's rule)",
    "puzzle": "place all their examples at one offset (translate puzzle)",
    "none": "leave every example at the top-left (not translated)",
}


class _Faults:
    """How many faults one check found, and the first MAX_LISTED of them in words."""

    def __init__(self) -> None:
        self.count = 0
        self.listed: list[str] = []

    def add(self, message: str) -> None:
        self.count += 1
        if len(self.listed) < MAX_LISTED:
            self.listed.append(message)

    def add_many(self, total: int, messages: Iterator[str]) -> None:
        """`total` faults; only as many of `messages` are formed as there is room to list."""
        room = max(0, min(MAX_LISTED - len(self.listed), total))
        self.listed.extend(message for _, message in zip(range(room), messages))
        self.count += total

    def summary(self) -> str:
        if not self.count:
            return "0 faults"
        more = f"; and {self.count - len(self.listed)} more" if self.count > len(self.listed) else ""
        return f"{self.count} fault{'s' if self.count > 1 else ''}: {'; '.join(self.listed)}{more}"


def _looks_like_arc(split: PuzzleSplit) -> bool:
    """A reference-built ARC split: 12 tokens (pad, EOS, 10 colours) over a 30x30 canvas."""
    return split.metadata.vocab_size == arc.VOCAB_SIZE and split.metadata.seq_len == arc.SEQ_LEN


def arc_grid_layout(tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(well-formed, top, left, height, width) of every grid in [rows, 900] ARC token rows.

    Well-formed is how both ARC builders write a grid: tokens 0..11; the colour tokens (2..11)
    filling exactly one rectangle (their bounding box: top, left, height, width, 1..30 each way);
    EOS on the row just below it (over its width) and the column just right of it (over its
    height) where these fit in the canvas; pad everywhere else, the corner below-right included.
    """
    square = np.asarray(tokens).reshape(-1, _SIDE, _SIDE)
    rows = len(square)
    flat = square.reshape(rows, -1)
    well_formed = flat.max(axis=1, initial=0) < arc.VOCAB_SIZE
    if flat.dtype.kind == "i":
        well_formed &= flat.min(axis=1, initial=0) >= 0
    colour = square >= arc.COLOUR_OFFSET
    rows_with, columns_with = colour.any(axis=2), colour.any(axis=1)  # [rows, 30] each
    found = rows_with.any(axis=1)
    top, left = rows_with.argmax(axis=1), columns_with.argmax(axis=1)
    height = np.where(found, _SIDE - rows_with[:, ::-1].argmax(axis=1) - top, 0)
    width = np.where(found, _SIDE - columns_with[:, ::-1].argmax(axis=1) - left, 0)
    solid = np.count_nonzero(colour.reshape(rows, -1), axis=1) == height * width
    # With the colours one solid rectangle, the EOS tokens are right when there are exactly as many
    # as the border needs and the border is all EOS; every other cell is then pad.
    eos = square == arc.EOS
    below, beside = top + height < _SIDE, left + width < _SIDE
    eos_needed = width * below + height * beside
    position, index = np.arange(_SIDE), np.arange(rows)
    in_columns = (position >= left[:, None]) & (position < (left + width)[:, None])
    in_rows = (position >= top[:, None]) & (position < (top + height)[:, None])
    row_below = eos[index, np.minimum(top + height, _SIDE - 1)]  # [rows, 30]
    column_beside = eos[index, :, np.minimum(left + width, _SIDE - 1)]
    border = (~below | ((row_below & in_columns).sum(axis=1) == width)) & \
             (~beside | ((column_beside & in_rows).sum(axis=1) == height))
    well_formed &= found & solid & border & (np.count_nonzero(eos.reshape(rows, -1), axis=1) == eos_needed)
    return well_formed, top, left, height, width


def _at(cells: np.ndarray) -> str:
    """'at (r,c)' for the first of [n, 2] cells, and how many more there are."""
    more = f" and {len(cells) - 1} more cell{'s' if len(cells) > 2 else ''}" if len(cells) > 1 else ""
    return f"at ({cells[0][0]},{cells[0][1]}){more}"


def _ragged(colour: np.ndarray) -> str | None:
    """A description when the colours are left-aligned runs on consecutive rows of unequal lengths."""
    rows = np.flatnonzero(colour.any(axis=1))
    if rows[-1] - rows[0] + 1 != len(rows):
        return None
    starts = colour[rows].argmax(axis=1)
    lengths = colour[rows].sum(axis=1)
    contiguous = all(colour[row, start : start + length].all() for row, start, length in zip(rows, starts, lengths))
    if not contiguous or len(set(starts.tolist())) != 1 or len(set(lengths.tolist())) == 1:
        return None
    shown = ", ".join(str(n) for n in lengths) if len(lengths) <= 8 else f"{lengths.min()} to {lengths.max()}"
    return f"ragged grid at ({rows[0]},{starts[0]}): its rows hold {shown} colours"


def _candidate_rectangles(colour: np.ndarray) -> list[tuple[int, int, int, int]]:
    """(top, left, height, width) the grid may have meant: the colours' bounding box, or the
    largest rectangle of colours whose corner is the first colour cell by rows or by columns."""
    cells = np.argwhere(colour)
    top, left = cells.min(axis=0)
    bottom, right = cells.max(axis=0)
    candidates = {(int(top), int(left), int(bottom - top + 1), int(right - left + 1))}
    by_columns = np.argwhere(colour.T)[0][::-1]
    for row, column in (cells[0], by_columns):
        shifted = np.zeros((_SIDE, _SIDE), dtype=np.uint8)
        shifted[: _SIDE - row, : _SIDE - column] = np.where(colour[row:, column:], arc.COLOUR_OFFSET, arc.PAD)
        heights, widths = arc.grid_sizes(shifted.reshape(1, -1))
        candidates.add((int(row), int(column), int(heights[0]), int(widths[0])))
    return sorted(candidates)


def arc_grid_fault(tokens: Any) -> str | None:
    """What is wrong with one [900] ARC grid row, in words; None when it is well-formed (`arc_grid_layout`)."""
    square = np.asarray(tokens).astype(np.int64).reshape(_SIDE, _SIDE)
    out_of_range = np.argwhere((square < 0) | (square >= arc.VOCAB_SIZE))
    if len(out_of_range):
        row, column = out_of_range[0]
        return f"token {square[row, column]} {_at(out_of_range)} is out of range 0..{arc.VOCAB_SIZE - 1}"
    colour = square >= arc.COLOUR_OFFSET
    if not colour.any():
        return "no grid: not one colour token"
    ragged = _ragged(colour)
    if ragged is not None:
        return ragged
    kind = np.minimum(square, arc.COLOUR_OFFSET)  # 0 pad, 1 EOS, 2 colour

    def expected(rectangle: tuple[int, int, int, int]) -> np.ndarray:
        top, left, height, width = rectangle
        return arc.encode_grid(np.zeros((height, width), dtype=np.uint8), top, left).reshape(_SIDE, _SIDE)

    rectangle = min(_candidate_rectangles(colour), key=lambda rect: int((expected(rect) != kind).sum()))
    want = expected(rectangle)
    grid = f"the {rectangle[2]}x{rectangle[3]} grid at ({rectangle[0]},{rectangle[1]})"
    colour_outside = np.argwhere((kind == arc.COLOUR_OFFSET) & (want != arc.COLOUR_OFFSET))
    eos_inside = np.argwhere((kind == arc.EOS) & (want == arc.COLOUR_OFFSET))
    pad_inside = np.argwhere((kind == arc.PAD) & (want == arc.COLOUR_OFFSET))
    eos_missing = np.argwhere((want == arc.EOS) & (kind != arc.EOS))
    eos_stray = np.argwhere((kind == arc.EOS) & (want == arc.PAD))
    if len(colour_outside):
        return f"colour token outside {grid}, {_at(colour_outside)}"
    if len(eos_inside):
        return f"stray EOS inside {grid}, {_at(eos_inside)}"
    if len(pad_inside):
        return f"pad inside {grid}, {_at(pad_inside)}"
    if len(eos_missing) and len(eos_stray):
        return f"EOS border of {grid} misplaced: missing {_at(eos_missing)}, found {_at(eos_stray)}"
    if len(eos_missing):
        return f"EOS border of {grid} missing {_at(eos_missing)}"
    if len(eos_stray):
        return f"stray EOS outside the border of {grid}, {_at(eos_stray)}"
    return None


def _arc_translation(root: Path, split_name: str) -> str:
    """How the builder placed this split's examples: only train is translated; the hrmkit build
    summary says how, and the reference builders always leave one example per puzzle in place."""
    if split_name != "train":
        return "none"
    summary = _build_summary(root)
    config = summary.get("config") if summary.get("builder") == ARC_BUILDER else None
    mode = config.get("translate") if isinstance(config, dict) else None
    return mode if mode in _TRANSLATION_RULES else "example"


def _puzzle_bounds(split: PuzzleSplit) -> tuple[np.ndarray, np.ndarray]:
    """(first example, end) of every puzzle, as example indices across the split's sets in order."""
    starts, ends, offset = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)], 0
    for set_name in split.metadata.sets:
        bounds = np.asarray(split.sets[set_name]["puzzle_indices"], dtype=np.int64) + offset
        starts.append(bounds[:-1])
        ends.append(bounds[1:])
        offset += len(split.sets[set_name]["inputs"])
    return np.concatenate(starts), np.concatenate(ends)


def _example_fault(index: int, inputs: np.ndarray, labels: np.ndarray, well_formed: tuple[bool, bool],
                   offsets: tuple[tuple[int, int], tuple[int, int]]) -> str:
    parts = [f"{name}: {arc_grid_fault(tokens) or 'malformed'}"
             for name, tokens, ok in (("input", inputs, well_formed[0]), ("label", labels, well_formed[1])) if not ok]
    if not parts:
        (input_top, input_left), (label_top, label_left) = offsets
        parts.append(f"input at ({input_top},{input_left}) but label at ({label_top},{label_left}), "
                     "expected one offset for both")
    return f"example {index} {', '.join(parts)}"


def _translation_faults(translate: str, split_name: str, split: PuzzleSplit, tops: np.ndarray, lefts: np.ndarray,
                        faulty: np.ndarray, faults: _Faults) -> tuple[int, int]:
    """(puzzles, puzzles breaking the translation rule), added to `faults`. A malformed example
    was counted already; it breaks no rule here."""
    starts, ends = _puzzle_bounds(split)
    sizes = ends - starts
    placed = np.concatenate([[0], np.cumsum(((tops == 0) & (lefts == 0)) | faulty)])
    at_top_left = placed[ends] - placed[starts]
    if translate == "example":
        broken = (sizes > 0) & (at_top_left == 0)
    elif translate == "none":
        broken = at_top_left < sizes
    else:  # one offset per puzzle: the smallest and largest offset of its well-formed examples agree
        offset = tops.astype(np.int64) * _SIDE + lefts
        low, high = np.full(len(starts), -1), np.full(len(starts), -1)
        filled = sizes > 0
        if filled.any():
            low[filled] = np.minimum.reduceat(np.where(faulty, _SIDE * _SIDE, offset), starts[filled])
            high[filled] = np.maximum.reduceat(np.where(faulty, -1, offset), starts[filled])
        broken = (high >= 0) & (low != high)

    def describe(puzzle: int) -> str:
        where = f"puzzle {puzzle} (examples {starts[puzzle]}..{ends[puzzle] - 1})"
        if translate == "example":
            return f"{where}: no example at the top-left"
        rows = np.arange(starts[puzzle], ends[puzzle])
        if translate == "none":
            moved = rows[((tops[rows] != 0) | (lefts[rows] != 0)) & ~faulty[rows]][0]
            why = "translate none" if split_name == "train" else "only train is translated"
            return f"{where}: example {moved} at ({tops[moved]},{lefts[moved]}), not the top-left ({why})"
        distinct = len({(int(tops[row]), int(lefts[row])) for row in rows[~faulty[rows]]})
        return f"{where}: examples at {distinct} offsets, expected one (translate puzzle)"

    broken_puzzles = np.flatnonzero(broken)
    faults.add_many(len(broken_puzzles), (describe(int(puzzle)) for puzzle in broken_puzzles))
    return len(starts), len(broken_puzzles)


def _arc_check(split_name: str, split: PuzzleSplit, translate: str) -> Check:
    """Every example's input and label grid laid out as the builders write them, at one offset,
    and each puzzle's examples translated as the build's rule says."""
    total = split.num_examples()
    tops, lefts = np.zeros(total, dtype=np.int8), np.zeros(total, dtype=np.int8)
    faulty = np.zeros(total, dtype=bool)
    faults = _Faults()
    for start, inputs, labels in _paired_chunks(split):
        input_ok, input_top, input_left, _, _ = arc_grid_layout(inputs)
        label_ok, label_top, label_left, _, _ = arc_grid_layout(labels)
        bad = ~input_ok | ~label_ok | (input_top != label_top) | (input_left != label_left)
        end = start + len(inputs)
        tops[start:end], lefts[start:end], faulty[start:end] = input_top, input_left, bad
        rows = np.flatnonzero(bad)
        faults.add_many(len(rows), (
            _example_fault(start + row, inputs[row], labels[row], (input_ok[row], label_ok[row]),
                           ((input_top[row], input_left[row]), (label_top[row], label_left[row])))
            for row in rows
        ))
    bad_examples = faults.count
    puzzles, bad_puzzles = _translation_faults(translate, split_name, split, tops, lefts, faulty, faults)
    detail = (
        f"{total - bad_examples} of {total} examples well-formed (input and label: one solid 1..30 x 1..30 "
        f"rectangle of colours 2..11 at one shared offset, EOS row below and column right, pad elsewhere); "
        f"{puzzles - bad_puzzles} of {puzzles} puzzles {_TRANSLATION_RULES[translate]}; {faults.summary()}"
    )
    return Check(f"arc:{split_name}", faults.count == 0, detail)


def _task_of_identifiers(names: list[str], faults: _Faults) -> tuple[np.ndarray, list[str]]:
    """([identifiers] task index, -1 for <blank> and malformed names; task ids), names read as
    `<task>|||t<k>|||<colours>` (or the bare task id for the untouched task)."""
    digits = set("0123456789")
    task_index: dict[str, int] = {}
    tasks = np.full(len(names), -1, dtype=np.int64)
    malformed = []
    for number, name in enumerate(names):
        if name == "<blank>":
            continue
        parts = name.split(arc.ID_SEPARATOR)
        valid = len(parts) == 1 or (len(parts) == 3 and len(parts[1]) == 2 and parts[1][0] == "t"
                                    and parts[1][1] in "01234567" and len(parts[2]) == 10 and set(parts[2]) == digits)
        if not valid or not parts[0]:
            malformed.append(number)
            continue
        tasks[number] = task_index.setdefault(parts[0], len(task_index))
    faults.add_many(len(malformed), (f"identifiers.json entry {number} {names[number]!r} is not {_NAME_SCHEME}"
                                     for number in malformed))
    return tasks, list(task_index)


def _read_test_puzzles(root: Path, required: bool, faults: _Faults) -> dict[str, tuple[int, int]] | None:
    """task id -> (demonstrations, test pairs) from test_puzzles.json; None when absent or unreadable."""
    path = root / "test_puzzles.json"
    if not path.is_file():
        if required:
            faults.add("test_puzzles.json is missing (the ground truth ARC voting scores against)")
        return None
    try:
        raw = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as error:
        faults.add(f"test_puzzles.json is not valid JSON ({error})")
        return None
    if not isinstance(raw, dict):
        faults.add("test_puzzles.json is not a JSON object of tasks keyed by id")
        return None
    counts = {}
    for task_id, task in raw.items():
        if isinstance(task, dict) and isinstance(task.get("train"), list) and isinstance(task.get("test"), list):
            counts[task_id] = (len(task["train"]), len(task["test"]))
        else:
            faults.add(f"test_puzzles.json task {task_id} has no 'train' and 'test' lists")
    return counts


def _concatenated(split: PuzzleSplit, name: str, shift_by: str | None = None) -> np.ndarray:
    """One small per-set array over every set, offsets shifted to index the split as a whole."""
    parts, offset = [], 0
    for set_name in split.metadata.sets:
        array = np.asarray(split.sets[set_name][name], dtype=np.int64)
        if shift_by is None:
            parts.append(array)
            continue
        parts.append(array[:-1] + offset)
        offset += len(split.sets[set_name][shift_by])
    return np.concatenate([np.zeros(0, dtype=np.int64), *parts])


@dataclass
class _SplitPuzzles:
    """One split's puzzles as whole-split arrays: identifier, example count and group of each."""

    name: str
    identifiers: np.ndarray  # [puzzles]
    sizes: np.ndarray  # [puzzles] examples
    group_of: np.ndarray  # [puzzles]
    first: np.ndarray  # [puzzles] the first puzzle of the puzzle's group
    groups: int

    @classmethod
    def of(cls, split_name: str, split: PuzzleSplit) -> _SplitPuzzles:
        identifiers = _concatenated(split, "puzzle_identifiers")
        starts, ends = _puzzle_bounds(split)
        group_starts = _concatenated(split, "group_indices", shift_by="puzzle_identifiers")
        group_of = np.repeat(np.arange(len(group_starts)), np.diff(np.append(group_starts, len(identifiers))))
        return cls(split_name, identifiers, ends - starts, group_of, group_starts[group_of], len(group_starts))

    def groups_where(self, broken: np.ndarray) -> np.ndarray:
        """Groups holding a puzzle where `broken` [puzzles] is true."""
        return np.flatnonzero(np.bincount(self.group_of[broken], minlength=self.groups))


def _identifier_faults(puzzles: _SplitPuzzles, names: list[str], faults: _Faults) -> np.ndarray:
    """Every puzzle names its own non-blank identifier; returns which puzzles' identifiers have a name."""
    split_name, identifiers = puzzles.name, puzzles.identifiers
    named = identifiers < len(names)  # identifiers.json may be short (a fault reported already)
    unnamed = np.flatnonzero(~named)
    faults.add_many(len(unnamed), (f"{split_name}: puzzle {p} has identifier {identifiers[p]}, "
                                   f"beyond the {len(names)} names of identifiers.json" for p in unnamed))
    is_blank = np.array([name == "<blank>" for name in names] or [True], dtype=bool)
    blank = np.flatnonzero(named & is_blank[np.where(named, identifiers, 0)])
    faults.add_many(len(blank), (f"{split_name}: puzzle {p} has identifier {identifiers[p]}, a <blank> entry"
                                 for p in blank))
    used, uses = np.unique(identifiers[named], return_counts=True)
    shared = used[uses > 1]
    faults.add_many(len(shared), (f"{split_name}: identifier {i} ({names[i]}) names {uses[used == i][0]} puzzles"
                                  for i in shared))
    return named


def _group_faults(puzzles: _SplitPuzzles, task: np.ndarray | None, task_ids: list[str], faults: _Faults) -> None:
    """Every variant of a task holds all its pairs, so a group's puzzles hold equally many
    examples; and (when names give it) a group holds one task's variants."""
    sizes, first = puzzles.sizes, puzzles.first
    uneven = puzzles.groups_where(sizes != sizes[first])
    faults.add_many(len(uneven), (
        f"{puzzles.name}: group {g} holds puzzles of {sizes[puzzles.group_of == g].min()} to "
        f"{sizes[puzzles.group_of == g].max()} examples; every variant holds all of its task's pairs" for g in uneven))
    if task is None:
        return
    mixed = puzzles.groups_where((task != task[first]) & (task >= 0) & (task[first] >= 0))
    faults.add_many(len(mixed), (
        f"{puzzles.name}: group {g} mixes tasks "
        f"{', '.join(sorted({task_ids[t] for t in task[puzzles.group_of == g] if t >= 0}))}" for g in mixed))


def _test_puzzle_faults(puzzles: _SplitPuzzles, task: np.ndarray, task_ids: list[str], names: list[str],
                        test_puzzles: dict[str, tuple[int, int]], faults: _Faults) -> None:
    """The test split holds test_puzzles.json's tasks, each variant with the task's test pairs;
    in train, their variants hold the task's demonstrations."""
    if puzzles.name == "test":
        in_split = {task_ids[t] for t in np.unique(task[task >= 0]).tolist()}
        absent = sorted(set(test_puzzles) - in_split)
        faults.add_many(len(absent), (f"test_puzzles.json task {t} has no puzzle in the test split" for t in absent))
        unknown = sorted(in_split - set(test_puzzles))
        faults.add_many(len(unknown), (f"test: task {t} is not in test_puzzles.json" for t in unknown))
    column, what = (0, "demonstrations") if puzzles.name == "train" else (1, "test pairs")
    per_task = np.array([test_puzzles.get(task_id, (-1, -1))[column] for task_id in task_ids] + [-1])
    expected = per_task[task]  # [puzzles]; -1 (the last entry) where not known
    wrong = np.flatnonzero((expected >= 0) & (expected != puzzles.sizes))
    faults.add_many(len(wrong), (
        f"{puzzles.name}: puzzle {p} ({names[puzzles.identifiers[p]]}) holds {puzzles.sizes[p]} examples, "
        f"test_puzzles.json gives {expected[p]} {what}" for p in wrong))


def _arc_puzzles_check(root: Path, splits: dict[str, PuzzleSplit], builder: str | None) -> Check:
    """identifiers.json, groups and test_puzzles.json agree with the splits' puzzles."""
    faults = _Faults()
    names = next(iter(splits.values())).identifiers
    if not names:
        faults.add("identifiers.json is empty")
    elif names[0] != "<blank>":
        faults.add(f"identifiers.json starts with {names[0]!r}, not '<blank>'")
    for split_name, split in splits.items():
        if split.metadata.num_puzzle_identifiers != len(names):
            faults.add(f"{split_name}: num_puzzle_identifiers is {split.metadata.num_puzzle_identifiers} "
                       f"but identifiers.json names {len(names)}")
    # hrmkit and TRM name variants <task>|||t<k>|||<colours>; HRM's builder uses other names,
    # which are not read (nor is the test_puzzles.json it does not write required).
    scheme = builder == ARC_BUILDER or any(arc.ID_SEPARATOR in name for name in names)
    tasks, task_ids = _task_of_identifiers(names, faults) if scheme else (None, [])
    test_puzzles = _read_test_puzzles(root, builder == ARC_BUILDER and "test" in splits, faults)
    for split_name, split in splits.items():
        puzzles = _SplitPuzzles.of(split_name, split)
        named = _identifier_faults(puzzles, names, faults)
        task = None  # [puzzles] index into task_ids, -1 where the name gives no task
        if tasks is not None and names:
            task = np.where(named, tasks[np.where(named, puzzles.identifiers, 0)], -1)
        _group_faults(puzzles, task, task_ids, faults)
        if task is not None and test_puzzles is not None and split_name in STANDARD_SPLITS:
            _test_puzzle_faults(puzzles, task, task_ids, names, test_puzzles, faults)
    checked = f"identifiers.json ({len(names)} names): one identifier per puzzle, one example count per group"
    if scheme:
        checked += f", names {_NAME_SCHEME} with one task per group"
    if scheme and names and test_puzzles is not None:
        checked += f"; test_puzzles.json ({len(test_puzzles)} tasks) against the test split's tasks and pair counts"
    return Check("arc:puzzles", faults.count == 0, f"{checked}; {faults.summary()}")


# --------------------------------------------------------------------------- entry points


def _build_summary(root: Path) -> dict[str, Any]:
    """hrmkit_build.json as written by an hrmkit builder; empty for reference-built (or unreadable) datasets."""
    try:
        summary = json.loads((root / "hrmkit_build.json").read_text())
    except (OSError, ValueError):
        return {}
    return summary if isinstance(summary, dict) else {}


def _builder(root: Path) -> str | None:
    """The hrmkit builder named in hrmkit_build.json; None for reference-built (or unreadable) summaries."""
    builder = _build_summary(root).get("builder")
    return builder if isinstance(builder, str) else None


def _content_checks(split_name: str, split: PuzzleSplit, builder: str | None, report: CheckReport) -> str | None:
    """Adds the generic checks and the one of the split's kind; returns that kind (None: unknown)."""
    puzzles_per_group, examples_per_group = _group_sizes(split)
    labels, inputs = _histogram(split, "labels"), _histogram(split, "inputs")
    report.stats[split_name] = _split_stats(split, examples_per_group, labels, inputs)
    report.checks.append(_augmentation_check(split_name, puzzles_per_group))
    report.checks.append(_label_check(split_name, labels, split.metadata.ignore_label_id))
    if builder == SUDOKU_BUILDER or (builder is None and _looks_like_sudoku(split, labels)):
        report.checks.append(_sudoku_check(split_name, split))
    elif builder == MAZE_BUILDER or (builder is None and _looks_like_maze(split, inputs)):
        report.checks.append(_maze_check(split_name, split))
    elif builder == ROUTING_BUILDER or (builder is None and _looks_like_routing(split, inputs)):
        report.checks.append(_routing_check(split_name, split))
    elif builder == ARC_BUILDER or (builder is None and _looks_like_arc(split)):
        report.checks.append(_arc_check(split_name, split, _arc_translation(split.root, split_name)))
        return "arc"
    return None


def is_maze_split(root: str | Path, split: PuzzleSplit) -> bool:
    """Whether a loaded split holds mazes (named by its builder, else recognised by its tokens)."""
    builder = _builder(Path(root))
    return builder == MAZE_BUILDER or (builder is None and _looks_like_maze(split, _histogram(split, "inputs")))


def is_routing_split(root: str | Path, split: PuzzleSplit) -> bool:
    """Whether a loaded split holds city-routing scenarios (named by its builder, else recognised by its tokens)."""
    builder = _builder(Path(root))
    return builder == ROUTING_BUILDER or (builder is None and _looks_like_routing(split, _histogram(split, "inputs")))


def path_split_kind(root: str | Path, split: PuzzleSplit) -> str | None:
    """'maze' or 'routing' when predictions on this split are scored as paths (`path_scores`), else None."""
    if is_maze_split(root, split):
        return "maze"
    return "routing" if is_routing_split(root, split) else None


def path_scores(split: PuzzleSplit, predictions: np.ndarray) -> dict[str, float]:
    """Share of predicted grids that mark a valid S->G path, and an optimal one.

    Mazes: a shortest path. Routing splits (recognised as in `path_split_kind`): a legal route for
    the example's vehicle and a cost-optimal one, also per vehicle (`routing_path_scores`).
    """
    if path_split_kind(split.root, split) == "routing":
        return routing_path_scores(split, predictions)
    size = _maze_size(split.metadata.seq_len)
    inputs = np.concatenate([arrays["inputs"] for arrays in split.sets.values()])[: len(predictions)]
    scores = [path_validity(maze, predicted, size) for maze, predicted in zip(inputs, predictions)]
    total = max(len(scores), 1)
    return {"valid_path": sum(valid for valid, _ in scores) / total,
            "optimal_path": sum(optimal for _, optimal in scores) / total}


def check_dataset(root: str | Path) -> CheckReport:
    """Run every check on the dataset at `root`; failures are recorded, never raised."""
    root = Path(root)
    report = CheckReport(root=str(root))
    builder = _builder(root)
    loaded: dict[str, PuzzleSplit] = {}
    for split_name in _split_names(root):
        check, split = _structure_check(root, split_name)
        report.checks.append(check)
        if split is not None:
            loaded[split_name] = split
    if all(name in loaded for name in STANDARD_SPLITS):
        arc_like = builder == ARC_BUILDER or _looks_like_arc(loaded["test"])
        report.checks.append(_overlap_check(loaded["train"], loaded["test"], arc_like))
    arc_splits = {name: split for name, split in loaded.items()
                  if _content_checks(name, split, builder, report) == "arc"}
    if arc_splits:
        report.checks.append(_arc_puzzles_check(root, arc_splits, builder))
    return report


def main_check(root: str | Path, json_out: str | None) -> int:
    """Print the report, write it as JSON to `json_out` if given; 0 if every check passed, else 1."""
    report = check_dataset(root)
    print(report.format())
    if json_out is not None:
        atomic_write_text(json_out, json.dumps(report.to_json(), indent=2) + "\n")
    return 0 if report.ok else 1
