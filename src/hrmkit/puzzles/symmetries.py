"""The symmetries of a puzzle family as invertible maps of token sequences (test-time scaling).

A symmetry moves tokens between positions and relabels them: ``new[i] = tokens[old[positions[i]]]``.
Both parts are permutations, so every symmetry has an exact inverse: an answer the model gives
for a transformed puzzle maps back to the original puzzle's frame, where answers can be voted on.

- Sudoku: digit relabelling, band/stack and row/column permutations, transposition only with
  square boxes (sudoku.random_symmetries, the builder's augmentations); blank and pad stay.
- Mazes: the 8 dihedral transforms of the grid; tokens stay.
- City routing: the 8 dihedral transforms of the map; the vehicle token keeps its last position.

ARC has its own augmentations and vote (arc_vote.py): its translations are not permutations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hrmkit.puzzles import sudoku
from hrmkit.puzzles.grid import dihedral_transform

KINDS = ("sudoku", "maze", "routing")
DIHEDRAL_COUNT = 8


@dataclass(frozen=True)
class Symmetry:
    positions: np.ndarray  # [seq_len]: the position each new token comes from
    tokens: np.ndarray  # [vocab_size]: the new token of each old one

    def apply(self, rows: np.ndarray) -> np.ndarray:
        """Transform [..., seq_len] token rows."""
        return self.tokens[np.asarray(rows)[..., self.positions]].astype(np.asarray(rows).dtype)

    def inverse(self) -> Symmetry:
        return Symmetry(np.argsort(self.positions), np.argsort(self.tokens))


def identity(seq_len: int, vocab_size: int) -> Symmetry:
    return Symmetry(np.arange(seq_len), np.arange(vocab_size))


def random_symmetries(kind: str, seq_len: int, vocab_size: int, count: int,
                      rng: np.random.Generator) -> list[Symmetry]:
    """``count`` symmetries of a ``kind`` puzzle, the identity first (so count 1 is the puzzle as given).

    The dihedral families have 8: with ``count`` <= 8 they are distinct; beyond, they repeat.
    """
    if kind not in KINDS:
        raise ValueError(f"no symmetries for {kind!r} puzzles (known: {', '.join(KINDS)})")
    if count < 1:
        raise ValueError(f"need at least one symmetry, got {count}")
    chosen = [identity(seq_len, vocab_size)]
    if count == 1:
        return chosen
    if kind == "sudoku":
        size = _side(seq_len, kind)
        cell_maps, digit_maps = sudoku.random_symmetries(size, count - 1, rng)
        for cells, digits in zip(cell_maps, digit_maps):
            tokens = np.arange(vocab_size)
            # token = digit + 1 (BLANK_TOKEN 1 is digit 0, which the digit map keeps); pad 0 stays.
            tokens[1:size + 2] = digits + sudoku.BLANK_TOKEN
            chosen.append(Symmetry(np.asarray(cells), tokens))
        return chosen
    grid_len = seq_len - 1 if kind == "routing" else seq_len
    side = _side(grid_len, kind)
    order = [int(index) for index in 1 + rng.permutation(DIHEDRAL_COUNT - 1)]  # 0 is the identity
    for index in (order * math.ceil((count - 1) / len(order)))[:count - 1]:
        moved = dihedral_transform(np.arange(grid_len).reshape(side, side), index).reshape(-1)
        positions = np.concatenate([moved, np.arange(grid_len, seq_len)])  # the vehicle stays last
        chosen.append(Symmetry(positions, np.arange(vocab_size)))
    return chosen


def _side(cells: int, kind: str) -> int:
    side = math.isqrt(cells)
    if side * side != cells:
        raise ValueError(f"a {kind} grid of {cells} cells is not square")
    return side
