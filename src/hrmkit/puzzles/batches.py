"""Batches from a puzzle split: the reference's training sampler and evaluation batches.

Training follows the reference sampler exactly (shuffled groups, one random puzzle per group, all
its examples, the partial last batch dropped), so a seed gives the same batches, after a resume
too, on any number of ranks. Evaluation visits every example once, in order. Both cast like the
reference loader and map the ignore label to the loss's IGNORE_LABEL_ID. `random_split` stands in
for a dataset where only the shapes matter (benchmarks).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hrmkit.files import DatasetError
from hrmkit.model.losses import IGNORE_LABEL_ID  # one definition, shared with the loss
from hrmkit.puzzles.format import PuzzleDatasetMetadata, PuzzleSplit, array_path
from hrmkit.train.distributed import local_batch_size


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
                    array_path(self.split.root / self.split.split, name, "group_indices"),
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

    def skip_batch(self) -> None:
        """Move past the next global batch, choosing its rows without gathering them."""
        self._next_global_rows()

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
    A set smaller than one batch gets one batch just big enough for it (a multiple of
    `world_size`): padding 8 ARC examples to a batch of 256 made `hrm eval` 30 times slower.
    """
    remaining = max_examples if max_examples > 0 else None
    for set_name in split.metadata.sets:
        arrays = split.sets[set_name]
        puzzle_indices = np.asarray(arrays["puzzle_indices"], dtype=np.int64)
        puzzle_identifiers = np.asarray(arrays["puzzle_identifiers"])
        total = len(arrays["inputs"]) if remaining is None else min(len(arrays["inputs"]), remaining)
        if remaining is not None:
            remaining -= total
        set_batch_size = min(batch_size, max(1, -(-total // world_size)) * world_size)
        local_size = local_batch_size(set_batch_size, rank, world_size)
        for global_start in range(0, total, set_batch_size):
            global_end = min(total, global_start + set_batch_size)
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
