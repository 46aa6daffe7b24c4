"""Synthetic arithmetic corpora ("What is 12 + 7?" -> "19"): the HRM-LM's smallest real task."""

from __future__ import annotations

import os
import random
from collections.abc import Iterable, Sequence
from typing import Any

from hrmkit.lm.corpus_format import write_corpus
from hrmkit.lm.examples import make_text_example
from hrmkit.lm.tokenizers import SimpleTokenizer

ARITHMETIC_OPS = ("+", "-", "*")
# Every character an arithmetic prompt or answer can hold, whatever the ops: one
# vocabulary for all arithmetic corpora, so a checkpoint can be evaluated on any of them.
ARITHMETIC_ALPHABET = "".join(sorted(set("What is 0123456789?" + "".join(ARITHMETIC_OPS))))


def _random_operand(rng: random.Random, digits: int) -> int:
    length = rng.randint(1, digits)
    low = 0 if length == 1 else 10 ** (length - 1)
    return rng.randint(low, 10**length - 1)


def _arithmetic_answer(left: int, op: str, right: int) -> int:
    if op == "+":
        return left + right
    if op == "-":
        return left - right
    return left * right


def arithmetic_problems(
    count: int,
    digits: int = 2,
    ops: Sequence[str] = ("+", "-"),
    seed: int = 0,
    exclude: Iterable[Any] = frozenset(),
) -> list[tuple[str, str]]:
    """`count` distinct problems ("What is 12 + 7?", "19"), the same for the same arguments.

    Each problem picks its operator uniformly from `ops`; each operand first picks a digit
    count uniformly from 1..digits, then a value uniformly among numbers with exactly that
    many digits (0..9 for one digit). Short numbers therefore appear as often as long ones,
    instead of 1 % of the time as under a uniform draw from 0..99. Operands are never
    negative; a difference may be ("-5"). `exclude` holds prompts (or (prompt, answer)
    pairs) that must not be produced, e.g. another split's.
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    if digits < 1:
        raise ValueError(f"digits must be >= 1, got {digits}")
    ops = tuple(dict.fromkeys(ops))
    if not ops or any(op not in ARITHMETIC_OPS for op in ops):
        raise ValueError(f"ops must be a non-empty selection of {ARITHMETIC_OPS}, got {ops}")
    possible = len(ops) * 10 ** (2 * digits)
    if count > possible:
        raise ValueError(f"only {possible} distinct problems exist with {digits} digit(s) and ops {ops}; asked {count}")
    excluded = {item[0] if isinstance(item, tuple) else item for item in exclude}
    rng = random.Random(seed)
    seen: set[str] = set()
    problems: list[tuple[str, str]] = []
    # Rejection sampling; the cap stops a request that (almost) exhausts the space from spinning.
    max_draws = 50 * count + 10_000
    for _ in range(max_draws):
        if len(problems) == count:
            break
        op = rng.choice(ops)
        left, right = _random_operand(rng, digits), _random_operand(rng, digits)
        prompt = f"What is {left} {op} {right}?"
        if prompt in seen or prompt in excluded:
            continue
        seen.add(prompt)
        problems.append((prompt, str(_arithmetic_answer(left, op, right))))
    if len(problems) < count:
        raise ValueError(
            f"found only {len(problems)} of {count} distinct problems after {max_draws} draws; "
            "ask for fewer or allow more digits"
        )
    return problems


def arithmetic_max_seq_len(digits: int) -> int:
    """The longest sequence any arithmetic problem with `digits` digits needs.

    The prompt "What is A op B?" has 12 + 2*digits characters; the longest answer plus eos
    (a product) has 2*digits + 1.
    """
    return 12 + 2 * digits


def build_arithmetic_corpus(
    out_dir: str | os.PathLike,
    digits: int = 2,
    train: int = 10_000,
    val: int = 1_000,
    test: int = 0,
    ops: Sequence[str] = ("+", "-"),
    seed: int = 0,
    max_seq_len: int | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write an arithmetic corpus (see `arithmetic_problems`); returns its meta.

    All splits are drawn together as distinct problems, shuffled, then cut, so no val or test
    problem occurs in train and every split holds the same mix of operand lengths. (Cut in the
    order drawn, a request that nearly exhausts the problems that exist would leave the later
    splits only the long ones: train draws the few short problems first.) `max_seq_len` defaults
    to the longest any problem needs.
    """
    if train < 1 or val < 0 or test < 0:  # a negative count would cut the drawn problems from the end
        raise ValueError(f"an arithmetic corpus needs train >= 1 and val, test >= 0 problems; "
                         f"got train {train}, val {val}, test {test}")
    problems = arithmetic_problems(train + val + test, digits=digits, ops=ops, seed=seed)
    random.Random(seed).shuffle(problems)
    tokenizer = SimpleTokenizer(ARITHMETIC_ALPHABET)
    max_seq_len = max_seq_len or arithmetic_max_seq_len(digits)
    bounds = {"train": (0, train), "val": (train, train + val)}
    if test:
        bounds["test"] = (train + val, train + val + test)
    splits = {
        name: (make_text_example(prompt, answer, tokenizer, max_seq_len) for prompt, answer in problems[start:end])
        for name, (start, end) in bounds.items()
    }
    source = {
        "builder": "arithmetic",
        "digits": digits,
        "ops": list(dict.fromkeys(ops)),
        "seed": seed,
        "operands": "digit count uniform in 1..digits, then value uniform among numbers of that many digits; "
                    "distinct problems, shuffled, then cut into splits",
    }
    return write_corpus(out_dir, splits, tokenizer, {"max_seq_len": max_seq_len, "source": source}, overwrite=overwrite)
