"""Audit a puzzle dataset beyond the structural validation of `load_split`.

`check_dataset` runs every check and keeps going after failures, so one report names every
fault: per-split structure, train/test input overlap, augmentation group sizes, label
distribution, and for Sudoku, maze and routing datasets whether every label is a correct answer
(mazes and routing: `check_paths`). ARC datasets get a layout check of every grid (one colour
rectangle, its EOS border, pad elsewhere), the builders' translation rule per puzzle, and a check
of identifiers.json and test_puzzles.json (`check_arc`). `path_scores` scores a model's predicted
paths on maze and routing splits by the same rules. Big splits are memory-mapped, so every
pass over examples reads `CHUNK_ROWS` rows at a time.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hrmkit.files import DatasetError, atomic_write_text, puzzle_split_names
from hrmkit.puzzles.check_arc import (
    arc_check,
    arc_puzzles_check,
    arc_translation,
)
from hrmkit.puzzles.check_base import (
    STANDARD_SPLITS,
    Check,
    paired_chunks,
    row_chunks,
)
from hrmkit.puzzles.check_paths import (
    maze_check,
    maze_path_scores,
    routing_check,
    routing_path_scores,
)
from hrmkit.puzzles.format import PuzzleSplit, load_split
from hrmkit.puzzles.kind import puzzle_kind
from hrmkit.puzzles.selection import spread
from hrmkit.puzzles.sudoku import BLANK_TOKEN, BOX_SHAPES, sudoku_side


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


def _histogram(split: PuzzleSplit, array_name: str) -> dict[int, int]:
    counts: Counter[int] = Counter()
    for _, chunk in row_chunks(split, array_name):
        tokens, token_counts = np.unique(chunk, return_counts=True)
        counts.update(dict(zip(tokens.tolist(), token_counts.tolist())))
    return dict(sorted(counts.items()))


def _row_digests(split: PuzzleSplit, with_labels: bool = False) -> Iterator[bytes]:
    """A digest per example of its input row, or of its (input, label) pair."""
    if with_labels:
        chunks = ((inputs, labels) for _, inputs, labels in paired_chunks(split))
    else:
        chunks = ((inputs, None) for _, inputs in row_chunks(split, "inputs"))
    for inputs, labels in chunks:
        # One dtype for both splits, so equal tokens hash equal whatever each file stores.
        rows = np.ascontiguousarray(inputs if labels is None else np.concatenate([inputs, labels], axis=1),
                                    dtype=np.int64)
        for row in rows:
            yield hashlib.blake2b(row.tobytes(), digest_size=16).digest()


# --------------------------------------------------------------------------- generic checks


def _split_names(root: Path) -> list[str]:
    """train and test always (a missing one is a fault), plus any other folder holding a dataset.json."""
    return [*STANDARD_SPLITS, *(name for name in puzzle_split_names(root) if name not in STANDARD_SPLITS)]


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


SHARED_METADATA = ("vocab_size", "seq_len", "pad_id", "ignore_label_id", "blank_identifier_id", "num_puzzle_identifiers")


def _metadata_agreement_check(splits: dict[str, PuzzleSplit]) -> Check:
    """One model reads every split: the token space, length and identifier table must be the same in all
    their dataset.json files (a model trained on train is refused by hrm eval on a test that differs)."""
    differing = [f"{name} " + " / ".join(f"{split_name} {getattr(split.metadata, name)}" for split_name, split in splits.items())
                 for name in SHARED_METADATA if len({getattr(split.metadata, name) for split in splits.values()}) > 1]
    detail = "; ".join(differing) if differing else f"{', '.join(SHARED_METADATA)} agree across {', '.join(splits)}"
    return Check("metadata:splits agree", not differing, detail)


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
    size = sudoku_side(split.metadata.seq_len)
    if size is None:
        return Check(name, False, f"seq_len {split.metadata.seq_len} is not a 4x4, 6x6 or 9x9 grid")
    bad, first = 0, ""
    for start, inputs, labels in paired_chunks(split):
        faults = sudoku_label_faults(inputs, labels, size)
        for row, fault in enumerate(faults):
            if fault is not None:
                bad += 1
                first = first or f"; first bad: example {start + row}: {fault}"
    total = split.num_examples()
    return Check(name, bad == 0, f"{total - bad} of {total} labels are valid solutions{first}")


# --------------------------------------------------------------------------- entry points


def _is_arc(root: Path, split: PuzzleSplit) -> bool:
    return puzzle_kind(root, split) == "arc"


def _content_checks(split_name: str, split: PuzzleSplit, report: CheckReport) -> str | None:
    """Adds the generic checks and the one of the split's kind (`puzzle_kind`); returns that kind."""
    puzzles_per_group, examples_per_group = _group_sizes(split)
    labels, inputs = _histogram(split, "labels"), _histogram(split, "inputs")
    report.stats[split_name] = _split_stats(split, examples_per_group, labels, inputs)
    report.checks.append(_augmentation_check(split_name, puzzles_per_group))
    report.checks.append(_label_check(split_name, labels, split.metadata.ignore_label_id))
    kind = puzzle_kind(split.root, split)
    if kind == "sudoku":
        report.checks.append(_sudoku_check(split_name, split))
    elif kind == "maze":
        report.checks.append(maze_check(split_name, split))
    elif kind == "routing":
        report.checks.append(routing_check(split_name, split))
    elif kind == "arc":
        report.checks.append(arc_check(split_name, split, arc_translation(split.root, split_name)))
    return kind


