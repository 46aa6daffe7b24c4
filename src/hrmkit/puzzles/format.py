"""The reference HRM/TRM puzzle dataset format: read, write, validate, sample.

Layout (byte-compatible with both reference repositories)::

    <root>/identifiers.json                  JSON list of puzzle-identifier names
    <root>/<split>/dataset.json              PuzzleDatasetMetadata
    <root>/<split>/<set>__inputs.npy         [num_examples, seq_len] tokens
    <root>/<split>/<set>__labels.npy         [num_examples, seq_len] tokens
    <root>/<split>/<set>__puzzle_identifiers.npy   [num_puzzles]
    <root>/<split>/<set>__puzzle_indices.npy       [num_puzzles + 1] example offsets
    <root>/<split>/<set>__group_indices.npy        [num_groups + 1] puzzle offsets

A *group* holds the augmented variants of one base puzzle; a *puzzle* holds one or more
examples. Training samples one random puzzle per group and takes its examples.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hrmkit.files import DatasetError, move_into_place, read_json
from hrmkit.model.losses import IGNORE_LABEL_ID  # one definition, shared with the loss
from hrmkit.train.distributed import local_batch_size

ARRAY_NAMES = ("inputs", "labels", "puzzle_identifiers", "puzzle_indices", "group_indices")

# Token-range checks read big memory-mapped arrays this many elements at a time.
_CHECK_CHUNK_ELEMENTS = 1 << 22

_NPY_MAGIC = b"\x93NUMPY"

_INT_FIELDS = (
    "pad_id",
    "blank_identifier_id",
    "vocab_size",
    "seq_len",
    "num_puzzle_identifiers",
    "total_groups",
)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass
class PuzzleDatasetMetadata:
    """Contents of `<split>/dataset.json`."""

    pad_id: int
    ignore_label_id: int | None
    blank_identifier_id: int
    vocab_size: int
    seq_len: int
    num_puzzle_identifiers: int
    total_groups: int
    mean_puzzle_examples: float
    sets: list[str]
    total_puzzles: int | None = None

    def to_json_dict(self) -> dict[str, Any]:
        """Keys in the order TRM's pydantic model dumps them."""
        data: dict[str, Any] = {
            "pad_id": self.pad_id,
            "ignore_label_id": self.ignore_label_id,
            "blank_identifier_id": self.blank_identifier_id,
            "vocab_size": self.vocab_size,
            "seq_len": self.seq_len,
            "num_puzzle_identifiers": self.num_puzzle_identifiers,
            "total_groups": self.total_groups,
            "mean_puzzle_examples": float(self.mean_puzzle_examples),
        }
        if self.total_puzzles is not None:
            data["total_puzzles"] = self.total_puzzles
        data["sets"] = list(self.sets)
        return data

    @classmethod
    def from_json_dict(cls, data: Any, path: str | os.PathLike) -> PuzzleDatasetMetadata:
        """Parse a dataset.json object; unknown keys are ignored (forward compatibility)."""
        if not isinstance(data, dict):
            raise DatasetError(path, f"expected a JSON object, got {type(data).__name__}")
        required = (*_INT_FIELDS, "ignore_label_id", "mean_puzzle_examples", "sets")
        missing = [key for key in required if key not in data]
        if missing:
            raise DatasetError(path, f"missing key(s): {', '.join(missing)}")
        for key in _INT_FIELDS:
            if not _is_int(data[key]):
                raise DatasetError(path, f"'{key}' must be an integer, got {data[key]!r}")
        for key in ("ignore_label_id", "total_puzzles"):
            if data.get(key) is not None and not _is_int(data[key]):
                raise DatasetError(path, f"'{key}' must be an integer or null, got {data[key]!r}")
        mean = data["mean_puzzle_examples"]
        if not (isinstance(mean, (int, float)) and not isinstance(mean, bool)):
            raise DatasetError(path, f"'mean_puzzle_examples' must be a number, got {mean!r}")
        sets = data["sets"]
        if not (isinstance(sets, list) and all(isinstance(name, str) for name in sets)):
            raise DatasetError(path, f"'sets' must be a list of strings, got {sets!r}")
        return cls(
            **{key: data[key] for key in _INT_FIELDS},
            ignore_label_id=data["ignore_label_id"],
            mean_puzzle_examples=float(mean),
            sets=list(sets),
            total_puzzles=data.get("total_puzzles"),
        )


