"""Sequence-to-sequence examples for the HRM-LM: how one is made, cut to length and checked.

An *example* is a dict of three int lists::

    encoder_ids        the prompt                      (fed to the encoder)
    decoder_input_ids  [bos] + answer                  (teacher forcing)
    labels             answer + [eos]                  (-100 = ignored by the loss)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from hrmkit.lm.tokenizers import TextTokenizer
from hrmkit.model.labels import IGNORE_LABEL_ID

EXAMPLE_KEYS = ("encoder_ids", "decoder_input_ids", "labels")


def make_example(
    prompt_ids: Sequence[int], answer_ids: Sequence[int], tokenizer: TextTokenizer, max_seq_len: int
) -> dict[str, list[int]]:
    """One training example from token ids; no sequence is longer than `max_seq_len`.

    The prompt is cut from the left: its end (usually the question) matters most. The
    answer is cut from the right, so the decoder still learns how answers start.
    """
    if max_seq_len < 1:
        raise ValueError(f"max_seq_len must be >= 1, got {max_seq_len}")
    prompt_ids = [int(token) for token in prompt_ids]
    answer_ids = [int(token) for token in answer_ids]
    return {
        "encoder_ids": prompt_ids[-max_seq_len:],
        "decoder_input_ids": ([tokenizer.bos_id, *answer_ids])[:max_seq_len],
        "labels": ([*answer_ids, tokenizer.eos_id])[:max_seq_len],
    }


def make_text_example(prompt: str, answer: str, tokenizer: TextTokenizer, max_seq_len: int) -> dict[str, list[int]]:
    """`make_example` from strings."""
    return make_example(tokenizer.encode(prompt), tokenizer.encode(answer), tokenizer, max_seq_len)


def cut_at_eos(ids: Iterable[int], eos_id: int) -> list[int]:
    """The answer part of labels or generated ids: up to the first eos, ignored (-100) dropped."""
    answer = []
    for token in ids:
        token = int(token)
        if token == eos_id:
            break
        if token != IGNORE_LABEL_ID:
            answer.append(token)
    return answer


def truncated_example(example: dict[str, Any], max_seq_len: int | None) -> dict[str, Any]:
    """`example` with its sequences cut to `max_seq_len` the way `make_example` cuts them (None: as it is)."""
    if max_seq_len is None:
        return example
    return {
        **example,
        "encoder_ids": example["encoder_ids"][-max_seq_len:],
        "decoder_input_ids": example["decoder_input_ids"][:max_seq_len],
        "labels": example["labels"][:max_seq_len],
    }


def example_problem(example: Any, vocab_size: int) -> str | None:
    """Why `example` is not a valid example for this vocabulary, or None when it is."""
    if not isinstance(example, dict):
        return f"expected a JSON object, got {type(example).__name__}"
    missing = [key for key in EXAMPLE_KEYS if key not in example]
    if missing:
        return f"missing key(s): {', '.join(missing)}"
    for key in EXAMPLE_KEYS:
        ids = example[key]
        if not isinstance(ids, list) or not all(type(token) is int for token in ids):
            return f"'{key}' must be a list of integers"
        if not ids or (min(ids) >= 0 and max(ids) < vocab_size):
            continue
        for position, token in enumerate(ids):
            if not 0 <= token < vocab_size and not (key == "labels" and token == IGNORE_LABEL_ID):
                allowed = f"[0, vocab_size={vocab_size})" + (" or -100" if key == "labels" else "")
                return f"'{key}' token {token} at position {position} is outside {allowed}"
    if len(example["decoder_input_ids"]) != len(example["labels"]):
        return (
            f"decoder_input_ids has {len(example['decoder_input_ids'])} tokens "
            f"but labels has {len(example['labels'])}; they must match"
        )
    return None
