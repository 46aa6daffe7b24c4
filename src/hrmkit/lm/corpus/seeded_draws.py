"""Seeded uniform draws addressed by item number, for choices that must not depend on how a
stream is batched: which split a record goes to, which texts train the tokenizer.

Item k's draw comes from block k // BLOCK of a generator seeded with (seed, block, stream),
so any run of items gets the same draws whether it is asked for at once or in pieces.
"""

from __future__ import annotations

import numpy as np

SPLIT_STREAM = 0
TOKENIZER_SAMPLE_STREAM = 1


class SeededDraws:
    """Uniform draws in [0, 1): `draws(first, count)` are those of items first .. first + count - 1."""

    BLOCK = 4096

    def __init__(self, seed: int, stream: int) -> None:
        self.seed, self.stream = seed, stream
        self._block_index: int | None = None
        self._block: np.ndarray | None = None

    def _draws_of_block(self, block: int) -> np.ndarray:
        if block != self._block_index:
            # numpy seeds [seed, block, 0] exactly as [seed, block]: the split stream (0) keeps
            # the record assignment of corpora carved before there were other streams.
            generator = np.random.default_rng([self.seed, block, self.stream])
            self._block_index, self._block = block, generator.random(self.BLOCK)
        return self._block

    def draws(self, first: int, count: int) -> np.ndarray:
        parts = []
        position, end = first, first + count
        while position < end:
            block, offset = divmod(position, self.BLOCK)
            take = min(self.BLOCK - offset, end - position)
            parts.append(self._draws_of_block(block)[offset : offset + take])
            position += take
        return np.concatenate(parts) if parts else np.zeros(0)