# --------------------------------------------------------------------------- validation


def _array_path(split_dir: Path, set_name: str, array_name: str) -> Path:
    return split_dir / f"{set_name}__{array_name}.npy"


def _check_metadata_values(meta: PuzzleDatasetMetadata, path: Path) -> None:
    if meta.vocab_size < 1 or meta.seq_len < 1 or meta.num_puzzle_identifiers < 1:
        raise DatasetError(path, "vocab_size, seq_len and num_puzzle_identifiers must be >= 1")
    if not 0 <= meta.pad_id < meta.vocab_size:
        raise DatasetError(path, f"pad_id {meta.pad_id} is outside [0, vocab_size={meta.vocab_size})")
    if not 0 <= meta.blank_identifier_id < meta.num_puzzle_identifiers:
        raise DatasetError(
            path,
            f"blank_identifier_id {meta.blank_identifier_id} is outside "
            f"[0, num_puzzle_identifiers={meta.num_puzzle_identifiers})",
        )
    if not meta.sets or len(set(meta.sets)) != len(meta.sets):
        raise DatasetError(path, f"'sets' must be a non-empty list of distinct names, got {meta.sets}")
    bad_names = [name for name in meta.sets if not name or "/" in name or os.sep in name]
    if bad_names:
        raise DatasetError(path, f"set names must be plain file-name parts, got {bad_names}")


def _check_array_kinds(split_dir: Path, set_name: str, arrays: dict[str, np.ndarray], seq_len: int) -> None:
    for name in ARRAY_NAMES:
        path = _array_path(split_dir, set_name, name)
        array = arrays[name]
        if not np.issubdtype(array.dtype, np.integer):
            raise DatasetError(path, f"dtype must be an integer type, got {array.dtype}")
        expected_ndim = 2 if name in ("inputs", "labels") else 1
        if array.ndim != expected_ndim:
            raise DatasetError(path, f"expected a {expected_ndim}-D array, got shape {array.shape}")
    inputs, labels = arrays["inputs"], arrays["labels"]
    if inputs.shape[1] != seq_len:
        raise DatasetError(
            _array_path(split_dir, set_name, "inputs"), f"shape {inputs.shape} does not match seq_len {seq_len}"
        )
    if labels.shape != inputs.shape:
        raise DatasetError(
            _array_path(split_dir, set_name, "labels"), f"shape {labels.shape} differs from inputs {inputs.shape}"
        )
    num_puzzles = len(arrays["puzzle_identifiers"])
    if len(arrays["puzzle_indices"]) != num_puzzles + 1:
        raise DatasetError(
            _array_path(split_dir, set_name, "puzzle_indices"),
            f"has {len(arrays['puzzle_indices'])} entries, expected num_puzzles + 1 = {num_puzzles + 1}",
        )
    if len(arrays["group_indices"]) < 1:
        raise DatasetError(_array_path(split_dir, set_name, "group_indices"), "is empty; it must start with 0")


def _check_offsets(offsets: np.ndarray, end: int, what: str, path: Path) -> None:
    """Offsets start at 0, never decrease and end at the total they index into."""
    offsets = np.asarray(offsets, dtype=np.int64)
    if offsets[0] != 0:
        raise DatasetError(path, f"must start at 0, starts at {offsets[0]}")
    decreasing = np.flatnonzero(np.diff(offsets) < 0)
    if decreasing.size:
        at = int(decreasing[0])
        raise DatasetError(path, f"decreases at entry {at + 1} ({offsets[at]} -> {offsets[at + 1]})")
    if offsets[-1] != end:
        raise DatasetError(path, f"must end at the number of {what} ({end}), ends at {offsets[-1]}")


