"""Test-time guesses from a puzzle family's symmetries: the curve, its first point, and the flag."""

import json

import numpy as np
import pytest
import torch

from hrmkit.cli import main
from hrmkit.loading import load_checkpoint
from hrmkit.puzzles.evaluate import evaluate_puzzles
from hrmkit.puzzles.format import load_split
from hrmkit.puzzles.guesses import guess_counts, transformed_split, vote_over_guesses
from hrmkit.puzzles.symmetries import random_symmetries
from hrmkit.train.task import metric_means


def earliest_checkpoint(run):
    return min((run / "checkpoints").glob("step_*.pt"), key=lambda path: int(path.stem.split("_")[1]))


def test_guess_counts_double_up_to_the_most():
    assert guess_counts(1) == [1]
    assert guess_counts(8) == [1, 2, 4, 8]
    assert guess_counts(6) == [1, 2, 4, 6]


def test_one_guess_is_the_plain_evaluation_and_more_guesses_draw_a_curve(trained_sudoku_run, sudoku4):
    model, _ = load_checkpoint(trained_sudoku_run / "final")
    split = load_split(sudoku4, "test")
    plain = metric_means(evaluate_puzzles(model, split, 64, torch.device("cpu")))
    result = vote_over_guesses([model], split, "sudoku", 4, 64, torch.device("cpu"))
    assert [point["guesses"] for point in result["curve"]] == [1, 2, 4]
    assert result["curve"][0]["exact_accuracy"] == pytest.approx(plain["exact_accuracy"])
    assert [point["forward_passes_per_puzzle"] for point in result["curve"]] == [4, 8, 16]
    assert result["predictions"].shape == (64, 16)


def test_several_models_are_asked_the_puzzle_as_given_first_then_each_symmetry(trained_sudoku_run, sudoku4):
    trained, _ = load_checkpoint(trained_sudoku_run / "final")
    earlier, _ = load_checkpoint(earliest_checkpoint(trained_sudoku_run))
    split = load_split(sudoku4, "test")
    alone = [metric_means(evaluate_puzzles(m, split, 64, torch.device("cpu")))["exact_accuracy"] for m in (trained, earlier)]
    result = vote_over_guesses([trained, earlier], split, "sudoku", 2, 64, torch.device("cpu"))
    assert result["single_model_exact"] == pytest.approx(alone)
    assert [point["guesses"] for point in result["curve"]] == [1, 2, 4]
    assert [point["forward_passes_per_puzzle"] for point in result["curve"]] == [4, 8, 16]
    assert result["curve"][0]["exact_accuracy"] == pytest.approx(alone[0])
    # The same model twice: every guess it adds agrees with the first, so the vote changes nothing.
    twice = vote_over_guesses([trained, trained], split, "sudoku", 1, 64, torch.device("cpu"))
    assert [point["exact_accuracy"] for point in twice["curve"]] == pytest.approx([alone[0]] * 2)


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


@pytest.mark.cli
def test_hrm_eval_keeps_the_voted_and_verified_answers_and_says_what_it_evaluated(trained_sudoku_run, sudoku4,
                                                                                  tmp_path):
    """The answers behind the printed guess curve were thrown away: predictions.npz held the single guess
    only, and metrics.json did not say which checkpoints, data, split, tta and selection it came from."""
    out = tmp_path / "eval"
    assert main(["eval", "--checkpoint", str(trained_sudoku_run / "final"), "--data", str(sudoku4),
                 "--tta", "4", "--select", "verified", "--out", str(out)]) == 0
    saved = np.load(out / "predictions.npz")
    metrics = json.loads((out / "metrics.json").read_text())
    labels = load_split(sudoku4, "test").sets["all"]["labels"]
    for name, figure in (("voted", "exact_accuracy"), ("verified", "verified_exact_accuracy")):
        assert saved[name].shape == saved["predictions"].shape
        assert (saved[name] == labels).all(axis=1).mean() == pytest.approx(metrics["test_time_guesses"][-1][figure])
    assert metrics["evaluated"] == {"checkpoints": [str(trained_sudoku_run / "final")], "data": str(sudoku4),
                                    "split": "test", "tta": 4, "select": "verified",
                                    "checkpoint_picked_on_this_split": False}


