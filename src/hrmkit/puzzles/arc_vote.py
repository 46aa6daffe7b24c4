"""ARC-AGI scoring: undo each variant's augmentation, vote across variants, report pass@k.

The test split of an ARC dataset holds every test pair of every evaluation task once per
augmented variant (see `hrmkit.puzzles.arc`). Each variant's prediction is cropped back to a grid
(the largest top-left block of colour tokens, as the reference reads it), and the variant's
colour map and dihedral transform, named in its puzzle identifier, are undone. Identical
answers to the same (task, test pair) then pool their votes: candidates rank by how many
variants gave them, ties by their mean sigmoid(q_halt) (the model's own confidence), as in
the reference evaluator.

pass@k counts a test pair right when its answer is among the top k candidates, and is
reported two ways: all-or-nothing per task (a task counts only when every one of its test
pairs is right) and fractional (each pair counts 1 / pairs of its task: the reference's and
the ARC Prize's score). `submission.json` holds the top two candidates per test pair in the
ARC Prize (Kaggle) format.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hrmkit.files import DatasetError, atomic_write_text
from hrmkit.puzzles.arc import (
    COLOUR_OFFSET,
    MAX_GRID_SIZE,
    grid_sizes,
    parse_grid,
    parse_variant_name,
    unaugment_grid,
)
from hrmkit.puzzles.build import build_summary
from hrmkit.puzzles.format import PuzzleSplit, load_identifiers, load_split
from hrmkit.puzzles.vote import Ballot, answer_key

DEFAULT_PASS_KS = (1, 2, 10)
SUBMISSION_ATTEMPTS = 2
_ROWS_PER_CHUNK = 65_536
_EMPTY_ANSWER = [[0]]  # what a submission holds for a test pair nobody answered


@dataclass
class _TestTask:
    inputs: list[np.ndarray]
    outputs: list[np.ndarray]
    votes: list[Ballot] = field(default_factory=list)  # one per test pair


def _load_test_tasks(root: Path) -> dict[str, _TestTask]:
    path = root / "test_puzzles.json"
    if not path.is_file():
        raise DatasetError(path, "file not found; ARC scoring needs the test tasks written by the ARC builder")
    try:
        raw = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise DatasetError(path, f"not valid JSON ({error})") from None
    if not isinstance(raw, dict):
        raise DatasetError(path, "expected a JSON object of tasks keyed by id")
    tasks = {}
    for task_id, task in raw.items():
        pairs = task.get("test") if isinstance(task, dict) else None
        if not isinstance(pairs, list) or not pairs:
            raise DatasetError(path, f"task {task_id}: expected a non-empty 'test' list")
        try:
            inputs = [parse_grid(pair["input"], f"task {task_id} test pair {i} input") for i, pair in enumerate(pairs)]
            outputs = [parse_grid(pair["output"], f"task {task_id} test pair {i} output")
                       for i, pair in enumerate(pairs)]
        except (KeyError, TypeError):
            raise DatasetError(path, f"task {task_id}: every test pair needs an 'input' and an 'output'") from None
        except ValueError as error:
            raise DatasetError(path, str(error)) from None
        tasks[task_id] = _TestTask(inputs, outputs, [Ballot() for _ in pairs])
    return tasks


def _row_layout(split: PuzzleSplit, rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(puzzle identifier, position within its puzzle, inputs) of the split's first `rows` rows, sets in order."""
    identifiers = [np.zeros(0, dtype=np.int64)]
    positions = [np.zeros(0, dtype=np.int64)]
    inputs = [np.zeros((0, split.metadata.seq_len), dtype=np.uint8)]
    for set_name in split.metadata.sets:
        arrays = split.sets[set_name]
        offsets = np.asarray(arrays["puzzle_indices"], dtype=np.int64)
        count = min(rows - sum(len(chunk) for chunk in identifiers), len(arrays["inputs"]))
        if count <= 0:
            break
        row = np.arange(count)
        puzzle = np.searchsorted(offsets, row, side="right") - 1
        identifiers.append(np.asarray(arrays["puzzle_identifiers"])[puzzle])
        positions.append(row - offsets[puzzle])
        inputs.append(arrays["inputs"][:count])
    # One set (the usual case): keep its memory map rather than copying every input row.
    all_inputs = inputs[1] if len(inputs) == 2 else np.concatenate(inputs)
    return np.concatenate(identifiers), np.concatenate(positions), all_inputs


