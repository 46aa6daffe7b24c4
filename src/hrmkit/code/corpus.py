"""A processed HRM-LM corpus for code generation: MBPP prompts -> reference solutions.

``hrm prepare mbpp --data mbpp.jsonl --out data/mbpp`` writes the corpus format of ``data/text.py``:

- ``train`` = MBPP's train split (tasks 601-974), ``val`` = its validation split (511-600); the
  test split (11-510) is never read, so neither training nor the tokenizer sees it;
- each example's prompt is the task rendered in ``prompt_format`` (the same function
  ``hrm eval code`` uses, so training and scoring see one prompt) and its answer is the
  reference solution;
- a byte-level BPE tokenizer trained on those prompts and solutions (plus the text of any extra
  corpora), so indentation and newlines round-trip exactly;
- ``meta.json`` records ``prompt_format``; ``hrm eval code --prompt-format auto`` reads it back
  from the checkpoint's folder.

Extra code corpora (``extra_corpora``, folders in the same processed format, e.g. built with
``hrm data prepare-language``) are decoded with their own tokenizer, re-encoded with the new one
and added to train.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hrmkit.code.data import DEFAULT_MAX_SEQ_LEN, DEFAULT_VOCAB_SIZE, CodeDataError, load_mbpp, mbpp_shots, render_prompt
from hrmkit.lm.corpus_format import CorpusSplit, load_corpus_tokenizer, write_corpus
from hrmkit.lm.examples import make_text_example
from hrmkit.lm.tokenizers import train_bpe_tokenizer

def mbpp_pairs(mbpp_path: str | os.PathLike, split: str, prompt_format: str) -> list[tuple[str, str]]:
    """(prompt, reference solution) for every task of an MBPP split, the prompt as ``hrm eval code`` renders it."""
    shots = mbpp_shots(load_mbpp(mbpp_path, "prompt")) if prompt_format == "mbpp-3shot" else None
    return [(render_prompt(task, prompt_format, shots), task.reference.strip() + "\n")
            for task in load_mbpp(mbpp_path, split)]


def corpus_pairs(corpus_dir: str | os.PathLike, split: str = "train") -> Iterator[tuple[str, str]]:
    """(prompt, answer) texts of a processed corpus split, decoded with the corpus's own tokenizer."""
    tokenizer = load_corpus_tokenizer(corpus_dir)
    examples = CorpusSplit(corpus_dir, split)
    for index in range(len(examples)):
        example = examples[index]
        answer = [token for token in example["labels"] if token >= 0]  # -100 marks ignored positions
        yield tokenizer.decode(example["encoder_ids"]), tokenizer.decode(answer)  # specials are skipped


def build_mbpp_corpus(mbpp_path: str | os.PathLike, out_dir: str | os.PathLike, prompt_format: str = "plain",
                      vocab_size: int = DEFAULT_VOCAB_SIZE, max_seq_len: int = DEFAULT_MAX_SEQ_LEN,
                      extra_corpora: tuple[str | os.PathLike, ...] = (), overwrite: bool = False) -> dict[str, Any]:
    """Write the MBPP training corpus (see the module docstring); returns its meta.

    Examples whose prompt or solution is longer than ``max_seq_len`` tokens are dropped rather
    than cut (a cut solution would teach the model to stop mid-function); meta counts them.
    """
    splits = {"train": mbpp_pairs(mbpp_path, "train", prompt_format),
              "val": mbpp_pairs(mbpp_path, "validation", prompt_format)}
    for corpus in extra_corpora:
        if not (Path(corpus) / "train.jsonl").is_file():
            raise CodeDataError(f"{corpus}: not a processed corpus (no train.jsonl)")
        splits["train"] += list(corpus_pairs(corpus))
    if not splits["train"]:  # a corpus without training examples would only fail later, in `hrm train`
        raise CodeDataError(f"{mbpp_path}: holds none of MBPP's training tasks (601-974); nothing to train on")
    tokenizer = train_bpe_tokenizer((text for pairs in splits.values() for pair in pairs for text in pair), vocab_size)
    kept: dict[str, list[dict]] = {}
    dropped: dict[str, int] = {}
    for name, pairs in splits.items():
        examples = [make_text_example(prompt, answer, tokenizer, max_seq_len + 1) for prompt, answer in pairs]
        # make_example cuts at max_seq_len + 1 here, so anything longer than the limit shows as a full row.
        kept[name] = [example for example in examples
                      if len(example["encoder_ids"]) <= max_seq_len and len(example["labels"]) <= max_seq_len]
        dropped[name] = len(examples) - len(kept[name])
    if not kept["train"]:
        raise CodeDataError(f"{mbpp_path}: all {dropped['train']} training examples are longer than "
                            f"max_seq_len {max_seq_len} tokens (--max-seq-len); nothing is left to train on")
    source = {"builder": "mbpp", "mbpp_path": str(Path(mbpp_path).resolve()), "mbpp_splits": {"train": "train (601-974)",
              "val": "validation (511-600)"}, "extra_corpora": [str(Path(c).resolve()) for c in extra_corpora],
              "dropped_longer_than_max_seq_len": dropped}
    return write_corpus(out_dir, kept, tokenizer, {"max_seq_len": max_seq_len, "prompt_format": prompt_format,
                                                   "source": source}, overwrite=overwrite)
