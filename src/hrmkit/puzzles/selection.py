"""Picking a split's examples from a stream of candidates (shared by the dataset builders).

Builders generate or import candidates, turn some down (a repeated input, a held-out solution,
a path that is too short) and keep the rest until a split is full. A generated stream is endless,
so when too many candidates in a row are turned down the request cannot be met and we stop with
a clear error instead of looping forever.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MAX_CONSECUTIVE_REJECTIONS = 2000

ProgressCallback = Callable[[str, int, int], None]


@dataclass
class Selection:
    inputs: list[np.ndarray] = field(default_factory=list)
    labels: list[np.ndarray] = field(default_factory=list)
    rejected: Counter = field(default_factory=Counter)  # reason -> candidates turned down for it


def spread(values: np.ndarray) -> dict[str, float]:
    """min / mean / max of a non-empty array, as written into build summaries and check reports."""
    return {"min": int(values.min()), "mean": round(float(values.mean()), 3), "max": int(values.max())}


def csv_table(path: str) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """(header, rows) of an imported UTF-8 CSV: rows yields (line number, fields) of each row after
    the header, blank lines skipped. The line number is the one the row starts on, also after a
    quoted field that spans lines. A byte-order mark (spreadsheets save UTF-8 with one) is not part
    of the first column's name. A missing file, bytes that are not UTF-8, a malformed row and a row
    with another number of fields than the header end in a one-line ValueError naming the file
    and the line."""
    if not Path(path).is_file():
        raise ValueError(f"{path}: CSV file not found")
    lines = _csv_lines(path)
    _, header = next(lines, (1, []))

    def rows() -> Iterator[tuple[int, list[str]]]:
        for line_number, row in lines:
            if len(row) != len(header):
                raise ValueError(f"{path}:{line_number}: expected {len(header)} fields, got {len(row)}")
            yield line_number, row

    return header, rows()


def _csv_lines(path: str) -> Iterator[tuple[int, list[str]]]:
    with open(path, newline="", encoding="utf-8-sig") as file:
        reader = csv.reader(file)
        first_line = 1  # reader.line_num counts the lines read so far: where the last row ended
        try:
            for row in reader:
                if row:
                    yield first_line, row
                first_line = reader.line_num + 1
        except UnicodeDecodeError:
            raise ValueError(_not_utf8(path)) from None
        except csv.Error as error:
            raise ValueError(f"{path}:{first_line}: {error}") from None


def _not_utf8(path: str) -> str:
    with open(path, "rb") as file:
        for line_number, line in enumerate(file, start=1):  # b"\n" is never part of a multi-byte character
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as error:
                return (f"{path}:{line_number}: byte {line[error.start]:#04x} at column {error.start + 1} "
                        "is not UTF-8 text; save the file as UTF-8")
    return f"{path}: not UTF-8 text; save the file as UTF-8"


def shuffled_rows(inputs: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Imported (input, label) rows in a seeded random order."""
    for row in rng.permutation(len(inputs)):
        yield inputs[row], labels[row]


def imported_streams(read: Callable[[str], tuple[np.ndarray, np.ndarray]], from_csv: str, test_csv: str | None,
                     seed: int) -> tuple[Iterator[tuple[np.ndarray, np.ndarray]], Iterator[tuple[np.ndarray, np.ndarray]]]:
    """(train, test) candidates from imported files, each file's rows in a seeded random order.

    ``read(path)`` gives a file's (inputs, labels). Without ``test_csv`` both splits draw from one
    stream of ``from_csv``: test takes the first shuffled rows, train the rest.
    """
    train = shuffled_rows(*read(from_csv), np.random.default_rng([seed, 3]))
    test = train if test_csv is None else shuffled_rows(*read(test_csv), np.random.default_rng([seed, 4]))
    return train, test


def require_imported_rows(train: Selection, test: Selection, from_csv: str, test_csv: str | None) -> None:
    """ValueError naming the file that left a split of an import without rows (the counts asked for are
    "at most this many", so a short file is fine, an empty split is not)."""
    if not train.inputs:
        raise ValueError(f"{from_csv}: no rows left for the train split")
    if not test.inputs:
        raise ValueError(f"{test_csv or from_csv}: no rows for the test split")


def select(
    candidates: Iterator[tuple[np.ndarray, np.ndarray]],
    count: int,
    rejection: Callable[[np.ndarray, np.ndarray], str | None],
    on_accept: Callable[[np.ndarray], None],
    endless: bool,
    report: ProgressCallback,
    description: str,
    impossible: Callable[[Selection], str],
) -> Selection:
    """Keep up to ``count`` candidates for which ``rejection`` gives no reason.

    ``on_accept(input)`` records a kept input (so later candidates and splits can refuse repeats);
    ``impossible(selection)`` words the error raised when an endless stream keeps being turned down.
    """
    selection = Selection()
    in_a_row = 0
    report(description, 0, count)
    while len(selection.inputs) < count:
        candidate = next(candidates, None)
        if candidate is None:
            break
        inputs, labels = candidate
        reason = rejection(inputs, labels)
        if reason:
            selection.rejected[reason] += 1
            in_a_row += 1
        else:
            on_accept(inputs)
            selection.inputs.append(inputs)
            selection.labels.append(labels)
            in_a_row = 0
            report(description, len(selection.inputs), count)
        if endless and in_a_row >= MAX_CONSECUTIVE_REJECTIONS:
            raise ValueError(impossible(selection))
    return selection
