"""How source records become training examples (encoder_ids, decoder_input_ids, labels).

Two modes, chosen with `mode`:

continuation (default) — plain documents, read from `text_field`
    The document's tokens are cut into consecutive *continuation blocks* of
    `continuation_tokens` tokens (default max_seq_len - 1, so that block + eos fits). Each
    block is the answer; the `prefix_tokens` tokens just before it (default max_seq_len) are
    the prompt. The first block starts at token min(prefix_tokens, n // 2) of an n-token
    document, so a long document's first prompt is a full prefix and a short one is split
    in half. Every token after that point is predicted exactly once; documents of fewer
    than two tokens yield nothing and are counted as too short. Each answer ends with eos,
    also mid-document: the decoder learns to stop after one block.

prompt-response — records that hold a prompt and its answer
    `prompt_field` is encoded as the prompt and `response_field` as the answer, truncated
    as `make_example` does (the prompt loses its start, the answer its end).

Fields are dotted paths (see field_paths.py), e.g. `data.question` or `answers.text[0]`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal, get_args

from hrmkit.lm.corpus.field_paths import FieldPath
from hrmkit.lm.examples import make_example
from hrmkit.lm.tokenizers import TextTokenizer

Mode = Literal["continuation", "prompt-response"]
MODES = get_args(Mode)


@dataclass(frozen=True)
class TriplesConfig:
    """How records become examples; see the module docstring."""

    max_seq_len: int = 512
    """longest encoder or decoder sequence in tokens, eos included"""
    mode: Mode = "continuation"
    """continuation (plain documents) or prompt-response (pairs)"""
    text_field: str = "text"
    """continuation: the field holding the document"""
    prompt_field: str = "prompt"
    """prompt-response: the prompt's field"""
    response_field: str = "response"
    """prompt-response: the answer's field"""
    prefix_tokens: int | None = None
    """continuation: prompt length in tokens (default: --max-seq-len)"""
    continuation_tokens: int | None = None
    """continuation: answer block length in tokens (default: --max-seq-len - 1, room for eos)"""

    def __post_init__(self) -> None:
        problems = []
        if self.mode not in MODES:
            problems.append(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if type(self.max_seq_len) is not int or self.max_seq_len < 2:
            problems.append(f"max_seq_len must be an integer >= 2 (room for one token and eos), got {self.max_seq_len!r}")
        elif self.mode == "continuation":
            if self.prefix_tokens is not None and not 1 <= self.prefix_tokens <= self.max_seq_len:
                problems.append(f"prefix_tokens must be in 1..max_seq_len={self.max_seq_len}, got {self.prefix_tokens}")
            if self.continuation_tokens is not None and not 1 <= self.continuation_tokens < self.max_seq_len:
                problems.append(
                    f"continuation_tokens must be in 1..{self.max_seq_len - 1} (max_seq_len - 1, leaving room for eos), "
                    f"got {self.continuation_tokens}"
                )
        for name in ("text_field", "prompt_field", "response_field"):
            try:
                FieldPath.parse(getattr(self, name))
            except ValueError as error:
                problems.append(f"{name}: {error}")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def prefix_length(self) -> int:
        return self.prefix_tokens or self.max_seq_len

    @property
    def block_length(self) -> int:
        return self.continuation_tokens or self.max_seq_len - 1

    def field_paths(self, literal: bool = False) -> list[FieldPath]:
        """The fields this mode reads, in the order `record_texts` returns them.

        `literal` takes each field name as one top-level key (records written by the
        extract stage use the path text itself as the key).
        """
        names = [self.text_field] if self.mode == "continuation" else [self.prompt_field, self.response_field]
        return [FieldPath.literal(name) if literal else FieldPath.parse(name) for name in names]

    def to_json_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["prefix_tokens"], data["continuation_tokens"] = self.prefix_length, self.block_length
        if self.mode == "continuation":
            del data["prompt_field"], data["response_field"]
        else:
            del data["text_field"], data["prefix_tokens"], data["continuation_tokens"]
        return data


def continuation_examples(
    ids: Sequence[int], config: TriplesConfig, tokenizer: TextTokenizer
) -> Iterator[dict[str, list[int]]]:
    """The examples of one document's tokens (see the module docstring)."""
    count = len(ids)
    if count < 2:
        return
    ids = ids if isinstance(ids, list) else list(ids)  # slices of a list are lists: no copies below
    prefix, block = config.prefix_length, config.block_length
    bos, eos = tokenizer.bos_id, tokenizer.eos_id
    for start in range(min(prefix, count // 2), count, block):
        answer = ids[start : start + block]
        yield {
            "encoder_ids": ids[max(0, start - prefix) : start],
            "decoder_input_ids": [bos, *answer],
            "labels": [*answer, eos],
        }


def pair_example(
    prompt_ids: Sequence[int], response_ids: Sequence[int], config: TriplesConfig, tokenizer: TextTokenizer
) -> dict[str, list[int]]:
    return make_example(prompt_ids, response_ids, tokenizer, config.max_seq_len)


def examples_of_record(
    encoded: Sequence[Sequence[int]], config: TriplesConfig, tokenizer: TextTokenizer
) -> Iterator[dict[str, list[int]]]:
    """Examples from one record's encoded fields (in `field_paths` order)."""
    if config.mode == "continuation":
        yield from continuation_examples(encoded[0], config, tokenizer)
    else:
        yield pair_example(encoded[0], encoded[1], config, tokenizer)
