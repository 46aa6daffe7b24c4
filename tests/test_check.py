"""Dataset audit: clean builds pass, and each deliberately planted fault is named in the report."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from test_arc import write_kaggle  # the real ARC-1 tasks test_arc builds from

from hrmkit.puzzles.arc import EOS, PAD, encode_grid
from hrmkit.puzzles.arc_dataset import ArcBuildConfig, build_arc
from hrmkit.puzzles.check import (
    check_dataset,
    copy_exact_share,
    main_check,
    path_scores,
)
from hrmkit.puzzles.check_arc import arc_grid_fault, arc_grid_layout
from hrmkit.puzzles.check_paths import path_validity
from hrmkit.puzzles.format import load_split
from hrmkit.puzzles.kind import puzzle_kind
from hrmkit.puzzles.maze_dataset import MazeBuildConfig, build_maze
from hrmkit.puzzles.sudoku_dataset import SudokuBuildConfig, build_sudoku

WALL, OPEN, START, GOAL, PATH = 1, 2, 3, 4, 5


@pytest.fixture(scope="module")
def sudoku_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("check") / "sudoku"
    build_sudoku(SudokuBuildConfig(size=4, train=50, test=10, seed=0), root)
    return root


@pytest.fixture(scope="module")
def maze_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("check") / "maze"
    build_maze(MazeBuildConfig(size=9, train=30, test=10, seed=0), root)
    return root


def copy_of(root: Path, tmp_path: Path) -> Path:
    """A private copy to break; the module-scoped originals stay clean."""
    return Path(shutil.copytree(root, tmp_path / root.name))


def load(root: Path, split: str, name: str) -> np.ndarray:
    return np.load(root / split / f"all__{name}.npy")


def save(root: Path, split: str, name: str, array: np.ndarray) -> None:
    np.save(root / split / f"all__{name}.npy", array)


def run_check(root: Path, tmp_path: Path) -> tuple[int, dict]:
    json_path = tmp_path / "report.json"
    code = main_check(root, str(json_path))
    return code, json.loads(json_path.read_text())


def detail(report: dict, name: str) -> str:
    return next(check["detail"] for check in report["checks"] if check["name"] == name)


def open_field_maze() -> np.ndarray:
    """9x9: wall border around an open 7x7 field, S at (1,1), G at (1,3); the shortest route is (1,2)."""
    grid = np.full((9, 9), WALL, dtype=np.uint8)
    grid[1:8, 1:8] = OPEN
    grid[1, 1], grid[1, 3] = START, GOAL
    return grid


def with_path(maze: np.ndarray, cells: list[tuple[int, int]]) -> np.ndarray:
    label = maze.copy()
    for cell in cells:
        label[cell] = PATH
    return label


DETOUR = [(2, 1), (3, 1), (3, 2), (3, 3), (2, 3)]  # a valid S->G route 4 steps longer than needed


@pytest.mark.parametrize("fixture", ["sudoku_root", "maze_root"])
def test_clean_datasets_pass_every_check(fixture, request, tmp_path):
    root = request.getfixturevalue(fixture)
    code, report = run_check(root, tmp_path)
    assert code == 0 and report["ok"] and report["failed"] == []
    names = {check["name"] for check in report["checks"]}
    kind = "sudoku" if fixture == "sudoku_root" else "maze"
    assert {"structure:train", "structure:test", "overlap:train/test", f"{kind}:train", f"{kind}:test"} <= names
    assert report["stats"]["train"]["examples"] == (50 if kind == "sudoku" else 30)
    assert report["stats"]["test"]["examples_per_group"] == {"min": 1, "mean": 1.0, "max": 1}


def test_reference_built_datasets_are_recognised_without_the_build_summary(sudoku_root, maze_root, tmp_path):
    for root, kind in ((sudoku_root, "sudoku"), (maze_root, "maze")):
        broken = copy_of(root, tmp_path)
        (broken / "hrmkit_build.json").unlink()
        names = {check.name for check in check_dataset(broken).checks}
        assert f"{kind}:train" in names and f"{kind}:test" in names


def test_a_reference_built_sudoku_with_an_unsolved_label_fails(sudoku_root, tmp_path):
    # Without hrmkit's summary the dataset is recognised by its shape; a label left blank must be
    # checked (and fail), not make the split unrecognised and its Sudoku check silently skipped.
    root = copy_of(sudoku_root, tmp_path)
    (root / "hrmkit_build.json").unlink()
    labels = load(root, "test", "labels")
    labels[3, 5] = 1  # the blank token
    save(root, "test", "labels", labels)
    code, report = run_check(root, tmp_path)
    assert code == 1 and report["failed"] == ["sudoku:test"]
    assert "first bad: example 3" in detail(report, "sudoku:test")


def test_train_test_overlap_is_named(sudoku_root, tmp_path):
    root = copy_of(sudoku_root, tmp_path)
    train_inputs = load(root, "train", "inputs")
    train_inputs[7] = load(root, "test", "inputs")[3]
    save(root, "train", "inputs", train_inputs)
    code, report = run_check(root, tmp_path)
    assert code == 1
    assert "overlap:train/test" in report["failed"]
    assert detail(report, "overlap:train/test").startswith("1 of 10 test inputs")


@pytest.mark.parametrize(("field", "value"), [("vocab_size", 9), ("pad_id", 3), ("ignore_label_id", 5)])
def test_splits_whose_dataset_json_disagree_fail_naming_the_field(sudoku_root, tmp_path, field, value):
    """A model trained on train reads test too: a test split with another vocabulary or padding passed the
    check, trained, and was then refused by hrm eval."""
    root = copy_of(sudoku_root, tmp_path)
    meta_path = root / "test" / "dataset.json"
    meta = json.loads(meta_path.read_text())
    train_value = json.loads((root / "train" / "dataset.json").read_text())[field]
    meta_path.write_text(json.dumps({**meta, field: value}))
    code, report = run_check(root, tmp_path)
    assert code == 1 and "metadata:splits agree" in report["failed"]
    assert detail(report, "metadata:splits agree") == f"{field} train {train_value} / test {value}"


def test_maze_path_through_a_wall_is_invalid(maze_root, tmp_path):
    root = copy_of(maze_root, tmp_path)
    labels = load(root, "test", "labels")
    labels[4, np.flatnonzero(labels[4] == WALL)[0]] = PATH
    save(root, "test", "labels", labels)
    code, report = run_check(root, tmp_path)
    assert code == 1 and report["failed"] == ["maze:test"]
    assert "first invalid: example 4" in detail(report, "maze:test")


def test_maze_detour_is_valid_but_not_optimal(maze_root, tmp_path):
    root = copy_of(maze_root, tmp_path)
    inputs, labels = load(root, "train", "inputs"), load(root, "train", "labels")
    maze = open_field_maze()
    inputs[2], labels[2] = maze.reshape(-1), with_path(maze, DETOUR).reshape(-1)
    save(root, "train", "inputs", inputs)
    save(root, "train", "labels", labels)
    code, report = run_check(root, tmp_path)
    assert code == 1 and report["failed"] == ["maze:train"]
    assert detail(report, "maze:train").startswith("30 of 30 labels valid, 29 optimal")
    assert "first non-optimal: example 2" in detail(report, "maze:train")


def test_truncated_npy_fails_structure_naming_the_file(sudoku_root, tmp_path):
    root = copy_of(sudoku_root, tmp_path)
    path = root / "train" / "all__labels.npy"
    path.write_bytes(path.read_bytes()[:-40])
    code, report = run_check(root, tmp_path)
    assert code == 1 and report["failed"] == ["structure:train"]
    assert "all__labels.npy" in detail(report, "structure:train")
    assert "train" not in report["stats"]  # content checks skipped for the broken split


def test_sudoku_row_violation_names_the_example(sudoku_root, tmp_path):
    root = copy_of(sudoku_root, tmp_path)
    labels = load(root, "test", "labels")
    labels[6, 1] = labels[6, 0]  # duplicate digit in row 0
    save(root, "test", "labels", labels)
    code, report = run_check(root, tmp_path)
    assert code == 1 and report["failed"] == ["sudoku:test"]
    assert "first bad: example 6: row 0 is not a permutation" in detail(report, "sudoku:test")


def test_all_ignore_labels_and_empty_group_are_violations(sudoku_root, tmp_path):
    root = copy_of(sudoku_root, tmp_path)
    save(root, "test", "labels", np.zeros_like(load(root, "test", "labels")))
    groups = load(root, "train", "group_indices")
    groups[2] = groups[1]  # group 1 now holds no puzzle, group 2 holds two
    save(root, "train", "group_indices", groups)
    report = check_dataset(root)
    assert {"labels:test", "augmentation:train"} <= set(report.failed)
    assert "1 group(s) hold no puzzle" in next(c.detail for c in report.checks if c.name == "augmentation:train")
    assert "FAIL  labels:test" in report.format()


def test_path_validity_scores_answers():
    maze = open_field_maze()
    assert path_validity(maze, with_path(maze, [(1, 2)]), 9) == (True, True)
    assert path_validity(maze, with_path(maze, DETOUR), 9) == (True, False)
    assert path_validity(maze, maze, 9) == (False, False)  # no route at all
    assert path_validity(maze, with_path(maze, [(1, 2), (6, 6)]), 9) == (False, False)  # stray 'o'
    assert path_validity(maze, with_path(maze, [(2, 1), (3, 1)]), 9) == (False, False)  # route breaks off
    assert path_validity(maze, with_path(maze, [(1, 2), (0, 2)]), 9) == (False, False)  # 'o' on a wall
    field = [(row, column) for row in range(1, 8) for column in range(1, 8) if (row, column) not in ((1, 1), (1, 3))]
    assert path_validity(maze, with_path(maze, field), 9) == (False, False)  # every open cell marked
    assert path_validity(maze, with_path(maze, [(1, 2), (2, 2)]), 9) == (False, False)  # a dead end off the route
    assert path_validity(maze, with_path(maze, [*DETOUR, (2, 2)]), 9) == (False, False)  # a blob, S and G joined
    assert path_validity(maze, with_path(maze, [(1, 2), *DETOUR]), 9) == (False, False)  # both ways round


def test_copy_baseline_counts_the_mazes_whose_path_is_empty(maze_root, tmp_path):
    split = load_split(maze_root, "test")
    assert copy_exact_share(split) == path_scores(split, load(maze_root, "test", "inputs"))["copy_exact"]
    broken = copy_of(maze_root, tmp_path)
    inputs, labels = load(broken, "test", "inputs"), load(broken, "test", "labels")
    labels[:3] = inputs[:3]  # three labels with no path marked: a copy of the input gets them right
    save(broken, "test", "labels", labels)
    expected = (inputs == labels).all(axis=1).mean()
    assert expected >= 3 / len(inputs)
    assert copy_exact_share(load_split(broken, "test")) == expected


def test_puzzle_kind_tells_mazes_from_sudoku_with_or_without_the_build_summary(sudoku_root, maze_root, tmp_path):
    for root, kind in ((sudoku_root, "sudoku"), (maze_root, "maze")):
        assert puzzle_kind(root, load_split(root, "test")) == kind
        plain = copy_of(root, tmp_path)
        (plain / "hrmkit_build.json").unlink()
        assert puzzle_kind(plain, load_split(plain, "test")) == kind


@pytest.mark.cli
def test_cli_check_exits_1_on_a_fault_and_eval_scores_maze_paths(maze_root, tmp_path, capsys):
    from hrmkit.cli import main
    from hrmkit.config import ModelConfig, RunConfig
    from hrmkit.config_base import config_to_dict
    from hrmkit.model.act import ACTModel

    assert main(["data", "check", str(maze_root), "--json", str(tmp_path / "report.json")]) == 0
    assert json.loads((tmp_path / "report.json").read_text())["ok"] is True
    broken = copy_of(maze_root, tmp_path)
    inputs = load(broken, "train", "inputs")
    inputs[0] = load(broken, "test", "inputs")[0]
    save(broken, "train", "inputs", inputs)
    assert main(["data", "check", str(broken)]) == 1
    assert "FAIL" in capsys.readouterr().out

    cfg = RunConfig(model=ModelConfig(hidden_size=32, num_heads=2, L_layers=1, halt_max_steps=2, vocab_size=6, seq_len=81))
    model = ACTModel(cfg.model)
    torch.save({"format": "hrmkit", "step": 0, "model": model.inner.state_dict(), "config": config_to_dict(cfg),
                "metrics": None}, tmp_path / "untrained.pt")
    assert main(["eval", "--checkpoint", str(tmp_path / "untrained.pt"), "--data", str(maze_root),
                 "--out", str(tmp_path / "eval")]) == 0
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert 0.0 <= metrics["optimal_path"] <= metrics["valid_path"] <= 1.0


# --------------------------------------------------------------------------- ARC


@pytest.fixture(scope="module")
def arc_root(tmp_path_factory) -> Path:
    kaggle = write_kaggle(tmp_path_factory.mktemp("check") / "kaggle")
    root = tmp_path_factory.mktemp("check") / "arc"
    build_arc(ArcBuildConfig(source="kaggle-json", path=str(kaggle), num_aug=4, seed=0), root)
    return root


def box(tokens: np.ndarray) -> tuple[int, int, int, int]:
    """(top, left, height, width) of a well-formed grid row."""
    ok, top, left, height, width = arc_grid_layout(np.asarray(tokens)[None])
    assert ok[0]
    return int(top[0]), int(left[0]), int(height[0]), int(width[0])


def first_fitting(rows: np.ndarray, fits) -> int:
    return next(index for index, row in enumerate(rows) if fits(*box(row)))


def colour_far_away(square, top, left, height, width):
    square[29, 29] = 7
    return f"colour token outside the {height}x{width} grid at ({top},{left}), at (29,29)"


def eos_row_missing(square, top, left, height, width):
    square[top + height, left : left + width] = PAD
    return f"EOS border of the {height}x{width} grid at ({top},{left}) missing at ({top + height},{left})"


def eos_column_moved(square, top, left, height, width):
    square[top : top + height, left + width] = PAD
    square[top : top + height, left + width + 1] = EOS
    return (f"EOS border of the {height}x{width} grid at ({top},{left}) misplaced: "
            f"missing at ({top},{left + width})")


def eos_inside(square, top, left, height, width):
    square[top + 1, left + 1] = EOS
    return f"stray EOS inside the {height}x{width} grid at ({top},{left}), at ({top + 1},{left + 1})"


def last_row_short(square, top, left, height, width):
    square[top + height - 1, left + width - 1] = EOS
    return f"ragged grid at ({top},{left}): its rows hold"


GRID_FAULTS = {  # what to break, in which array, on an example whose grid fits the breakage
    "colour outside the grid": ("inputs", lambda t, l, h, w: t + h < 29 and l + w < 29, colour_far_away),
    "EOS row missing": ("labels", lambda t, l, h, w: t + h < 30, eos_row_missing),
    "EOS column misplaced": ("inputs", lambda t, l, h, w: l + w < 29, eos_column_moved),
    "stray EOS inside the grid": ("labels", lambda t, l, h, w: h >= 3 and w >= 3, eos_inside),
    "ragged grid": ("inputs", lambda t, l, h, w: h >= 2 and w >= 2, last_row_short),
}


def shifted(tokens: np.ndarray, rows: int, columns: int) -> np.ndarray:
    """The canvas moved down and right; the caller makes sure nothing wraps round."""
    return np.roll(tokens.reshape(30, 30), (rows, columns), axis=(0, 1)).reshape(-1)


def test_clean_arc_build_passes_the_arc_checks(arc_root, tmp_path):
    code, report = run_check(arc_root, tmp_path)
    assert code == 0, report["failed"]
    examples = report["stats"]["train"]["examples"]
    assert detail(report, "arc:train").startswith(f"{examples} of {examples} examples well-formed")
    assert "keep one example at the top-left" in detail(report, "arc:train")
    assert "leave every example at the top-left" in detail(report, "arc:test")
    assert detail(report, "arc:puzzles").endswith("0 faults")
    assert "test_puzzles.json (3 tasks)" in detail(report, "arc:puzzles")


def test_reference_built_arc_is_recognised_without_the_build_summary(arc_root, tmp_path):
    root = copy_of(arc_root, tmp_path)
    (root / "hrmkit_build.json").unlink()
    report = check_dataset(root)
    assert report.ok, report.format()
    assert {"arc:train", "arc:test", "arc:puzzles"} <= {check.name for check in report.checks}


def test_translate_puzzle_builds_pass_with_their_own_rule(tmp_path):
    root = tmp_path / "arc"
    build_arc(ArcBuildConfig(source="arc1", max_tasks=2, num_aug=2, translate="puzzle"), root)
    report = check_dataset(root)
    assert report.ok, report.format()
    assert "place all their examples at one offset" in next(c.detail for c in report.checks if c.name == "arc:train")


@pytest.mark.parametrize("fault", GRID_FAULTS)
def test_each_broken_arc_grid_is_named_with_its_example(fault, arc_root, tmp_path):
    array_name, fits, breaks = GRID_FAULTS[fault]
    root = copy_of(arc_root, tmp_path)
    rows = load(root, "train", array_name)
    index = first_fitting(rows, fits)
    square = rows[index].reshape(30, 30)
    expected = breaks(square, *box(rows[index]))
    save(root, "train", array_name, rows)
    code, report = run_check(root, tmp_path)
    assert code == 1 and report["failed"] == ["arc:train"]
    text = detail(report, "arc:train")
    what = "input" if array_name == "inputs" else "label"
    assert f"1 fault: example {index} {what}: {expected}" in text, text
    assert text.startswith(f"{len(rows) - 1} of {len(rows)} examples well-formed")


def test_a_token_out_of_range_is_named_by_the_structure_check_or_else_the_arc_check(arc_root, tmp_path):
    root = copy_of(arc_root, tmp_path)
    labels = load(root, "train", "labels")
    labels[5, 0] = 12
    save(root, "train", "labels", labels)
    code, report = run_check(root, tmp_path)
    assert code == 1 and report["failed"] == ["structure:train"]
    assert "token 12 at example 5, position 0 is outside [0, vocab_size=12)" in detail(report, "structure:train")

    for split in ("train", "test"):  # metadata that allows the token (in both splits): only the ARC check objects
        meta_path = root / split / "dataset.json"
        meta_path.write_text(json.dumps({**json.loads(meta_path.read_text()), "vocab_size": 16}))
    code, report = run_check(root, tmp_path)
    assert code == 1 and report["failed"] == ["arc:train"]
    assert "example 5 label: token 12 at (0,0) is out of range 0..11" in detail(report, "arc:train")


def test_input_and_label_at_different_offsets_are_named(arc_root, tmp_path):
    root = copy_of(arc_root, tmp_path)
    inputs, labels = load(root, "train", "inputs"), load(root, "train", "labels")
    index = first_fitting(labels, lambda t, l, h, w: l + w < 29)
    top, left = box(inputs[index])[:2]
    label_top, label_left = box(labels[index])[:2]
    labels[index] = shifted(labels[index], 0, 1)
    save(root, "train", "labels", labels)
    code, report = run_check(root, tmp_path)
    assert code == 1 and report["failed"] == ["arc:train"]
    assert (f"example {index} input at ({top},{left}) but label at ({label_top},{label_left + 1}), "
            "expected one offset for both") in detail(report, "arc:train")


def fits_one_step(tokens: np.ndarray) -> bool:
    top, left, height, width = box(tokens)
    return top + height < 29 and left + width < 29


def test_a_train_puzzle_with_no_example_at_the_top_left_breaks_the_reference_rule(arc_root, tmp_path):
    root = copy_of(arc_root, tmp_path)
    inputs, labels = load(root, "train", "inputs"), load(root, "train", "labels")
    bounds = load(root, "train", "puzzle_indices")
    for puzzle, (start, end) in enumerate(zip(bounds[:-1], bounds[1:])):
        placed = [row for row in range(start, end) if box(inputs[row])[:2] == (0, 0)]
        if all(fits_one_step(inputs[row]) and fits_one_step(labels[row]) for row in placed):
            break
    for row in placed:
        inputs[row], labels[row] = shifted(inputs[row], 1, 1), shifted(labels[row], 1, 1)
    save(root, "train", "inputs", inputs)
    save(root, "train", "labels", labels)
    code, report = run_check(root, tmp_path)
    assert code == 1 and report["failed"] == ["arc:train"]
    assert f"1 fault: puzzle {puzzle} (examples {start}..{end - 1}): no example at the top-left" \
        in detail(report, "arc:train")


def test_a_translated_test_example_is_named(arc_root, tmp_path):
    root = copy_of(arc_root, tmp_path)
    inputs, labels = load(root, "test", "inputs"), load(root, "test", "labels")
    index = next(row for row in range(len(inputs)) if fits_one_step(inputs[row]) and fits_one_step(labels[row]))
    inputs[index], labels[index] = shifted(inputs[index], 1, 1), shifted(labels[index], 1, 1)
    save(root, "test", "inputs", inputs)
    save(root, "test", "labels", labels)
    code, report = run_check(root, tmp_path)
    assert code == 1 and report["failed"] == ["arc:test"]
    assert f"example {index} at (1,1), not the top-left (only train is translated)" in detail(report, "arc:test")


def drop_a_test_task(root: Path) -> str:
    tasks = json.loads((root / "test_puzzles.json").read_text())
    task_id = sorted(tasks)[0]
    del tasks[task_id]
    (root / "test_puzzles.json").write_text(json.dumps(tasks))
    return f"test: task {task_id} is not in test_puzzles.json"


def misname_a_variant(root: Path) -> str:
    names = json.loads((root / "identifiers.json").read_text())
    names[2] = "a9f96cdd|||t9|||0123456789"
    (root / "identifiers.json").write_text(json.dumps(names))
    return "identifiers.json entry 2 'a9f96cdd|||t9|||0123456789' is not <task>|||t<k>|||<colours>"


def delete_test_puzzles(root: Path) -> str:
    (root / "test_puzzles.json").unlink()
    return "test_puzzles.json is missing"


@pytest.mark.parametrize("breaks", [drop_a_test_task, misname_a_variant, delete_test_puzzles])
def test_identifiers_and_test_puzzles_must_match_the_splits(breaks, arc_root, tmp_path):
    root = copy_of(arc_root, tmp_path)
    expected = breaks(root)
    report = check_dataset(root)
    assert report.failed == ["arc:puzzles"], report.format()
    assert f"1 fault: {expected}" in next(c.detail for c in report.checks if c.name == "arc:puzzles")


@pytest.mark.cli
def test_cli_check_exits_1_on_a_broken_arc_grid(arc_root, tmp_path, capsys):
    from hrmkit.cli import main

    root = copy_of(arc_root, tmp_path)
    inputs = load(root, "test", "inputs")
    index = first_fitting(inputs, lambda t, l, h, w: h >= 3 and w >= 3)
    top, left = box(inputs[index])[:2]
    inputs[index].reshape(30, 30)[top + 1, left + 1] = EOS
    save(root, "test", "inputs", inputs)
    assert main(["data", "check", str(root)]) == 1
    out = capsys.readouterr().out
    assert "FAIL  arc:test" in out and f"example {index} input: stray EOS inside" in out


def test_grid_layout_and_fault_description_agree_on_random_grids():
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(300):
        height, width = rng.integers(1, 31, size=2)
        top, left = rng.integers(0, 31 - height), rng.integers(0, 31 - width)
        row = encode_grid(rng.integers(0, 10, size=(height, width)).astype(np.uint8), top, left)
        broken = row.copy()
        broken[rng.integers(0, 900)] = rng.integers(0, 12)  # often breaks the layout, sometimes not
        rows += [row, broken]
    well_formed = arc_grid_layout(np.stack(rows))[0]
    assert well_formed[::2].all() and not well_formed[1::2].all()
    for row, ok in zip(rows, well_formed):
        assert (arc_grid_fault(row) is None) == ok, arc_grid_fault(row)
    assert arc_grid_fault(np.zeros(900, dtype=np.uint8)) == "no grid: not one colour token"


def test_arc_overlap_fails_only_when_a_test_answer_is_in_train(arc_root, tmp_path):
    # ARC-AGI repeats some input grids across tasks, so a shared input alone is reported but allowed;
    # a test pair whose input *and* answer occur together in train is a leak.
    root = copy_of(arc_root, tmp_path)
    train_inputs, train_labels = load(root, "train", "inputs"), load(root, "train", "labels")
    test_inputs, test_labels = load(root, "test", "inputs"), load(root, "test", "labels")
    train_inputs[0] = test_inputs[0]
    save(root, "train", "inputs", train_inputs)
    report = check_dataset(root)
    overlap = next(c for c in report.checks if c.name == "overlap:train/test")
    assert overlap.ok and "1 of" in overlap.detail and "0 of them with the same answer" in overlap.detail
    train_labels[0] = test_labels[0]
    save(root, "train", "labels", train_labels)
    report = check_dataset(root)
    overlap = next(c for c in report.checks if c.name == "overlap:train/test")
    assert not overlap.ok and "1 of them with the same answer" in overlap.detail