def _checked_predictions(predictions: dict[str, np.ndarray], split: PuzzleSplit) -> tuple[np.ndarray, np.ndarray]:
    if "predictions" not in predictions:
        raise ValueError("predictions must hold 'predictions': [rows, 900] predicted tokens")
    tokens = np.asarray(predictions["predictions"])
    if tokens.ndim != 2 or tokens.shape[1] != split.metadata.seq_len:
        raise ValueError(f"predictions must be [rows, {split.metadata.seq_len}], got shape {tokens.shape}")
    if len(tokens) > split.num_examples():
        raise ValueError(f"{len(tokens)} predicted rows, but the {split.split} split has {split.num_examples()}")
    confidence = predictions.get("q_halt")
    confidence = np.zeros(len(tokens)) if confidence is None else np.asarray(confidence, dtype=np.float64).reshape(-1)
    if len(confidence) != len(tokens):
        raise ValueError(f"q_halt has {len(confidence)} entries for {len(tokens)} predicted rows")
    return tokens, confidence


def _crop_all(tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    heights, widths = [], []
    for start in range(0, len(tokens), _ROWS_PER_CHUNK):
        h, w = grid_sizes(np.asarray(tokens[start : start + _ROWS_PER_CHUNK]))
        heights.append(h)
        widths.append(w)
    empty = np.zeros(0, dtype=np.int64)
    return np.concatenate([empty, *heights]), np.concatenate([empty, *widths])


def _cropped(tokens: np.ndarray, height: int, width: int) -> np.ndarray:
    square = np.asarray(tokens).reshape(MAX_GRID_SIZE, MAX_GRID_SIZE)
    return (square[:height, :width].astype(np.int64) - COLOUR_OFFSET).astype(np.uint8)


def _collect_votes(tasks: dict[str, _TestTask], split: PuzzleSplit, identifiers: list[str], tokens: np.ndarray,
                   confidence: np.ndarray, given_identifiers: np.ndarray | None) -> dict[str, int]:
    """Add every predicted row's de-augmented answer to its (task, test pair); returns row counts."""
    puzzle_ids, positions, inputs = _row_layout(split, len(tokens))
    if given_identifiers is not None and not np.array_equal(np.asarray(given_identifiers).reshape(-1), puzzle_ids):
        raise ValueError("predictions' puzzle_identifiers do not match the split's rows: predict every row in order")
    input_sizes, answer_sizes = _crop_all(inputs), _crop_all(tokens)
    parsed: dict[int, tuple[str, int, np.ndarray]] = {}
    counts = {"rows_voted": 0, "rows_not_in_test_puzzles": 0, "rows_input_mismatch": 0}
    for row, (puzzle_id, position) in enumerate(zip(puzzle_ids.tolist(), positions.tolist())):
        if puzzle_id not in parsed:
            parsed[puzzle_id] = parse_variant_name(identifiers[puzzle_id])
        task_id, trans_id, colours = parsed[puzzle_id]
        task = tasks.get(task_id)
        if task is None or position >= len(task.inputs):
            counts["rows_not_in_test_puzzles"] += 1
            continue
        shown = unaugment_grid(_cropped(inputs[row], input_sizes[0][row], input_sizes[1][row]), trans_id, colours)
        if not np.array_equal(shown, task.inputs[position]):  # the row is not the pair we think it is
            counts["rows_input_mismatch"] += 1
            continue
        answer = unaugment_grid(_cropped(tokens[row], answer_sizes[0][row], answer_sizes[1][row]), trans_id, colours)
        task.votes[position].add(answer, confidence[row])
        counts["rows_voted"] += 1
    return counts


def _score(tasks: dict[str, _TestTask], pass_ks: Sequence[int]) -> tuple[dict[str, float], dict[str, list]]:
    strict = {k: 0.0 for k in pass_ks}
    fractional = {k: 0.0 for k in pass_ks}
    submission: dict[str, list] = {}
    unanswered = candidates = 0
    for task_id, task in tasks.items():
        right = {k: [] for k in pass_ks}
        submission[task_id] = []
        for output, votes in zip(task.outputs, task.votes):
            ranked = votes.ranked()
            unanswered += not ranked
            candidates += len(ranked)
            label = answer_key(output)
            for k in pass_ks:
                right[k].append(any(candidate.key == label for candidate in ranked[:k]))
            # An answer cropped to 0x0 (its top-left token not a colour) is no grid a submission may hold.
            grids = [candidate.answer.tolist() for candidate in ranked if candidate.answer.size]
            attempts = grids[:SUBMISSION_ATTEMPTS] or [_EMPTY_ANSWER]
            attempts += [attempts[0]] * (SUBMISSION_ATTEMPTS - len(attempts))  # pad with the best, as the reference
            submission[task_id].append({f"attempt_{i + 1}": grid for i, grid in enumerate(attempts)})
        for k in pass_ks:
            strict[k] += all(right[k])
            fractional[k] += sum(right[k]) / len(right[k])
    num_tasks = max(len(tasks), 1)
    pairs = sum(len(task.outputs) for task in tasks.values())
    metrics: dict[str, float] = {}
    for k in pass_ks:
        metrics[f"arc_pass@{k}"] = strict[k] / num_tasks
        metrics[f"arc_pass@{k}_fractional"] = fractional[k] / num_tasks
    metrics.update({"arc_tasks": len(tasks), "arc_test_pairs": pairs, "arc_pairs_unanswered": unanswered,
                    "arc_mean_candidates_per_pair": candidates / max(pairs, 1)})
    return metrics, submission


def evaluate_arc_predictions(
    dataset_dir: str | os.PathLike,
    predictions: dict[str, np.ndarray],
    out_dir: str | os.PathLike | None = None,
    pass_ks: Sequence[int] = DEFAULT_PASS_KS,
    split: str = "test",
) -> dict[str, Any]:
    """Vote the predictions for an ARC dataset's test split; returns metrics, writes out_dir/submission.json.

    `predictions` holds, for the split's first rows in order (as `evaluate_puzzles` keeps them):
    `predictions` [rows, 900] tokens (required), `q_halt` [rows] sigmoid of the final segment's
    q_halt logit (optional; without it ties between equally voted answers go to the first seen)
    and `puzzle_identifiers` [rows] (optional; checked against the split).

    Metrics: `arc_pass@k` (all-or-nothing per task) and `arc_pass@k_fractional` (each test pair
    1 / pairs of its task) for each k in `pass_ks`, plus counts of tasks, pairs, unanswered pairs
    and rows. Rows whose de-augmented input is not the test input they stand for are not voted.
    """
    if not pass_ks or any(not isinstance(k, int) or isinstance(k, bool) or k < 1 for k in pass_ks):
        raise ValueError(f"pass_ks must be positive integers, got {list(pass_ks)}")
    root = Path(dataset_dir)
    tasks = _load_test_tasks(root)
    loaded = load_split(root, split)
    tokens, confidence = _checked_predictions(predictions, loaded)
    given_identifiers = predictions.get("puzzle_identifiers")
    counts = _collect_votes(tasks, loaded, load_identifiers(root), tokens, confidence, given_identifiers)
    metrics, submission = _score(tasks, sorted(set(pass_ks)))
    metrics.update({f"arc_{name}": count for name, count in counts.items()})
    if _solutions_unknown(root):
        metrics["arc_solutions_unknown"] = 1  # test answers were placeholders: pass@k means nothing
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "submission.json", json.dumps(submission))
    return metrics


def _solutions_unknown(root: Path) -> bool:
    return build_summary(root).get("test_solutions_known") is False