def path_scores(split: PuzzleSplit, predictions: np.ndarray) -> dict[str, float]:
    """Share of predicted grids that mark a valid S->G path, and an optimal one.

    Mazes: a shortest path. Routing splits: a legal route for the example's vehicle and a
    cost-optimal one, also per vehicle (`routing_path_scores`).
    """
    baseline = {"copy_exact": copy_exact_share(split, len(predictions))}
    if puzzle_kind(split.root, split) == "routing":
        return routing_path_scores(split, predictions) | baseline
    return maze_path_scores(split, predictions) | baseline


def copy_exact_share(split: PuzzleSplit, limit: int | None = None) -> float:
    """Exact accuracy a model would score by copying its input: the share of (the first `limit`)
    examples whose label equals the input at every labelled position. On mazes whose start touches
    the goal the path is empty, so exact accuracy is only worth what it adds to this."""
    inputs = np.concatenate([arrays["inputs"] for arrays in split.sets.values()])[:limit]
    labels = np.concatenate([arrays["labels"] for arrays in split.sets.values()])[:limit]
    labelled = labels != split.metadata.pad_id  # on disk, label 0 (pad) is what the loader ignores
    copied = ((inputs == labels) | ~labelled).all(axis=1) & labelled.any(axis=1)
    return float(copied.sum() / max(int(labelled.any(axis=1).sum()), 1))


def check_dataset(root: str | Path) -> CheckReport:
    """Run every check on the dataset at `root`; failures are recorded, never raised."""
    root = Path(root)
    report = CheckReport(root=str(root))
    loaded: dict[str, PuzzleSplit] = {}
    for split_name in _split_names(root):
        check, split = _structure_check(root, split_name)
        report.checks.append(check)
        if split is not None:
            loaded[split_name] = split
    if len(loaded) > 1:
        report.checks.append(_metadata_agreement_check(loaded))
    if all(name in loaded for name in STANDARD_SPLITS):
        report.checks.append(_overlap_check(loaded["train"], loaded["test"], _is_arc(root, loaded["test"])))
    arc_splits = {name: split for name, split in loaded.items()
                  if _content_checks(name, split, report) == "arc"}
    if arc_splits:
        report.checks.append(arc_puzzles_check(root, arc_splits))
    return report


def main_check(root: str | Path, json_out: str | None) -> int:
    """Print the report, write it as JSON to `json_out` if given; 0 if every check passed, else 1.
    A path that is no folder is bad input, not a dataset that fails: DatasetError, no report."""
    if not Path(root).exists():
        raise DatasetError(root, "no such dataset folder")
    if not Path(root).is_dir():
        raise DatasetError(root, "is a file, not a dataset folder")
    report = check_dataset(root)
    print(report.format())
    if json_out is not None:
        atomic_write_text(json_out, json.dumps(report.to_json(), indent=2) + "\n")
    return 0 if report.ok else 1
