"""What a training loop pays for its batches, with and without loader workers, side by side in one run.

    python benchmarks/batch_loader.py [--rows 768] [--groups 20000] [--puzzles-per-group 8] [--busy-ms 20] [--steps 60]

A Sudoku-shaped split in memory (seq 81; each group holds several one-example puzzles, as an augmented
Sudoku set does, so the sampler draws from its generator for every group) feeds ``TrainSampler``
batches of ``--rows`` rows. The loop stands in for a GPU step: it holds the GIL for ``--busy-ms`` in
pure Python, as a training loop launching kernels does, then asks for the next batch. Printed per
setting: milliseconds per iteration and the part of it spent waiting for the batch.
"""

import argparse
import platform
import statistics
import time

import numpy as np

from hrmkit.puzzles.batches import TrainSampler
from hrmkit.puzzles.format import PuzzleDatasetMetadata, PuzzleSplit
from hrmkit.train.batch_loader import BatchLoader


def sudoku_like_split(groups: int, puzzles_per_group: int, seed: int = 0) -> PuzzleSplit:
    rng = np.random.default_rng(seed)
    puzzles = groups * puzzles_per_group
    arrays = {"inputs": rng.integers(1, 11, (puzzles, 81), dtype=np.int32),
              "labels": rng.integers(1, 11, (puzzles, 81), dtype=np.int32),
              "puzzle_identifiers": np.zeros(puzzles, dtype=np.int32),
              "puzzle_indices": np.arange(puzzles + 1, dtype=np.int32),
              "group_indices": np.arange(0, puzzles + 1, puzzles_per_group, dtype=np.int32)}
    meta = PuzzleDatasetMetadata(pad_id=0, ignore_label_id=0, blank_identifier_id=0, vocab_size=11, seq_len=81,
                                 num_puzzle_identifiers=1, total_groups=groups, mean_puzzle_examples=1.0,
                                 sets=["all"], total_puzzles=puzzles)
    return PuzzleSplit(root=None, split="memory", metadata=meta, sets={"all": arrays}, identifiers=["<blank>"])


def busy(milliseconds: float) -> None:
    end = time.perf_counter() + milliseconds / 1000
    while time.perf_counter() < end:
        pass


def measure(loader: BatchLoader, steps: int, busy_ms: float) -> tuple[float, float]:
    loader.next_batch()  # start-up (workers fork here) is not a per-step cost
    waits, totals = [], []
    for _ in range(steps):
        start = time.perf_counter()
        busy(busy_ms)
        before = time.perf_counter()
        loader.next_batch()
        end = time.perf_counter()
        waits.append(end - before)
        totals.append(end - start)
    loader.close()
    return statistics.median(totals) * 1e3, statistics.median(waits) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=768)
    parser.add_argument("--groups", type=int, default=20000)
    parser.add_argument("--puzzles-per-group", type=int, default=8)
    parser.add_argument("--busy-ms", type=float, default=20.0)
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args()
    split = sudoku_like_split(args.groups, args.puzzles_per_group)
    print(f"{platform.machine()} {platform.processor() or ''}; {args.rows}-row batches, loop busy "
          f"{args.busy_ms:g} ms per step holding the GIL")
    for workers in (0, 1, 0, 1):  # twice each, interleaved
        total, wait = measure(BatchLoader(TrainSampler(split, args.rows, seed=0), workers=workers), args.steps,
                              args.busy_ms)
        print(f"workers={workers}: {total:6.2f} ms per step, {wait:5.2f} ms of it waiting for the batch")


if __name__ == "__main__":
    main()
