"""Tokenizers for the sequence-to-sequence HRM-LM: one interface, two kinds.

Both kinds share the four special tokens at the same ids, so corpora, models and
generation code never ask which kind they hold::

    0 <pad>   1 <bos>   2 <eos>   3 <unk>

`SimpleTokenizer` maps single characters (synthetic tasks such as arithmetic, where a
byte-level BPE would only blur the digits); `BPETokenizer` wraps a Hugging Face
`tokenizers.Tokenizer` (natural language, code). Each saves itself as one JSON file and
`load_tokenizer` tells them apart by the file's content. Nothing is ever downloaded.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

from hrmkit.files import DatasetError, atomic_write_text

SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>", "<unk>")
PAD_ID, BOS_ID, EOS_ID, UNK_ID = range(len(SPECIAL_TOKENS))

CHAR_TOKENIZER_TYPE = "hrmkit-char"

# 256 byte symbols plus the four specials: a byte-level BPE can be no smaller.
MIN_BPE_VOCAB_SIZE = 256 + len(SPECIAL_TOKENS)


class TextTokenizer(Protocol):
    """What corpora, tasks and generation rely on; both kinds below provide it."""

    pad_id: int
    bos_id: int
    eos_id: int
    unk_id: int
    vocab_size: int

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Iterable[int], skip_special: bool = True) -> str: ...

    def save(self, path: str | os.PathLike) -> None: ...


class SimpleTokenizer:
    """Character-level: the specials at 0..3, then the alphabet's distinct characters in order.

    Characters outside the alphabet encode to `<unk>`. Decoding treats ids outside the
    vocabulary as `<unk>` too, so a model with a padded output layer cannot crash it.
    """

    def __init__(self, alphabet: str) -> None:
        if not isinstance(alphabet, str):
            raise TypeError(f"alphabet must be a string, got {type(alphabet).__name__}")
        self.alphabet = "".join(dict.fromkeys(alphabet))  # distinct, first occurrence wins
        self.pad_id, self.bos_id, self.eos_id, self.unk_id = PAD_ID, BOS_ID, EOS_ID, UNK_ID
        self._id_of = {char: len(SPECIAL_TOKENS) + index for index, char in enumerate(self.alphabet)}
        self._token_of = [*SPECIAL_TOKENS, *self.alphabet]
        self.vocab_size = len(self._token_of)

    @classmethod
    def for_texts(cls, texts: Iterable[str]) -> SimpleTokenizer:
        """A tokenizer whose alphabet is every character in `texts`, sorted (streams once)."""
        seen: set[str] = set()
        for text in texts:
            seen.update(text)
        return cls("".join(sorted(seen)))

    def encode(self, text: str) -> list[int]:
        unk = self.unk_id
        return [self._id_of.get(char, unk) for char in text]

    def decode(self, ids: Iterable[int], skip_special: bool = True) -> str:
        pieces = []
        for token_id in ids:
            token_id = int(token_id)
            if not 0 <= token_id < self.vocab_size:
                token_id = self.unk_id
            if skip_special and token_id < len(SPECIAL_TOKENS):
                continue
            pieces.append(self._token_of[token_id])
        return "".join(pieces)

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "type": CHAR_TOKENIZER_TYPE,
            "version": 1,
            "special_tokens": list(SPECIAL_TOKENS),
            "alphabet": self.alphabet,
        }

    @classmethod
    def from_json_dict(cls, data: dict[str, Any], path: str | os.PathLike) -> SimpleTokenizer:
        alphabet = data.get("alphabet")
        if not isinstance(alphabet, str):
            raise DatasetError(path, f"'alphabet' must be a string, got {alphabet!r}")
        specials = data.get("special_tokens", list(SPECIAL_TOKENS))
        if specials != list(SPECIAL_TOKENS):
            raise DatasetError(path, f"'special_tokens' must be {list(SPECIAL_TOKENS)}, got {specials!r}")
        return cls(alphabet)

    def save(self, path: str | os.PathLike) -> None:
        atomic_write_text(path, json.dumps(self.to_json_dict(), ensure_ascii=False, indent=2) + "\n")

    def __repr__(self) -> str:
        return f"SimpleTokenizer(vocab_size={self.vocab_size}, alphabet={self.alphabet!r})"


def _import_hf_tokenizers():
    try:
        import tokenizers  # the Hugging Face library; this module's own name is relative
    except ImportError:
        raise ImportError(
            "BPE tokenizers need the Hugging Face 'tokenizers' package: pip install 'tokenizers>=0.15'"
        ) from None
    return tokenizers


class BPETokenizer:
    """A Hugging Face `tokenizers.Tokenizer` behind the shared interface.

    The special tokens are looked up by name (`<pad>`, `<bos>`, `<eos>`, `<unk>`), so any
    `tokenizer.json` that defines them works, whatever ids it gives them.
    """

    def __init__(self, hf_tokenizer: Any) -> None:
        self.hf_tokenizer = hf_tokenizer
        ids = {}
        for token in SPECIAL_TOKENS:
            token_id = hf_tokenizer.token_to_id(token)
            if token_id is None:
                raise ValueError(
                    f"the tokenizer has no '{token}' token; it needs all of {', '.join(SPECIAL_TOKENS)}"
                )
            ids[token] = token_id
        self.pad_id, self.bos_id, self.eos_id, self.unk_id = (ids[token] for token in SPECIAL_TOKENS)
        self.vocab_size = hf_tokenizer.get_vocab_size(with_added_tokens=True)

    @classmethod
    def _from_text(cls, text: str, path: str | os.PathLike) -> BPETokenizer:
        tokenizers = _import_hf_tokenizers()
        try:
            hf_tokenizer = tokenizers.Tokenizer.from_str(text)
        except Exception as error:  # the Rust side raises a bare Exception
            raise DatasetError(path, f"not a Hugging Face tokenizer.json ({error})") from None
        try:
            return cls(hf_tokenizer)
        except ValueError as error:
            raise DatasetError(path, str(error)) from None

    def encode(self, text: str) -> list[int]:
        return self.hf_tokenizer.encode(text, add_special_tokens=False).ids

    def encode_many(self, texts: Sequence[str]) -> list[list[int]]:
        """`encode` over many texts at once (the library parallelises it)."""
        return [encoding.ids for encoding in self.hf_tokenizer.encode_batch(list(texts), add_special_tokens=False)]

    def decode(self, ids: Iterable[int], skip_special: bool = True) -> str:
        return self.hf_tokenizer.decode([int(token_id) for token_id in ids], skip_special_tokens=skip_special)

    def save(self, path: str | os.PathLike) -> None:
        atomic_write_text(path, self.hf_tokenizer.to_str())

    def __repr__(self) -> str:
        return f"BPETokenizer(vocab_size={self.vocab_size})"


def train_bpe_tokenizer(texts: Iterable[str], vocab_size: int, min_frequency: int = 2) -> BPETokenizer:
    """Train a byte-level BPE (GPT-2 style) with the specials at ids 0..3.

    `texts` is consumed once as a stream, so a corpus larger than memory is fine. Byte-level
    means every string encodes without `<unk>` and decodes back exactly.
    """
    if vocab_size < MIN_BPE_VOCAB_SIZE:
        raise ValueError(
            f"a byte-level BPE needs vocab_size >= {MIN_BPE_VOCAB_SIZE} (256 bytes + 4 specials), got {vocab_size}"
        )
    if min_frequency < 1:
        raise ValueError(f"min_frequency must be >= 1, got {min_frequency}")
    tokenizers = _import_hf_tokenizers()
    hf_tokenizer = tokenizers.Tokenizer(tokenizers.models.BPE(unk_token="<unk>"))
    # No prefix space: it would make decode(encode(text)) differ from text.
    hf_tokenizer.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    hf_tokenizer.decoder = tokenizers.decoders.ByteLevel()
    trainer = tokenizers.trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),  # added first, so they take ids 0..3
        initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    hf_tokenizer.train_from_iterator(iter(texts), trainer=trainer)
    return BPETokenizer(hf_tokenizer)


def load_tokenizer(path: str | os.PathLike) -> SimpleTokenizer | BPETokenizer:
    """Load whichever kind `path` holds: an hrmkit character tokenizer or a HF tokenizer.json."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DatasetError(path, "tokenizer file not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise DatasetError(path, f"cannot read ({error})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise DatasetError(path, f"not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise DatasetError(path, f"expected a JSON object, got {type(data).__name__}")
    if data.get("type") == CHAR_TOKENIZER_TYPE:
        return SimpleTokenizer.from_json_dict(data, path)
    if "model" in data:  # every Hugging Face tokenizer.json has a "model" section
        return BPETokenizer._from_text(text, path)
    raise DatasetError(
        path, f"unknown tokenizer file: neither type '{CHAR_TOKENIZER_TYPE}' nor a Hugging Face tokenizer.json"
    )