def _check_token_range(array: np.ndarray, path: Path, vocab_size: int, also_allowed: int | None) -> None:
    rows_per_chunk = max(1, _CHECK_CHUNK_ELEMENTS // max(1, array.shape[1]))
    for start in range(0, len(array), rows_per_chunk):
        chunk = np.asarray(array[start : start + rows_per_chunk])
        if chunk.size == 0 or (chunk.min() >= 0 and chunk.max() < vocab_size):
            continue
        bad = (chunk < 0) | (chunk >= vocab_size)
        if also_allowed is not None:
            bad &= chunk != also_allowed
        if bad.any():
            row, position = (int(i) for i in np.argwhere(bad)[0])
            raise DatasetError(
                path,
                f"token {chunk[row, position]} at example {start + row}, position {position} "
                f"is outside [0, vocab_size={vocab_size})",
            )


def _check_set(split_dir: Path, set_name: str, arrays: dict[str, np.ndarray], meta: PuzzleDatasetMetadata) -> None:
    _check_array_kinds(split_dir, set_name, arrays, meta.seq_len)
    num_examples, num_puzzles = len(arrays["inputs"]), len(arrays["puzzle_identifiers"])
    for name, end, what in (("puzzle_indices", num_examples, "examples"), ("group_indices", num_puzzles, "puzzles")):
        _check_offsets(arrays[name], end, what, _array_path(split_dir, set_name, name))
    identifiers = np.asarray(arrays["puzzle_identifiers"])
    if identifiers.size and (identifiers.min() < 0 or identifiers.max() >= meta.num_puzzle_identifiers):
        raise DatasetError(
            _array_path(split_dir, set_name, "puzzle_identifiers"),
            f"values span [{identifiers.min()}, {identifiers.max()}], "
            f"outside [0, num_puzzle_identifiers={meta.num_puzzle_identifiers})",
        )
    _check_token_range(arrays["inputs"], _array_path(split_dir, set_name, "inputs"), meta.vocab_size, None)
    _check_token_range(
        arrays["labels"], _array_path(split_dir, set_name, "labels"), meta.vocab_size, meta.ignore_label_id
    )


def _check_totals(meta: PuzzleDatasetMetadata, sets: dict[str, dict[str, np.ndarray]], path: Path) -> None:
    groups = sum(len(arrays["group_indices"]) - 1 for arrays in sets.values())
    puzzles = sum(len(arrays["puzzle_identifiers"]) for arrays in sets.values())
    if meta.total_groups != groups:
        raise DatasetError(path, f"total_groups is {meta.total_groups} but the arrays hold {groups} groups")
    # TRM writes the number of groups here for Sudoku and mazes, the number of puzzles elsewhere.
    if meta.total_puzzles is not None and meta.total_puzzles not in (puzzles, groups):
        raise DatasetError(
            path, f"total_puzzles is {meta.total_puzzles} but the arrays hold {puzzles} puzzles in {groups} groups"
        )


def _validate_split(split_dir: Path, meta: PuzzleDatasetMetadata, sets: dict[str, dict[str, np.ndarray]]) -> None:
    """Array checks; the metadata values must have passed _check_metadata_values first."""
    metadata_path = split_dir / "dataset.json"
    for set_name in meta.sets:
        _check_set(split_dir, set_name, sets[set_name], meta)
    _check_totals(meta, sets, metadata_path)


# --------------------------------------------------------------------------- writing


def _write_json(path: Path, content: object, indent: int | None = None) -> None:
    with open(path, "w") as file:
        json.dump(content, file, indent=indent)


def _check_write_request(
    root: Path,
    splits: dict[str, dict[str, dict[str, np.ndarray]]],
    metadata: dict[str, PuzzleDatasetMetadata],
    extra_files: dict[str, object],
) -> None:
    if set(splits) != set(metadata):
        raise DatasetError(root, f"splits {sorted(splits)} and metadata {sorted(metadata)} name different splits")
    for split, sets in splits.items():
        if set(sets) != set(metadata[split].sets):
            raise DatasetError(
                root / split / "dataset.json",
                f"sets {metadata[split].sets} do not match the arrays' sets {sorted(sets)}",
            )
        for set_name, arrays in sets.items():
            if set(arrays) != set(ARRAY_NAMES):
                raise DatasetError(root / split, f"set '{set_name}' must have exactly the arrays {list(ARRAY_NAMES)}")
    for name in extra_files:
        if Path(name).name != name or name == "identifiers.json" or name in splits:
            raise DatasetError(root / name, "extra files must be plain names that clash with no dataset file")


def _with_total_puzzles(meta: PuzzleDatasetMetadata, sets: dict[str, dict[str, np.ndarray]]) -> PuzzleDatasetMetadata:
    """TRM's loader needs total_puzzles; fill it in as the number of puzzles when unset."""
    if meta.total_puzzles is not None:
        return meta
    return replace(meta, total_puzzles=sum(len(arrays["puzzle_identifiers"]) for arrays in sets.values()))


def write_generated_dataset(out_dir: Path, train_arrays: dict[str, np.ndarray], test_arrays: dict[str, np.ndarray],
                            train_meta: PuzzleDatasetMetadata, test_meta: PuzzleDatasetMetadata,
                            summary: dict[str, Any], overwrite: bool, report: Callable[[str, int, int], None]) -> dict[str, Any]:
    """The builders' last step (Sudoku, maze, routing): one set per split, the ``<blank>`` identifier
    list, and ``hrmkit_build.json``; returns the summary."""
    report("writing", 0, 1)
    write_dataset(out_dir, {"train": {"all": train_arrays}, "test": {"all": test_arrays}},
                  {"train": train_meta, "test": test_meta}, ["<blank>"],
                  extra_files={"hrmkit_build.json": summary}, overwrite=overwrite)
    report("writing", 1, 1)
    return summary


def write_dataset(
    root: str | os.PathLike,
    splits: dict[str, dict[str, dict[str, np.ndarray]]],
    metadata: dict[str, PuzzleDatasetMetadata],
    identifiers: list[str],
    extra_files: dict[str, object] | None = None,
    overwrite: bool = False,
) -> None:
    """Validate and write a dataset atomically: all of it appears at `root`, or nothing does.

    `splits` maps split name -> set name -> the five arrays (saved with their own dtypes).
    `extra_files` are JSON files written next to identifiers.json (e.g. build provenance).
    """
    root = Path(root)
    extra_files = extra_files or {}
    if root.exists() and not overwrite:
        raise DatasetError(root, "already exists; remove it or pass --force (overwrite=True)")
    _check_write_request(root, splits, metadata, extra_files)
    metadata = {split: _with_total_puzzles(meta, splits[split]) for split, meta in metadata.items()}
    for split, meta in metadata.items():
        _check_metadata_values(meta, root / split / "dataset.json")
        _validate_split(root / split, meta, splits[split])

    staging = root.with_name(f"{root.name}.tmp-{os.getpid()}")
    if staging.exists():  # left behind by a crashed run that had our pid
        shutil.rmtree(staging)
    try:
        staging.mkdir(parents=True)
        _write_json(staging / "identifiers.json", list(identifiers))
        for name, content in extra_files.items():
            _write_json(staging / name, content, indent=2)
        for split, sets in splits.items():
            (staging / split).mkdir()
            _write_json(staging / split / "dataset.json", metadata[split].to_json_dict())
            for set_name, arrays in sets.items():
                for array_name in ARRAY_NAMES:
                    np.save(_array_path(staging / split, set_name, array_name), arrays[array_name])
        move_into_place(staging, root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


# --------------------------------------------------------------------------- reading


def _load_array(path: Path) -> np.ndarray:
    if not path.is_file():
        raise DatasetError(path, "file not found")
    with open(path, "rb") as file:
        # np.load falls back to unpickling anything that is not .npy: reject that up front.
        if file.read(len(_NPY_MAGIC)) != _NPY_MAGIC:
            raise DatasetError(path, "not a .npy file (bad header)")
    try:
        return np.load(path, mmap_mode="r")
    except (OSError, ValueError) as error:
        raise DatasetError(path, f"not a readable .npy array ({error})") from None


def load_identifiers(root: str | os.PathLike) -> list[str]:
    """The puzzle-identifier names in `<root>/identifiers.json`."""
    path = Path(root) / "identifiers.json"
    identifiers = read_json(path)
    if not (isinstance(identifiers, list) and all(isinstance(name, str) for name in identifiers)):
        raise DatasetError(path, "expected a JSON list of strings")
    return identifiers


@dataclass
class PuzzleSplit:
    """One validated split; `sets[set_name][array_name]` are read-only memory maps."""

    root: Path
    split: str
    metadata: PuzzleDatasetMetadata
    sets: dict[str, dict[str, np.ndarray]]
    identifiers: list[str]

    def num_examples(self, set: str | None = None) -> int:
        """Examples in one set, or in all of them."""
        chosen = self.sets.values() if set is None else [self.sets[set]]
        return sum(len(arrays["inputs"]) for arrays in chosen)

    @property
    def num_puzzles(self) -> int:
        """Puzzles in all sets."""
        return sum(len(arrays["puzzle_identifiers"]) for arrays in self.sets.values())

    @property
    def num_groups(self) -> int:
        """Groups in all sets."""
        return sum(len(arrays["group_indices"]) - 1 for arrays in self.sets.values())


def random_split(vocab_size: int, seq_len: int, num_puzzle_identifiers: int, examples: int,
                 seed: int) -> PuzzleSplit:
    """A split of random tokens in memory, one example per puzzle and group (benchmarks, dry runs).

    Inputs and labels avoid token 0 (pad, and the ignored label), so every cell counts.
    """
    if vocab_size < 2 or seq_len < 1 or examples < 1:
        raise ValueError("random puzzles need model.vocab_size >= 2 and model.seq_len >= 1 (set them as overrides)")
    rng = np.random.default_rng(seed)
    count = np.arange(examples + 1, dtype=np.int32)
    arrays = {"inputs": rng.integers(1, vocab_size, (examples, seq_len), dtype=np.int32),
              "labels": rng.integers(1, vocab_size, (examples, seq_len), dtype=np.int32),
              "puzzle_identifiers": rng.integers(0, max(num_puzzle_identifiers, 1), examples, dtype=np.int32),
              "puzzle_indices": count, "group_indices": count}
    meta = PuzzleDatasetMetadata(pad_id=0, ignore_label_id=0, blank_identifier_id=0, vocab_size=vocab_size,
                                 seq_len=seq_len, num_puzzle_identifiers=max(num_puzzle_identifiers, 1),
                                 total_groups=examples, mean_puzzle_examples=1.0, sets=["all"], total_puzzles=examples)
    return PuzzleSplit(root=Path("<random>"), split="random", metadata=meta, sets={"all": arrays},
                       identifiers=["<blank>"])


def load_split(root: str | os.PathLike, split: str) -> PuzzleSplit:
    """Open and validate one split; any problem raises DatasetError naming the file."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(root, "dataset folder not found (build one with `hrm prepare`; a shipped preset "
                                 "that names a dataset shows the command in its header)")
    split_dir = root / split
    if not split_dir.is_dir():
        available = sorted(path.name for path in root.iterdir() if (path / "dataset.json").is_file())
        raise DatasetError(split_dir, f"split not found (this dataset has: {', '.join(available) or 'none'})")
    metadata_path = split_dir / "dataset.json"
    meta = PuzzleDatasetMetadata.from_json_dict(read_json(metadata_path), metadata_path)
    _check_metadata_values(meta, metadata_path)  # before set names become file paths
    sets = {
        set_name: {name: _load_array(_array_path(split_dir, set_name, name)) for name in ARRAY_NAMES}
        for set_name in meta.sets
    }
    _validate_split(split_dir, meta, sets)
    return PuzzleSplit(root=root, split=split, metadata=meta, sets=sets, identifiers=load_identifiers(root))


# --------------------------------------------------------------------------- batches


def _collate(
    inputs: np.ndarray,
    labels: np.ndarray,
    puzzle_identifiers: np.ndarray,
    meta: PuzzleDatasetMetadata,
    rows: int,
) -> dict[str, torch.Tensor]:
    """Cast like the reference loader, map the ignore label to -100 and pad to `rows`."""
    # np.array copies: the sources may be read-only memory maps, which torch cannot wrap.
    inputs = np.array(inputs, dtype=np.int32)
    labels = np.array(labels, dtype=np.int64)
    puzzle_identifiers = np.array(puzzle_identifiers, dtype=np.int32)
    if meta.ignore_label_id is not None:
        labels[labels == meta.ignore_label_id] = IGNORE_LABEL_ID
    missing = rows - len(inputs)
    if missing > 0:
        inputs = np.concatenate([inputs, np.full((missing, meta.seq_len), meta.pad_id, dtype=np.int32)])
        labels = np.concatenate([labels, np.full((missing, meta.seq_len), IGNORE_LABEL_ID, dtype=np.int64)])
        puzzle_identifiers = np.concatenate(
            [puzzle_identifiers, np.full(missing, meta.blank_identifier_id, dtype=np.int32)]
        )
    return {
        "inputs": torch.from_numpy(inputs),
        "labels": torch.from_numpy(labels),
        "puzzle_identifiers": torch.from_numpy(puzzle_identifiers),
    }


class _Pass:
    """One shuffled pass over the groups of one set, sampled exactly like the reference."""

    def __init__(self, set_name: str, puzzle_indices: np.ndarray, group_indices: np.ndarray, seed: int, epochs: int):
        self.set_name = set_name
        self.puzzle_indices = puzzle_indices
        self.group_indices = group_indices
        self.rng = np.random.Generator(np.random.Philox(seed=seed))
        num_groups = len(group_indices) - 1
        self.group_order = np.concatenate([self.rng.permutation(num_groups) for _ in range(epochs)])
        self.next_group = 0
        self.batches_yielded = 0

    def sample(self, batch_size: int) -> tuple[np.ndarray, np.ndarray] | None:
        """(example rows, puzzle rows) of the next full batch, or None when the pass is over."""
        examples: list[np.ndarray] = []
        puzzles: list[np.ndarray] = []
        filled = 0
        while self.next_group < self.group_order.size and filled < batch_size:
            group = self.group_order[self.next_group]
            self.next_group += 1
            puzzle = self.rng.integers(self.group_indices[group], self.group_indices[group + 1])
            puzzle_start = self.puzzle_indices[puzzle]
            puzzle_size = int(self.puzzle_indices[puzzle + 1] - puzzle_start)
            take = min(puzzle_size, batch_size - filled)
            # choice(1, 1) draws nothing from the generator, so skipping it keeps the stream identical.
            if puzzle_size == 1:
                chosen = np.zeros(1, dtype=np.int64)
            else:
                chosen = self.rng.choice(puzzle_size, take, replace=False)
            examples.append(puzzle_start + chosen)
            puzzles.append(np.full(take, puzzle, dtype=np.int64))
            filled += take
        if filled < batch_size:  # the reference drops the last, partial batch
            return None
        self.batches_yielded += 1
        return np.concatenate(examples), np.concatenate(puzzles)


class TrainSampler:
    """Endless, resumable training batches following the reference sampler.

    Each pass over a set shuffles its groups (`epochs_per_iter` times over), then fills
    global batches with one random puzzle per group and that puzzle's examples; the partial
    last batch is dropped. Passes cycle through `metadata.sets` forever. Each rank gets rows
    `[rank * local, (rank + 1) * local)` of every global batch.
    """

    def __init__(
        self,
        split: PuzzleSplit,
        global_batch_size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        epochs_per_iter: int = 1,
    ) -> None:
        self.local_batch_size = local_batch_size(global_batch_size, rank, world_size)
        if epochs_per_iter < 1:
            raise ValueError(f"epochs_per_iter must be >= 1, got {epochs_per_iter}")
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        self.split = split
        self.global_batch_size = global_batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epochs_per_iter = epochs_per_iter
        # Offsets live in memory, like the reference; inputs and labels stay memory-mapped.
        self._offsets = {
            name: tuple(np.array(arrays[key], dtype=np.int64) for key in ("puzzle_indices", "group_indices"))
            for name, arrays in split.sets.items()
        }
        self._check_can_fill_a_batch()
        self._iters = 0
        self._set_index = 0
        self._pass: _Pass | None = None

    def _check_can_fill_a_batch(self) -> None:
        largest_pass = 0
        for name, (puzzle_indices, group_indices) in self._offsets.items():
            if np.any(np.diff(group_indices) == 0):
                raise DatasetError(
                    _array_path(self.split.root / self.split.split, name, "group_indices"),
                    "has an empty group; training samples one puzzle from every group",
                )
            if len(group_indices) > 1:
                largest_in_group = np.maximum.reduceat(np.diff(puzzle_indices), group_indices[:-1])
                largest_pass = max(largest_pass, self.epochs_per_iter * int(largest_in_group.sum()))
        if largest_pass < self.global_batch_size:
            raise ValueError(
                f"global batch size {self.global_batch_size} is larger than any pass over "
                f"{self.split.root / self.split.split} can fill ({largest_pass} examples at most)"
            )

    @property
    def batches_per_pass(self) -> int:
        """Global batches in one pass over all sets.

        Exact when every puzzle has one example (Sudoku, mazes); otherwise an estimate that
        assumes the average puzzle size of each group and ignores examples cut off at a
        batch boundary.
        """
        total = 0
        for puzzle_indices, group_indices in self._offsets.values():
            puzzle_sizes = np.diff(puzzle_indices).astype(np.float64)
            groups = len(group_indices) - 1
            if groups == 0:
                continue
            mean_per_group = np.add.reduceat(puzzle_sizes, group_indices[:-1]) / np.diff(group_indices)
            total += int(self.epochs_per_iter * mean_per_group.sum() // self.global_batch_size)
        return total

    def _start_pass(self) -> _Pass:
        self._iters += 1
        set_name = self.split.metadata.sets[self._set_index]
        puzzle_indices, group_indices = self._offsets[set_name]
        return _Pass(set_name, puzzle_indices, group_indices, self.seed + self._iters, self.epochs_per_iter)

    def _next_global_rows(self) -> tuple[str, np.ndarray, np.ndarray]:
        while True:
            if self._pass is None:
                self._pass = self._start_pass()
            rows = self._pass.sample(self.global_batch_size)
            if rows is not None:
                return self._pass.set_name, *rows
            self._pass = None
            self._set_index = (self._set_index + 1) % len(self.split.metadata.sets)

    def next_batch(self) -> dict[str, torch.Tensor]:
        """This rank's slice of the next global batch: inputs, labels, puzzle_identifiers."""
        set_name, example_rows, puzzle_rows = self._next_global_rows()
        local = slice(self.rank * self.local_batch_size, (self.rank + 1) * self.local_batch_size)
        example_rows, puzzle_rows = example_rows[local], puzzle_rows[local]
        arrays = self.split.sets[set_name]
        return _collate(
            arrays["inputs"][example_rows],
            arrays["labels"][example_rows],
            np.asarray(arrays["puzzle_identifiers"])[puzzle_rows],
            self.split.metadata,
            self.local_batch_size,
        )

    def state_dict(self) -> dict[str, Any]:
        """A small JSON-able position: the pass counter, its set and batches already taken."""
        return {
            "seed": self.seed,
            "global_batch_size": self.global_batch_size,
            "epochs_per_iter": self.epochs_per_iter,
            "sets": list(self.split.metadata.sets),
            "iters": self._iters,
            "set_index": self._set_index,
            "batches_in_pass": None if self._pass is None else self._pass.batches_yielded,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume so the following batches equal those of an uninterrupted run.

        The rank and world size may differ from the saved run: the global stream is the same.
        """
        for key in ("seed", "global_batch_size", "epochs_per_iter", "sets"):
            if state.get(key) != self.state_dict()[key]:
                raise ValueError(
                    f"sampler state was saved with {key}={state.get(key)!r}, this sampler has "
                    f"{key}={self.state_dict()[key]!r}; resuming would give different batches"
                )
        self._set_index = int(state["set_index"])
        if state["batches_in_pass"] is None:
            self._iters = int(state["iters"])
            self._pass = None
            return
        self._iters = int(state["iters"]) - 1
        self._pass = self._start_pass()
        # Replaying the index sampling is cheap: it touches only the offset arrays.
        for _ in range(int(state["batches_in_pass"])):
            self._pass.sample(self.global_batch_size)


def eval_batches(
    split: PuzzleSplit, batch_size: int, rank: int = 0, world_size: int = 1, max_examples: int = 0
) -> Iterator[tuple[str, dict[str, torch.Tensor], int]]:
    """Every example of every set once, in order: yields (set_name, batch, num_valid).

    `batch_size` is global; each rank gets a contiguous `batch_size // world_size` slice of
    every global batch, padded with pad_id / IGNORE_LABEL_ID / blank_identifier_id, and
    `num_valid` counts the real rows in it. All ranks yield the same number of batches.
    `max_examples` (0 = all) limits the examples over all sets *and all ranks* together.
    """
    local_size = local_batch_size(batch_size, rank, world_size)
    remaining = max_examples if max_examples > 0 else None
    for set_name in split.metadata.sets:
        arrays = split.sets[set_name]
        puzzle_indices = np.asarray(arrays["puzzle_indices"], dtype=np.int64)
        puzzle_identifiers = np.asarray(arrays["puzzle_identifiers"])
        total = len(arrays["inputs"]) if remaining is None else min(len(arrays["inputs"]), remaining)
        if remaining is not None:
            remaining -= total
        for global_start in range(0, total, batch_size):
            global_end = min(total, global_start + batch_size)
            start = min(global_start + rank * local_size, global_end)
            end = min(start + local_size, global_end)
            rows = np.arange(start, end)
            puzzles = np.searchsorted(puzzle_indices, rows, side="right") - 1
            batch = _collate(
                arrays["inputs"][start:end],
                arrays["labels"][start:end],
                puzzle_identifiers[puzzles],
                split.metadata,
                local_size,
            )
            yield set_name, batch, end - start
