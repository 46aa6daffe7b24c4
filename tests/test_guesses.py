"""Test-time guesses from a puzzle family's symmetries: the curve, its first point, and the flag."""

import numpy as np
import pytest
import torch

from hrmkit.cli import main
from hrmkit.loading import load_checkpoint
from hrmkit.puzzles.evaluate import evaluate_puzzles
from hrmkit.puzzles.format import load_split
from hrmkit.puzzles.guesses import guess_counts, transformed_split, vote_over_symmetries
from hrmkit.puzzles.symmetries import random_symmetries
from hrmkit.train.task import metric_means


def test_guess_counts_double_up_to_the_most():
    assert guess_counts(1) == [1]
    assert guess_counts(8) == [1, 2, 4, 8]
    assert guess_counts(6) == [1, 2, 4, 6]


def test_one_guess_is_the_plain_evaluation_and_more_guesses_draw_a_curve(trained_sudoku_run, sudoku4):
    model, _ = load_checkpoint(trained_sudoku_run / "final")
    split = load_split(sudoku4, "test")
    plain = metric_means(evaluate_puzzles(model, split, 64, torch.device("cpu")))
    result = vote_over_symmetries(model, split, "sudoku", 4, 64, torch.device("cpu"))
    assert [point["guesses"] for point in result["curve"]] == [1, 2, 4]
    assert result["curve"][0]["exact_accuracy"] == pytest.approx(plain["exact_accuracy"])
    assert [point["forward_passes_per_puzzle"] for point in result["curve"]] == [4, 8, 16]
    assert result["predictions"].shape == (64, 16)


def test_a_transformed_split_keeps_its_puzzles_and_moves_its_tokens(sudoku4):
    split = load_split(sudoku4, "test")
    symmetry = random_symmetries("sudoku", 16, split.metadata.vocab_size, 2, np.random.default_rng(0))[1]
    moved = transformed_split(split, symmetry)
    for name, arrays in split.sets.items():
        assert np.array_equal(moved.sets[name]["puzzle_indices"], arrays["puzzle_indices"])
        assert np.array_equal(symmetry.inverse().apply(moved.sets[name]["labels"]), arrays["labels"])
        assert not np.array_equal(moved.sets[name]["inputs"], arrays["inputs"])


@pytest.mark.cli
def test_hrm_eval_tta_prints_the_curve_and_refuses_bad_values(trained_sudoku_run, sudoku4, tmp_path, capsys):
    assert main(["eval", "--checkpoint", str(trained_sudoku_run / "final"), "--data", str(sudoku4),
                 "--tta", "2", "--out", str(tmp_path / "eval")]) == 0
    out = capsys.readouterr().out
    assert "1 guess per puzzle" in out and "2 guesses per puzzle" in out
    assert main(["eval", "--checkpoint", str(trained_sudoku_run / "final"), "--data", str(sudoku4),
                 "--tta", "0", "--out", str(tmp_path / "bad")]) == 2
    assert "--tta must be at least 1" in capsys.readouterr().err and not (tmp_path / "bad").exists()
