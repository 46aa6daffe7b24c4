"""What every puzzle-dataset builder does around its own work (Sudoku, maze, routing, ARC).

A builder checks its config, then `BuildRun.start` refuses an existing output (unless asked to
replace it), settles the progress callback and starts the clock. `BuildRun.summary` makes what is
saved as hrmkit_build.json: the builder's identifier and config first. The seconds taken stay out of
it, so the same config and seed build the same bytes; `BuildRun.write` returns the summary with them
added last, for the command line to print.

The Sudoku, maze and routing builders write the same shape of dataset: per split one set, "all",
in which every puzzle holds the same number of examples and every group the same number of
puzzles (`uniform_arrays`), all under the one `<blank>` identifier (`blank_identifier_metadata`);
`BuildRun.write` writes it. ARC streams its own arrays (arc_dataset.py).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hrmkit.files import check_output_free
from hrmkit.puzzles.format import PuzzleDatasetMetadata, write_dataset
from hrmkit.puzzles.selection import ProgressCallback

SUMMARY_FILE = "hrmkit_build.json"


def build_summary(root: str | Path) -> dict[str, Any]:
    """hrmkit_build.json as written by an hrmkit builder; empty for reference-built (or unreadable) datasets."""
    try:
        summary = json.loads((Path(root) / SUMMARY_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return summary if isinstance(summary, dict) else {}


def _silent(description: str, completed: int, total: int) -> None:
    pass


@dataclass
class BuildRun:
    """One call of a builder: where it writes, how it reports progress, and when it started."""

    builder: str  # the stable identifier saved in the summary (checkers and viewers recognise datasets by it)
    config: Any  # the builder's config dataclass, saved in the summary
    out_dir: Path
    overwrite: bool
    report: ProgressCallback
    started: float

    @classmethod
    def start(cls, builder: str, config: Any, out_dir: str | Path, overwrite: bool,
              progress: ProgressCallback | None) -> BuildRun:
        """Refuse an existing `out_dir` unless `overwrite`; call after checking the config."""
        out_dir = check_output_free(out_dir, overwrite)
        return cls(builder, config, out_dir, overwrite, progress or _silent, time.perf_counter())

    def summary(self, fields: dict[str, Any]) -> dict[str, Any]:
        """The build summary as saved: builder and config, then `fields`."""
        return {"builder": self.builder, "config": asdict(self.config), **fields}

    def timed(self, summary: dict[str, Any]) -> dict[str, Any]:
        """`summary` with the seconds taken so far added last (printed, never saved)."""
        return {**summary, "seconds": round(time.perf_counter() - self.started, 3)}

    def write(self, splits: dict[str, dict[str, np.ndarray]], metadata: dict[str, PuzzleDatasetMetadata],
              summary: dict[str, Any]) -> dict[str, Any]:
        """Write each split's arrays as its one set "all", the `<blank>` identifier list and the summary;
        returns the summary with the seconds taken (`timed`)."""
        self.report("writing", 0, 1)
        write_dataset(self.out_dir, {split: {"all": arrays} for split, arrays in splits.items()}, metadata,
                      ["<blank>"], extra_files={SUMMARY_FILE: summary}, overwrite=self.overwrite)
        self.report("writing", 1, 1)
        return self.timed(summary)


def require_at_least(minimum: int, config: Any, names: tuple[str, ...]) -> None:
    """ValueError naming the first of the config's fields `names` that is below `minimum`.

    Split sizes take 1: a split without puzzles can be neither trained on nor checked."""
    for name in names:
        if getattr(config, name) < minimum:
            raise ValueError(f"{name} must be >= {minimum}, got {getattr(config, name)}")


def uniform_arrays(inputs: np.ndarray, labels: np.ndarray, examples_per_puzzle: int,
                   puzzles_per_group: int) -> dict[str, np.ndarray]:
    """The five reference arrays of `inputs` and `labels` (rows in puzzle order, a puzzle's examples
    consecutive) cut into puzzles of `examples_per_puzzle` rows and groups of `puzzles_per_group` puzzles."""
    num_puzzles = len(inputs) // examples_per_puzzle
    return {
        "inputs": inputs,
        "labels": labels,
        "puzzle_identifiers": np.zeros(num_puzzles, dtype=np.int32),
        "puzzle_indices": np.arange(0, len(inputs) + 1, examples_per_puzzle, dtype=np.int32),
        "group_indices": np.arange(0, num_puzzles + 1, puzzles_per_group, dtype=np.int32),
    }


def blank_identifier_metadata(vocab_size: int, seq_len: int, num_groups: int, examples_per_puzzle: int = 1,
                              total_puzzles: int | None = None) -> PuzzleDatasetMetadata:
    """dataset.json of a `uniform_arrays` split: pad and ignore label 0, only the `<blank>` identifier.

    `total_puzzles` None is filled in as the number of puzzles when written; TRM writes the number of
    groups there for Sudoku and mazes.
    """
    return PuzzleDatasetMetadata(
        pad_id=0,
        ignore_label_id=0,
        blank_identifier_id=0,
        vocab_size=vocab_size,
        seq_len=seq_len,
        num_puzzle_identifiers=1,
        total_groups=num_groups,
        mean_puzzle_examples=float(examples_per_puzzle),
        sets=["all"],
        total_puzzles=total_puzzles,
    )
