"""Test-time scaling: more guesses per puzzle from the puzzle family's symmetries, then a vote.

Guess j of every puzzle is the model's answer to the puzzle transformed by symmetry j (the first
is the puzzle as given), mapped back to the original frame. After each guess the rows' ballots
(vote.py) name their current best answer, so one pass over K symmetries gives the whole curve:
exact accuracy with 1, 2, 4, ... guesses, and what each cost in forward passes.

``select="verified"`` also reports a second choice: the best-ranked candidate that passes the
family's own checker (Sudoku: every unit a permutation and the givens kept; mazes: a shortest
path; routing: a legal route), else the voted one. It uses knowledge of the rules that the model
does not have, so it is its own column, never the headline figure.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable

import numpy as np
import torch

from hrmkit.model.losses import IGNORE_LABEL_ID
from hrmkit.puzzles.check import sudoku_label_faults
from hrmkit.puzzles.evaluate import evaluate_puzzles
from hrmkit.puzzles.format import PuzzleSplit
from hrmkit.puzzles.maze import is_valid_path
from hrmkit.puzzles.routing import judge_path
from hrmkit.puzzles.symmetries import Symmetry, random_symmetries
from hrmkit.puzzles.vote import Ballot, Candidate

SELECTIONS = ("vote", "verified")


def guess_counts(most: int) -> list[int]:
    """1, 2, 4, ... up to ``most``, and ``most`` itself."""
    counts = [1]
    while counts[-1] * 2 < most:
        counts.append(counts[-1] * 2)
    return counts + ([most] if most > 1 else [])


def rule_checker(kind: str, seq_len: int) -> Callable[[np.ndarray, np.ndarray], bool]:
    """``passes(input_row, answer_row)``: whether an answer obeys the puzzle family's rules."""
    if kind == "sudoku":
        size = math.isqrt(seq_len)
        return lambda puzzle, answer: sudoku_label_faults(puzzle[None], answer[None], size)[0] is None
    if kind == "maze":
        size = math.isqrt(seq_len)

        def shortest_path(puzzle: np.ndarray, answer: np.ndarray) -> bool:
            try:
                return is_valid_path(puzzle, answer, size)
            except ValueError:  # the answer is not a maze at all
                return False
        return shortest_path
    side = math.isqrt(seq_len - 1)
    return lambda puzzle, answer: judge_path(puzzle, answer, side)[0] is None


def verified_choice(ballot: Ballot, puzzle: np.ndarray, passes: Callable[[np.ndarray, np.ndarray], bool]) -> Candidate:
    """The best-ranked candidate that passes the rules, else the best-ranked one."""
    ranked = ballot.ranked()
    return next((candidate for candidate in ranked if passes(puzzle, candidate.answer)), ranked[0])


def transformed_split(split: PuzzleSplit, symmetry: Symmetry) -> PuzzleSplit:
    """The split with every input and label transformed in memory; puzzles and groups unchanged."""
    sets = {name: {**arrays, "inputs": symmetry.apply(arrays["inputs"]), "labels": symmetry.apply(arrays["labels"])}
            for name, arrays in split.sets.items()}
    return dataclasses.replace(split, sets=sets)


def vote_over_symmetries(model, split: PuzzleSplit, kind: str, guesses: int, batch_size: int,
                         device: torch.device, seed: int = 0, select: str = "vote") -> dict:
    """``{"curve": [{"guesses", "exact_accuracy", "forward_passes_per_puzzle", "seconds"}, ...],
    "predictions": the voted answers [rows, seq_len]}`` for ``guesses`` symmetries of each puzzle;
    with ``select="verified"`` each point also has ``verified_exact_accuracy``."""
    if select not in SELECTIONS:
        raise ValueError(f"select must be one of {', '.join(SELECTIONS)}, got {select!r}")
    meta = split.metadata
    symmetries = random_symmetries(kind, meta.seq_len, meta.vocab_size, guesses, np.random.default_rng(seed))
    labels = np.concatenate([np.asarray(arrays["labels"]) for arrays in split.sets.values()])
    puzzles = np.concatenate([np.asarray(arrays["inputs"]) for arrays in split.sets.values()])
    scored = labels != IGNORE_LABEL_ID
    passes = rule_checker(kind, meta.seq_len) if select == "verified" else None

    def exact_share(answers: np.ndarray) -> float:
        exact = ((answers == labels) | ~scored).all(axis=1) & scored.any(axis=1)
        return float(exact.sum() / max(scored.any(axis=1).sum(), 1))

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
            point = {"guesses": count, "exact_accuracy": exact_share(voted),
                     "forward_passes_per_puzzle": count * model.config.halt_max_steps,
                     "seconds": time.perf_counter() - started}
            if passes is not None:
                point["verified_exact_accuracy"] = exact_share(np.stack(
                    [verified_choice(ballot, puzzle, passes).answer for ballot, puzzle in zip(ballots, puzzles)]))
            curve.append(point)
    return {"curve": curve, "predictions": voted}
