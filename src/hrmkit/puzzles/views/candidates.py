"""The guesses behind a vote, for the run page: each example's candidate answers from ``--tta K``
symmetric copies (as ``hrm eval --tta`` makes them), with their votes, mean confidence, whether each
is the target, and whether each obeys the family's rules (what ``--select verified`` would use)."""

from __future__ import annotations

from typing import Any

import numpy as np

from hrmkit.puzzles.format import scored_positions
from hrmkit.puzzles.guesses import rule_checker
from hrmkit.puzzles.symmetries import random_symmetries
from hrmkit.puzzles.views.trace import Tracer, collect
from hrmkit.puzzles.vote import Ballot
from hrmkit.viz.page_data import tokens_text

SHOWN_CANDIDATES = 6  # the best-ranked; the page says how many there were


def candidate_fields(data: dict[str, np.ndarray], tracer: Tracer, kind: str, seq_len: int, vocab_size: int,
                     guesses: int, ignore_label: int | None, seed: int = 0) -> list[dict[str, Any]]:
    """Per row of ``data`` (inputs, labels, puzzle_identifiers): ``{"guesses", "candidates": [...],
    "candidate_count"}``, candidates best first (the first is the vote's answer)."""
    symmetries = random_symmetries(kind, seq_len, vocab_size, guesses, np.random.default_rng(seed))
    ballots = [Ballot() for _ in range(len(data["inputs"]))]
    for symmetry in symmetries:
        trace = collect(tracer(symmetry.apply(data["inputs"]), data["puzzle_identifiers"]))
        answers = symmetry.inverse().apply(trace.predictions[:, -1])
        confidences = 1 / (1 + np.exp(-trace.q_halt[:, -1].astype(np.float64)))
        for ballot, answer, confidence in zip(ballots, answers, confidences):
            ballot.add(answer, confidence)
    passes = rule_checker(kind, seq_len)
    fields = []
    for ballot, puzzle, label in zip(ballots, data["inputs"], data["labels"]):
        scored = scored_positions(label, ignore_label)
        ranked = ballot.ranked()
        fields.append({"guesses": len(symmetries), "candidate_count": len(ranked), "candidates": [
            {"answer": tokens_text(candidate.answer), "votes": candidate.votes,
             "confidence": round(candidate.mean_confidence, 3),
             "correct": bool(((candidate.answer == label) | ~scored).all()),
             "obeys_rules": bool(passes(puzzle, candidate.answer))}
            for candidate in ranked[:SHOWN_CANDIDATES]]})
    return fields
