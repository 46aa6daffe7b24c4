"""Test-time scaling: more guesses per puzzle from the puzzle family's symmetries, then a vote.

Guess j of every puzzle is the model's answer to the puzzle transformed by symmetry j (the first
is the puzzle as given), mapped back to the original frame. After each guess the rows' ballots
(vote.py) name their current best answer, so one pass over K symmetries gives the whole curve:
exact accuracy with 1, 2, 4, ... guesses, and what each cost in forward passes.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import torch

from hrmkit.model.losses import IGNORE_LABEL_ID
from hrmkit.puzzles.evaluate import evaluate_puzzles
from hrmkit.puzzles.format import PuzzleSplit
from hrmkit.puzzles.symmetries import Symmetry, random_symmetries
from hrmkit.puzzles.vote import Ballot


def guess_counts(most: int) -> list[int]:
    """1, 2, 4, ... up to ``most``, and ``most`` itself."""
    counts = [1]
    while counts[-1] * 2 < most:
        counts.append(counts[-1] * 2)
    return counts + ([most] if most > 1 else [])


def transformed_split(split: PuzzleSplit, symmetry: Symmetry) -> PuzzleSplit:
    """The split with every input and label transformed in memory; puzzles and groups unchanged."""
    sets = {name: {**arrays, "inputs": symmetry.apply(arrays["inputs"]), "labels": symmetry.apply(arrays["labels"])}
            for name, arrays in split.sets.items()}
    return dataclasses.replace(split, sets=sets)


def vote_over_symmetries(model, split: PuzzleSplit, kind: str, guesses: int, batch_size: int,
                         device: torch.device, seed: int = 0) -> dict:
    """``{"curve": [{"guesses", "exact_accuracy", "forward_passes_per_puzzle", "seconds"}, ...],
    "predictions": the voted answers [rows, seq_len]}`` for ``guesses`` symmetries of each puzzle."""
    meta = split.metadata
    symmetries = random_symmetries(kind, meta.seq_len, meta.vocab_size, guesses, np.random.default_rng(seed))
    labels = np.concatenate([np.asarray(arrays["labels"]) for arrays in split.sets.values()])
    scored = labels != IGNORE_LABEL_ID
    ballots = [Ballot() for _ in range(len(labels))]
    reported = set(guess_counts(guesses))
    curve, started = [], time.perf_counter()
    for count, symmetry in enumerate(symmetries, start=1):
        kept = evaluate_puzzles(model, transformed_split(split, symmetry), batch_size, device,
                                keep_predictions=True)["predictions"]
        answers = symmetry.inverse().apply(kept["predictions"])
        for ballot, answer, confidence in zip(ballots, answers, kept["q_halt"]):
            ballot.add(answer, confidence)
        if count in reported:
            voted = np.stack([ballot.ranked()[0].answer for ballot in ballots])
            exact = ((voted == labels) | ~scored).all(axis=1) & scored.any(axis=1)
            curve.append({"guesses": count, "exact_accuracy": float(exact.sum() / max(scored.any(axis=1).sum(), 1)),
                          "forward_passes_per_puzzle": count * model.config.halt_max_steps,
                          "seconds": time.perf_counter() - started})
    return {"curve": curve, "predictions": voted}