@pytest.mark.cli
def test_hrm_eval_votes_across_checkpoints(trained_sudoku_run, sudoku4, tmp_path, capsys):
    final, first = trained_sudoku_run / "final", earliest_checkpoint(trained_sudoku_run)
    assert main(["eval", "--checkpoint", str(final), str(first), "--data", str(sudoku4), "--out", str(tmp_path / "eval")]) == 0
    out = capsys.readouterr().out
    assert f"each checkpoint alone: {final}" in out and "2 guesses per puzzle" in out


@pytest.mark.parametrize("kind", ["sudoku", "maze", "routing"])
def test_verified_selection_prefers_the_best_voted_answer_that_obeys_the_rules(kind, tmp_path):
    from hrmkit.puzzles.guesses import rule_checker, verified_choice
    from hrmkit.puzzles.maze_dataset import MazeBuildConfig, build_maze
    from hrmkit.puzzles.routing_dataset import RoutingBuildConfig, build_routing
    from hrmkit.puzzles.sudoku_dataset import SudokuBuildConfig, build_sudoku
    from hrmkit.puzzles.vote import Ballot
    build = {"sudoku": lambda out: build_sudoku(SudokuBuildConfig(size=4, train=2, test=2, seed=0), out),
             "maze": lambda out: build_maze(MazeBuildConfig(size=9, train=2, test=2, seed=0), out),
             "routing": lambda out: build_routing(RoutingBuildConfig(size=8, train_bases=1, test_bases=1, seed=0), out)}
    build[kind](tmp_path / kind)
    split = load_split(tmp_path / kind, "test")
    puzzle, solution = (np.asarray(split.sets["all"][name][0]) for name in ("inputs", "labels"))
    passes = rule_checker(kind, len(puzzle))
    assert passes(puzzle, solution) and not passes(puzzle, puzzle)
    ballot = Ballot()
    for _ in range(3):
        ballot.add(puzzle, 0.9)  # the most voted answer: the puzzle copied back, which breaks the rules
    ballot.add(solution, 0.1)
    assert np.array_equal(ballot.ranked()[0].answer, puzzle)
    assert np.array_equal(verified_choice(ballot, puzzle, passes).answer, solution)
    only_wrong = Ballot()
    only_wrong.add(puzzle)
    assert np.array_equal(verified_choice(only_wrong, puzzle, passes).answer, puzzle)  # nothing passes: the vote


@pytest.mark.cli
def test_hrm_eval_select_verified_reports_its_own_column(trained_sudoku_run, sudoku4, tmp_path, capsys):
    assert main(["eval", "--checkpoint", str(trained_sudoku_run / "final"), "--data", str(sudoku4),
                 "--tta", "2", "--select", "verified", "--out", str(tmp_path / "eval")]) == 0
    assert "verified selection" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["eval", "--checkpoint", str(trained_sudoku_run / "final"), "--data", str(sudoku4), "--select", "best"])


def test_a_routing_answer_is_exact_whatever_it_says_where_the_label_is_ignored(tmp_path):
    """Routing stores its unscored positions (the vehicle's) as the dataset's ignore id 0, not -100:
    a model that answers the route right and anything at the vehicle's position is exact."""
    from hrmkit.puzzles.guesses import exact_rows
    from hrmkit.puzzles.routing_dataset import RoutingBuildConfig, build_routing
    build_routing(RoutingBuildConfig(size=8, train_bases=1, test_bases=1, seed=0), tmp_path / "routing")
    split = load_split(tmp_path / "routing", "test")
    puzzles, labels = (np.asarray(split.sets["all"][name]) for name in ("inputs", "labels"))
    ignored = labels == split.metadata.ignore_label_id
    assert ignored.any()
    answers = np.where(ignored, puzzles, labels)  # the vehicle token copied where nothing is scored
    assert exact_rows(answers, labels, split.metadata.ignore_label_id).all()
    wrong = answers.copy()
    wrong[:, 0] = np.where(labels[:, 0] == 1, 2, 1)  # one scored cell changed
    assert not exact_rows(wrong, labels, split.metadata.ignore_label_id).any()
