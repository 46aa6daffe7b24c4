"""Test-time scaling: more guesses per puzzle from the puzzle family's symmetries and from several
models (checkpoints), then a vote.

A guess is one model's answer to the puzzle transformed by one symmetry (the first symmetry is the
puzzle as given), mapped back to the original frame. Guesses go symmetry by symmetry, each asked of
every model in turn, so with M models the first M guesses are the models voting on the puzzle as
given. After each guess the rows' ballots (vote.py) name their current best answer, so one pass
gives the whole curve: exact accuracy with 1, 2, 4, ... guesses, and what each cost in forward passes.

``select="verified"`` also reports a second choice: the best-ranked candidate that passes the
family's own checker (Sudoku: every unit a permutation and the givens kept; mazes: a shortest
path; routing: a legal route), else the voted one. It uses knowledge of the rules that the model
does not have, so it is its own column, never the headline figure.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Callable

import numpy as np
import torch

from hrmkit.puzzles.check import sudoku_label_faults
from hrmkit.puzzles.evaluate import evaluate_puzzles
from hrmkit.puzzles.format import PuzzleSplit, scored_positions
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


def exact_rows(answers: np.ndarray, labels: np.ndarray, ignore_label_id: int | None) -> np.ndarray:
    """[rows] bool: the answer matches the label wherever the label is scored; whatever a model
    answers at the ignored positions does not count."""
    scored = scored_positions(labels, ignore_label_id)
    return ((answers == labels) | ~scored).all(axis=1) & scored.any(axis=1)


def verified_choice(ballot: Ballot, puzzle: np.ndarray, passes: Callable[[np.ndarray, np.ndarray], bool]) -> Candidate:
    """The best-ranked candidate that passes the rules, else the best-ranked one."""
    ranked = ballot.ranked()
    return next((candidate for candidate in ranked if passes(puzzle, candidate.answer)), ranked[0])


def transformed_split(split: PuzzleSplit, symmetry: Symmetry) -> PuzzleSplit:
    """The split with every input and label transformed in memory; puzzles and groups unchanged."""
    sets = {name: {**arrays, "inputs": symmetry.apply(arrays["inputs"]), "labels": symmetry.apply(arrays["labels"])}
            for name, arrays in split.sets.items()}
    return dataclasses.replace(split, sets=sets)


def vote_over_guesses(models: list, split: PuzzleSplit, kind: str, symmetries_per_model: int, batch_size: int,
                      device: torch.device, seed: int = 0, select: str = "vote",
                      autocast=contextlib.nullcontext) -> dict:
    """``{"curve": [{"guesses", "exact_accuracy", "forward_passes_per_puzzle", "seconds"}, ...],
    "single_model_exact": [each model alone on the puzzles as given], "predictions": the voted answers
    [rows, seq_len]}`` for ``symmetries_per_model`` symmetries of each puzzle asked of every model; with
    ``select="verified"`` each point also has ``verified_exact_accuracy``, and ``verified_predictions`` holds
    the answers chosen so from all the guesses."""
    if select not in SELECTIONS:
        raise ValueError(f"select must be one of {', '.join(SELECTIONS)}, got {select!r}")
    meta = split.metadata
    symmetries = random_symmetries(kind, meta.seq_len, meta.vocab_size, symmetries_per_model, np.random.default_rng(seed))
    labels = np.concatenate([np.asarray(arrays["labels"]) for arrays in split.sets.values()])
    puzzles = np.concatenate([np.asarray(arrays["inputs"]) for arrays in split.sets.values()])
    scorable = max(int(scored_positions(labels, meta.ignore_label_id).any(axis=1).sum()), 1)
    passes = rule_checker(kind, meta.seq_len) if select == "verified" else None

    def exact_share(answers: np.ndarray) -> float:
        return float(exact_rows(answers, labels, meta.ignore_label_id).sum() / scorable)

    ballots = [Ballot() for _ in range(len(labels))]
    reported = set(guess_counts(len(symmetries) * len(models))) | {len(models)}  # M: the models alone, voting
    curve, single_model_exact, forward_passes, count = [], [], 0, 0
    started = time.perf_counter()
    for symmetry in symmetries:
        transformed = transformed_split(split, symmetry)
        for model in models:
            kept = evaluate_puzzles(model, transformed, batch_size, device, autocast,
                                    keep_predictions=True)["predictions"]
            answers = symmetry.inverse().apply(kept["predictions"])
            for ballot, answer, confidence in zip(ballots, answers, kept["q_halt"]):
                ballot.add(answer, confidence)
            count += 1
            forward_passes += model.config.halt_max_steps
            if len(single_model_exact) < len(models):
                single_model_exact.append(exact_share(answers))
            if count in reported:
                voted = np.stack([ballot.ranked()[0].answer for ballot in ballots])
                point = {"guesses": count, "exact_accuracy": exact_share(voted),
                         "forward_passes_per_puzzle": forward_passes, "seconds": time.perf_counter() - started}
                if passes is not None:
                    verified = np.stack([verified_choice(ballot, puzzle, passes).answer
                                         for ballot, puzzle in zip(ballots, puzzles)])
                    point["verified_exact_accuracy"] = exact_share(verified)
                curve.append(point)
    chosen = {"verified_predictions": verified} if passes is not None else {}
    return {"curve": curve, "single_model_exact": single_model_exact, "predictions": voted, **chosen}
