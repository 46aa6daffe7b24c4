"""ARC-AGI content checks for `hrm data check`: every grid's layout, the translation rule, identifiers.

A grid is well-formed as both ARC builders write it (hrmkit's and the reference's): tokens 0..11,
the colours (2..11) filling one rectangle, an EOS row below it and an EOS column right of it where
they fit in the 30x30 canvas, pad elsewhere. Per puzzle, the builder's translation rule holds; and
identifiers.json and test_puzzles.json agree with the splits.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hrmkit.puzzles import arc, arc_dataset
from hrmkit.puzzles.build import build_summary
from hrmkit.puzzles.check_base import (
    MAX_LISTED,
    STANDARD_SPLITS,
    Check,
    paired_chunks,
)
from hrmkit.puzzles.format import PuzzleSplit

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


def looks_like_arc(split: PuzzleSplit) -> bool:
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


def arc_translation(root: Path, split_name: str) -> str:
    """How the builder placed this split's examples: only train is translated; the hrmkit build
    summary says how, and the reference builders always leave one example per puzzle in place."""
    if split_name != "train":
        return "none"
    summary = build_summary(root)
    config = summary.get("config") if summary.get("builder") == arc_dataset.BUILDER else None
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


def arc_check(split_name: str, split: PuzzleSplit, translate: str) -> Check:
    """Every example's input and label grid laid out as the builders write them, at one offset,
    and each puzzle's examples translated as the build's rule says."""
    total = split.num_examples()
    tops, lefts = np.zeros(total, dtype=np.int8), np.zeros(total, dtype=np.int8)
    faulty = np.zeros(total, dtype=bool)
    faults = _Faults()
    for start, inputs, labels in paired_chunks(split):
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


def arc_puzzles_check(root: Path, splits: dict[str, PuzzleSplit]) -> Check:
    """identifiers.json, groups and test_puzzles.json agree with the splits' puzzles."""
    faults = _Faults()
    hrmkit_built = build_summary(root).get("builder") == arc_dataset.BUILDER
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
    scheme = hrmkit_built or any(arc.ID_SEPARATOR in name for name in names)
    tasks, task_ids = _task_of_identifiers(names, faults) if scheme else (None, [])
    test_puzzles = _read_test_puzzles(root, hrmkit_built and "test" in splits, faults)
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

