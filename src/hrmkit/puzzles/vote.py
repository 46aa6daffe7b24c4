"""Choosing one answer among many guesses at the same question.

The guesses come from augmented variants of an ARC task, from symmetric copies of a puzzle, or from
several checkpoints. Identical answers pool their votes; candidates rank by how many guesses gave
them, then by their mean confidence (sigmoid of the final segment's q_halt: the model's own belief
that it is done), then by which was seen first. This is the reference ARC evaluator's order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def answer_key(answer: np.ndarray) -> bytes:
    """Identical answers (same shape, same values, whatever the integer dtype) and only they share a key."""
    answer = np.asarray(answer, dtype=np.int64)
    return np.asarray(answer.shape, dtype=np.int64).tobytes() + answer.tobytes()


@dataclass
class Candidate:
    answer: np.ndarray
    key: bytes
    votes: int = 0
    confidence_sum: float = 0.0

    @property
    def mean_confidence(self) -> float:
        return self.confidence_sum / self.votes


class Ballot:
    """The candidate answers to one question."""

    def __init__(self) -> None:
        self._candidates: dict[bytes, Candidate] = {}

    def add(self, answer: np.ndarray, confidence: float = 0.0) -> None:
        key = answer_key(answer)
        candidate = self._candidates.setdefault(key, Candidate(np.asarray(answer), key))
        candidate.votes += 1
        candidate.confidence_sum += float(confidence)

    def ranked(self) -> list[Candidate]:
        """Most votes first, then the higher mean confidence; a full tie keeps the order first seen."""
        return sorted(self._candidates.values(), key=lambda c: (c.votes, c.mean_confidence), reverse=True)

    def __len__(self) -> int:
        return len(self._candidates)
