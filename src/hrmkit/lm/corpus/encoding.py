"""Batched tokenization that runs beside the rest of the pipeline.

`BPETokenizer.encode_many` hands a whole batch to the Hugging Face library, which splits it
over its own thread pool and releases the GIL meanwhile; running it on a helper thread lets
the main thread parse the next batch and write the previous one at the same time. At most
`lookahead` batches are in flight, which bounds memory.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from hrmkit.lm.tokenizers import TextTokenizer

Payload = TypeVar("Payload")


def set_tokenizer_threads(threads: int) -> None:
    """Size the Hugging Face tokenizers' thread pool (0 = one per core).

    The library reads RAYON_NUM_THREADS when it first works in parallel, so this only takes
    effect before the first batch in a process.
    """
    if threads < 0:
        raise ValueError(f"tokenizer threads must be >= 0, got {threads}")
    if threads:
        os.environ["RAYON_NUM_THREADS"] = str(threads)
    # Without this the library may turn parallelism off, and warn, after a fork.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")


def encode_texts(tokenizer: TextTokenizer, texts: Sequence[str]) -> list[list[int]]:
    """Token ids of each text; the batched (parallel) path when the tokenizer has one."""
    encode_many = getattr(tokenizer, "encode_many", None)
    if encode_many is not None:
        return encode_many(texts)
    return [tokenizer.encode(text) for text in texts]


def encoded_in_background(
    batches: Iterable[tuple[Sequence[str], Payload]], tokenizer: TextTokenizer, lookahead: int = 2
) -> Iterator[tuple[list[list[int]], Payload]]:
    """For each (texts, payload): (token ids of the texts, payload), in order, encoded ahead."""
    pending: deque[tuple[Future, Any]] = deque()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="hrmkit-tokenize") as pool:
        try:
            for texts, payload in batches:
                pending.append((pool.submit(encode_texts, tokenizer, texts), payload))
                if len(pending) > lookahead:
                    future, ready_payload = pending.popleft()
                    yield future.result(), ready_payload
            while pending:
                future, ready_payload = pending.popleft()
                yield future.result(), ready_payload
        finally:
            for future, _ in pending:
                future.cancel()
