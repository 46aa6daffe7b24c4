"""The reference HRM/TRM puzzle dataset format: read, write, validate.

Layout (byte-compatible with both reference repositories)::

    <root>/identifiers.json                  JSON list of puzzle-identifier names
    <root>/<split>/dataset.json              PuzzleDatasetMetadata
    <root>/<split>/<set>__inputs.npy         [num_examples, seq_len] tokens
    <root>/<split>/<set>__labels.npy         [num_examples, seq_len] tokens
    <root>/<split>/<set>__puzzle_identifiers.npy   [num_puzzles]
    <root>/<split>/<set>__puzzle_indices.npy       [num_puzzles + 1] example offsets
    <root>/<split>/<set>__group_indices.npy        [num_groups + 1] puzzle offsets

A *group* holds the augmented variants of one base puzzle; a *puzzle* holds one or more
examples. Training samples one random puzzle per group and takes its examples (see batches.py).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from hrmkit.files import DatasetError, check_output_free, corpus_files, puzzle_split_names, read_json, staged_folder

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


def model_misfit(model_config, meta: PuzzleDatasetMetadata) -> str | None:
    """Why a model (its ``ModelConfig``) cannot run on a dataset with ``meta``, or None: the token
    vocabulary and length must be the dataset's, and a puzzle-embedding table needs a row for every
    identifier the dataset uses."""
    if meta.vocab_size != model_config.vocab_size or meta.seq_len != model_config.seq_len:
        return (f"expects vocab {model_config.vocab_size} / seq_len {model_config.seq_len}, "
                f"dataset has {meta.vocab_size} / {meta.seq_len}")
    if model_config.puzzle_emb_ndim > 0 and meta.num_puzzle_identifiers > model_config.num_puzzle_identifiers:
        return (f"has puzzle embeddings for {model_config.num_puzzle_identifiers} puzzle identifiers, the dataset "
                f"uses {meta.num_puzzle_identifiers} (num_puzzle_identifiers): it was trained on other puzzles")
    return None


def scored_positions(labels: np.ndarray, ignore_label_id: int | None) -> np.ndarray:
    """Where ``labels``, as stored on disk, are scored: not the dataset's own ``ignore_label_id``
    (e.g. routing's padding around the route), which is not the loss's -100."""
    return labels != ignore_label_id if ignore_label_id is not None else np.ones(np.shape(labels), dtype=bool)


def array_path(split_dir: Path, set_name: str, array_name: str) -> Path:
    """Where one of a set's five arrays lives: `<split_dir>/<set>__<array>.npy`."""
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
        path = array_path(split_dir, set_name, name)
        array = arrays[name]
        if not np.issubdtype(array.dtype, np.integer):
            raise DatasetError(path, f"dtype must be an integer type, got {array.dtype}")
        expected_ndim = 2 if name in ("inputs", "labels") else 1
        if array.ndim != expected_ndim:
            raise DatasetError(path, f"expected a {expected_ndim}-D array, got shape {array.shape}")
    inputs, labels = arrays["inputs"], arrays["labels"]
    if inputs.shape[1] != seq_len:
        raise DatasetError(
            array_path(split_dir, set_name, "inputs"), f"shape {inputs.shape} does not match seq_len {seq_len}"
        )
    if labels.shape != inputs.shape:
        raise DatasetError(
            array_path(split_dir, set_name, "labels"), f"shape {labels.shape} differs from inputs {inputs.shape}"
        )
    num_puzzles = len(arrays["puzzle_identifiers"])
    if len(arrays["puzzle_indices"]) != num_puzzles + 1:
        raise DatasetError(
            array_path(split_dir, set_name, "puzzle_indices"),
            f"has {len(arrays['puzzle_indices'])} entries, expected num_puzzles + 1 = {num_puzzles + 1}",
        )
    if len(arrays["group_indices"]) < 1:
        raise DatasetError(array_path(split_dir, set_name, "group_indices"), "is empty; it must start with 0")


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
        _check_offsets(arrays[name], end, what, array_path(split_dir, set_name, name))
    identifiers = np.asarray(arrays["puzzle_identifiers"])
    if identifiers.size and (identifiers.min() < 0 or identifiers.max() >= meta.num_puzzle_identifiers):
        raise DatasetError(
            array_path(split_dir, set_name, "puzzle_identifiers"),
            f"values span [{identifiers.min()}, {identifiers.max()}], "
            f"outside [0, num_puzzle_identifiers={meta.num_puzzle_identifiers})",
        )
    _check_token_range(arrays["inputs"], array_path(split_dir, set_name, "inputs"), meta.vocab_size, None)
    _check_token_range(
        arrays["labels"], array_path(split_dir, set_name, "labels"), meta.vocab_size, meta.ignore_label_id
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


def write_json(path: Path, content: object, indent: int | None = None) -> None:
    """A dataset's JSON file, written as the reference writes it (compact unless `indent`)."""
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
    root = check_output_free(root, overwrite)
    extra_files = extra_files or {}
    _check_write_request(root, splits, metadata, extra_files)
    metadata = {split: _with_total_puzzles(meta, splits[split]) for split, meta in metadata.items()}
    for split, meta in metadata.items():
        _check_metadata_values(meta, root / split / "dataset.json")
        _validate_split(root / split, meta, splits[split])

    with staged_folder(root) as staging:
        write_json(staging / "identifiers.json", list(identifiers))
        for name, content in extra_files.items():
            write_json(staging / name, content, indent=2)
        for split, sets in splits.items():
            (staging / split).mkdir()
            write_json(staging / split / "dataset.json", metadata[split].to_json_dict())
            for set_name, arrays in sets.items():
                for array_name in ARRAY_NAMES:
                    np.save(array_path(staging / split, set_name, array_name), arrays[array_name])


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

    def __reduce_ex__(self, protocol):
        """Pickled as its path when read from disk, so a loader's worker process maps the files again
        rather than receiving a copy of every array; a split made in memory pickles whole."""
        if all(isinstance(array, np.memmap) for arrays in self.sets.values() for array in arrays.values()):
            return load_split, (self.root, self.split)
        return super().__reduce_ex__(protocol)

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


def load_split(root: str | os.PathLike, split: str) -> PuzzleSplit:
    """Open and validate one split; any problem raises DatasetError naming the file."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(root, "dataset folder not found (build one with `hrm prepare`; a shipped preset "
                                 "that names a dataset shows the command in its header)")
    split_dir = root / split
    if not split_dir.is_dir():
        available = puzzle_split_names(root)
        corpus = [] if available else corpus_files(root)
        if corpus:
            raise DatasetError(root, f"is an HRM-LM corpus ({', '.join(corpus)}), not a puzzle dataset "
                                     "(<split>/dataset.json): pass one built by hrm prepare sudoku, maze, arc or "
                                     "routing (a corpus is for task: seq2seq configs, such as --config arithmetic)")
        raise DatasetError(split_dir, f"split not found (this dataset has: {', '.join(available) or 'none'})")
    metadata_path = split_dir / "dataset.json"
    meta = PuzzleDatasetMetadata.from_json_dict(read_json(metadata_path), metadata_path)
    _check_metadata_values(meta, metadata_path)  # before set names become file paths
    sets = {
        set_name: {name: _load_array(array_path(split_dir, set_name, name)) for name in ARRAY_NAMES}
        for set_name in meta.sets
    }
    _validate_split(split_dir, meta, sets)
    return PuzzleSplit(root=root, split=split, metadata=meta, sets=sets, identifiers=load_identifiers(root))
