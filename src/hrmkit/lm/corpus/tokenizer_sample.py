"""The bounded, seeded sample of training text that a byte-level BPE is trained on.

The BPE trainer keeps every distinct word of its input with bookkeeping per character, so its
memory grows with the text it is given (docs/BENCHMARKS.md, section 8). It therefore sees at
most `budget_bytes` of UTF-8 text, drawn from the whole training split rather than its start:

text number n of the split gets a seeded uniform key (see seeded_draws.py), and the sample is
the texts of smallest key, taken in key order for as long as their bytes fit in the budget. That
is a uniform draw without replacement, the same for the same seed however the split is batched,
found in one streaming pass that holds no more than the budget. A text longer than the whole
budget is cut to the budget first, so that even a corpus of one huge document gives a sample.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass

from hrmkit.lm.corpus.seeded_draws import TOKENIZER_SAMPLE_STREAM, SeededDraws


@dataclass
class TextSample:
    texts: list[str]  # in split order
    bytes: int
    texts_seen: int
    bytes_seen: int


def _utf8_size(text: str) -> int:
    return len(text.encode("utf-8"))


def _cut_to(text: str, budget_bytes: int) -> str:
    return text.encode("utf-8")[:budget_bytes].decode("utf-8", errors="ignore")


class _SmallestKeysWithin:
    """The smallest-key texts offered so far whose sizes fit in the budget, in key order.

    A max-heap on the key: when the budget overflows, the largest keys leave. A text whose key
    is not below every key that has left is refused, so what stays is always a key-order prefix.
    """

    def __init__(self, budget_bytes: int) -> None:
        self.budget_bytes = budget_bytes
        self.bytes = 0
        self._heap: list[tuple[float, int, str, int]] = []  # (-key, text number, text, bytes)
        self._cutoff = 1.0  # the smallest key that had to leave; keys are in [0, 1)

    def offer(self, key: float, number: int, text: str) -> None:
        if key >= self._cutoff:
            return
        size = _utf8_size(text)
        if size > self.budget_bytes:
            text = _cut_to(text, self.budget_bytes)
            size = _utf8_size(text)
        heapq.heappush(self._heap, (-key, number, text, size))
        self.bytes += size
        while self.bytes > self.budget_bytes:
            negative_key, _, _, left_size = heapq.heappop(self._heap)
            self.bytes -= left_size
            self._cutoff = -negative_key

    def texts_in_split_order(self) -> list[str]:
        return [text for _, _, text, _ in sorted(self._heap, key=lambda entry: entry[1])]


def sample_texts(batches: Iterable[list[str]], budget_bytes: int, seed: int) -> TextSample:
    """A seeded sample of at most `budget_bytes` (>= 1) UTF-8 bytes of the texts in `batches` (see the module doc)."""
    keys = SeededDraws(seed, TOKENIZER_SAMPLE_STREAM)
    kept = _SmallestKeysWithin(budget_bytes)
    texts_seen = bytes_seen = 0
    for texts in batches:
        for number, (key, text) in enumerate(zip(keys.draws(texts_seen, len(texts)).tolist(), texts), texts_seen):
            kept.offer(key, number, text)
        texts_seen += len(texts)
        bytes_seen += sum(map(_utf8_size, texts))
    return TextSample(kept.texts_in_split_order(), kept.bytes, texts_seen, bytes_seen)
