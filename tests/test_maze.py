import csv
import json
from collections import deque
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import hrm_here

from hrmkit.puzzles.format import load_identifiers, load_split
from hrmkit.puzzles.maze import is_valid_path, shortest_path
from hrmkit.puzzles.maze_dataset import MazeBuildConfig, build_maze, read_maze_csv

CHARSET = "# SGo"  # token t is CHARSET[t - 1]; 0 is pad
WALL, OPEN, START, GOAL, PATH = 1, 2, 3, 4, 5


def build(tmp_path: Path, name: str = "ds", **config) -> tuple[Path, dict]:
    out = tmp_path / name
    return out, build_maze(MazeBuildConfig(**config), out)


def arrays(root: Path, split: str) -> dict[str, np.ndarray]:
    return {name: np.asarray(array) for name, array in load_split(root, split).sets["all"].items()}


def to_text(tokens: np.ndarray) -> str:
    return "".join(CHARSET[token - 1] for token in np.asarray(tokens).reshape(-1))


def neighbours(cell: tuple[int, int], grid: np.ndarray, walkable) -> list[tuple[int, int]]:
    row, column = cell
    found = []
    for next_row, next_column in ((row - 1, column), (row + 1, column), (row, column - 1), (row, column + 1)):
        inside = 0 <= next_row < grid.shape[0] and 0 <= next_column < grid.shape[1]
        if inside and walkable(grid[next_row, next_column]):
            found.append((next_row, next_column))
    return found


def distances_and_route_counts(maze: np.ndarray, source: tuple[int, int]) -> tuple[dict, dict]:
    """Independent BFS: steps from `source` to every reachable cell and how many shortest routes reach it."""
    distance, routes = {source: 0}, {source: 1}
    queue = deque([source])
    while queue:
        cell = queue.popleft()
        for other in neighbours(cell, maze, lambda token: token != WALL):
            if other not in distance:
                distance[other] = distance[cell] + 1
                routes[other] = 0
                queue.append(other)
            if distance[other] == distance[cell] + 1:
                routes[other] += routes[cell]
    return distance, routes


def find(grid: np.ndarray, token: int) -> tuple[int, int]:
    (row,), (column,) = np.nonzero(grid == token)
    return int(row), int(column)


def check_label_is_a_shortest_path(inputs: np.ndarray, labels: np.ndarray, size: int) -> int:
    """Walk the 'o' cells from S to G one unique step at a time; returns the path length."""
    maze, marked = inputs.reshape(size, size), labels.reshape(size, size)
    assert np.array_equal(np.where(marked == PATH, OPEN, marked), maze)
    assert np.all(maze[marked == PATH] == OPEN)
    start, goal = find(maze, START), find(maze, GOAL)
    distance, _ = distances_and_route_counts(maze, start)
    steps, cell, visited = 0, start, {start}
    while cell != goal:
        options = [c for c in neighbours(cell, marked, lambda t: t in (PATH, GOAL)) if c not in visited]
        goal_next = goal in options
        assert goal_next or len(options) == 1, f"path branches or stops at {cell}"
        cell = goal if goal_next else options[0]
        visited.add(cell)
        steps += 1
    assert steps == distance[goal]
    assert len(visited) - 2 == np.count_nonzero(marked == PATH), "stray 'o' cells off the path"
    return steps


def has_another_route(inputs: np.ndarray, labels: np.ndarray, size: int) -> bool:
    """More than one shortest path, or S still reaches G with the labelled path walled off."""
    maze, marked = inputs.reshape(size, size), labels.reshape(size, size)
    start, goal = find(maze, START), find(maze, GOAL)
    _, routes = distances_and_route_counts(maze, start)
    detour_maze = np.where(marked == PATH, WALL, maze)
    detour_distance, _ = distances_and_route_counts(detour_maze, start)
    adjacent = abs(start[0] - goal[0]) + abs(start[1] - goal[1]) == 1
    return routes[goal] > 1 or (goal in detour_distance and not adjacent)


def dihedral_variants(grid: np.ndarray) -> list[bytes]:
    rotations = [np.rot90(grid, k) for k in range(4)]
    return [variant.tobytes() for rotation in rotations for variant in (rotation, rotation.T)]


# --------------------------------------------------------------------------- format


def test_tokens_dtypes_and_metadata_follow_the_reference(tmp_path):
    root, summary = build(tmp_path, size=9, train=6, test=4, aug=True)
    assert load_identifiers(root) == ["<blank>"]
    for split, groups, examples in (("train", 6, 48), ("test", 4, 4)):
        meta = load_split(root, split).metadata
        assert (meta.pad_id, meta.ignore_label_id, meta.blank_identifier_id) == (0, 0, 0)
        assert (meta.vocab_size, meta.seq_len, meta.num_puzzle_identifiers, meta.sets) == (6, 81, 1, ["all"])
        assert (meta.total_groups, meta.total_puzzles, meta.mean_puzzle_examples) == (groups, groups, 1.0)
        saved = json.loads((root / split / "dataset.json").read_text())
        assert saved["total_puzzles"] == groups
        data = arrays(root, split)
        assert data["inputs"].dtype == data["labels"].dtype == np.uint8
        assert all(data[name].dtype == np.int32 for name in ("puzzle_identifiers", "puzzle_indices", "group_indices"))
        assert data["inputs"].shape == (examples, 81)
        assert set(np.unique(data["inputs"])) == {WALL, OPEN, START, GOAL}
        assert set(np.unique(data["labels"])) <= {WALL, OPEN, START, GOAL, PATH}
        assert np.all(np.count_nonzero(data["inputs"] == START, axis=1) == 1)
        assert np.all(np.count_nonzero(data["inputs"] == GOAL, axis=1) == 1)
    assert json.loads((root / "hrmkit_build.json").read_text())["train_examples"] == summary["train_examples"] == 48


@pytest.mark.parametrize("size", [9, 10, 11])
def test_every_label_marks_one_shortest_path(tmp_path, size):
    root, _ = build(tmp_path, size=size, train=40, test=20)
    for split in ("train", "test"):
        data = arrays(root, split)
        for inputs, labels in zip(data["inputs"], data["labels"]):
            check_label_is_a_shortest_path(inputs, labels, size)
            assert is_valid_path(inputs, labels, size)


def test_even_sizes_keep_a_wall_border(tmp_path):
    root, _ = build(tmp_path, size=10, train=5, test=1)
    mazes = arrays(root, "train")["inputs"].reshape(-1, 10, 10)
    for border in (mazes[:, 0], mazes[:, -1], mazes[:, -2], mazes[:, :, 0], mazes[:, :, -1], mazes[:, :, -2]):
        assert np.all(border == WALL)


# --------------------------------------------------------------------------- maze shape


def test_extra_openings_give_most_mazes_another_route_and_none_without_them(tmp_path):
    looped, _ = build(tmp_path, "looped", size=11, train=60, test=1, extra_openings=0.5)
    perfect, _ = build(tmp_path, "perfect", size=11, train=60, test=1, extra_openings=0.0)
    looped_data, perfect_data = arrays(looped, "train"), arrays(perfect, "train")
    looped_share = np.mean([has_another_route(i, l, 11) for i, l in zip(looped_data["inputs"], looped_data["labels"])])
    assert looped_share > 0.6  # about 0.75 for any seed at this size and fraction
    assert not any(has_another_route(i, l, 11) for i, l in zip(perfect_data["inputs"], perfect_data["labels"]))


def test_min_path_length_rejects_short_mazes(tmp_path):
    root, summary = build(tmp_path, size=11, train=20, test=10, min_path_length=15)
    for split in ("train", "test"):
        data = arrays(root, split)
        lengths = [check_label_is_a_shortest_path(i, l, 11) for i, l in zip(data["inputs"], data["labels"])]
        assert min(lengths) >= 15
    assert summary["path_length"]["train"]["min"] >= 15
    assert summary["rejected"]["train_paths_too_short"] > 0


def test_unreachable_min_path_length_fails_with_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="shorter than min_path_length=20.*lower min_path_length"):
        build(tmp_path, size=5, train=1, test=1, min_path_length=20)


def test_asking_for_more_mazes_than_a_tiny_size_has_fails_with_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="train mazes: made .* already taken.*ask for fewer mazes"):
        build(tmp_path, size=5, train=40, test=10, aug=True)
    assert not (tmp_path / "ds").exists()


# --------------------------------------------------------------------------- augmentation and splits


def test_aug_puts_the_8_dihedral_variants_of_each_train_maze_in_one_group(tmp_path):
    root, _ = build(tmp_path, size=9, train=5, test=3, aug=True)
    train = arrays(root, "train")
    np.testing.assert_array_equal(train["group_indices"], np.arange(0, 41, 8))
    np.testing.assert_array_equal(train["puzzle_indices"], np.arange(41))
    for group in range(5):
        inputs = train["inputs"][group * 8 : group * 8 + 8]
        labels = train["labels"][group * 8 : group * 8 + 8]
        base_input, base_label = inputs[0].reshape(9, 9), labels[0].reshape(9, 9)
        assert sorted(row.reshape(9, 9).tobytes() for row in inputs) == sorted(dihedral_variants(base_input))
        assert sorted(row.reshape(9, 9).tobytes() for row in labels) == sorted(dihedral_variants(base_label))
        for variant_input, variant_label in zip(inputs, labels):
            check_label_is_a_shortest_path(variant_input, variant_label, 9)
    np.testing.assert_array_equal(arrays(root, "test")["group_indices"], np.arange(4))


@pytest.mark.parametrize("aug", [False, True])
def test_train_and_test_share_no_input_grid(tmp_path, aug):
    root, _ = build(tmp_path, size=7, train=30, test=30, aug=aug)
    train_inputs = {row.tobytes() for row in arrays(root, "train")["inputs"]}
    test_inputs = [row.tobytes() for row in arrays(root, "test")["inputs"]]
    assert len(set(test_inputs)) == len(test_inputs)
    assert train_inputs.isdisjoint(test_inputs)


def test_same_seed_builds_identical_bytes_and_another_seed_does_not(tmp_path):
    config = dict(size=9, train=20, test=10, aug=True, seed=3)
    first, _ = build(tmp_path, "first", **config)
    second, _ = build(tmp_path, "second", **config)
    other, _ = build(tmp_path, "other", **{**config, "seed": 4})
    data_files = sorted(path.relative_to(first) for path in first.rglob("*") if path.is_file())
    assert len(data_files) == 1 + 1 + 2 * 6  # identifiers, provenance, two splits of six files
    for relative in data_files:  # hrmkit_build.json included
        assert (first / relative).read_bytes() == (second / relative).read_bytes(), relative
    assert (first / "train/all__inputs.npy").read_bytes() != (other / "train/all__inputs.npy").read_bytes()


def test_progress_reports_every_stage(tmp_path):
    calls = []
    build_maze(MazeBuildConfig(size=7, train=3, test=2), tmp_path / "ds", progress=lambda *call: calls.append(call))
    assert ("test mazes", 2, 2) in calls and ("train mazes", 3, 3) in calls and calls[-1] == ("writing", 1, 1)


# --------------------------------------------------------------------------- path oracle


def grid_of(rows: list[str]) -> np.ndarray:
    return np.array([[CHARSET.index(char) + 1 for char in row] for row in rows], dtype=np.uint8)


# Two 6-step routes from S to G: along the top then down, or down the left side then along.
LOOP_MAZE = ["#######", "#S    #", "# ### #", "#    G#", "#######", "#######", "#######"]


def test_shortest_path_picks_a_fixed_route_among_equals_and_none_when_cut_off():
    maze = grid_of(LOOP_MAZE)
    path = shortest_path(maze, 7)
    assert path == shortest_path(maze.reshape(-1), 7)
    # BFS tries up, down, left, right, so the route down the left side reaches G first.
    assert path == [8, 15, 22, 23, 24, 25, 26]
    cut_off = maze.copy()
    cut_off[1, 2] = cut_off[2, 1] = WALL
    assert shortest_path(cut_off, 7) is None
    with pytest.raises(ValueError, match="49 tokens"):
        shortest_path(maze[:5], 7)
    with pytest.raises(ValueError, match="exactly one 'G'"):
        shortest_path(np.where(maze == GOAL, OPEN, maze), 7)


def test_is_valid_path_rejects_longer_broken_or_stray_paths():
    maze = grid_of(["#######", "#S    #", "# ### #", "#   # #", "### #G#", "#     #", "#######"])
    shortest = maze.copy()
    shortest[1, 2:6] = PATH
    shortest[2:4, 5] = PATH
    assert is_valid_path(maze, shortest, 7)
    broken = shortest.copy()
    broken[1, 3] = OPEN
    stray = shortest.copy()
    stray[5, 1] = PATH
    on_a_wall = shortest.copy()
    on_a_wall[2, 2] = PATH
    longer = maze.copy()
    longer[2:4, 1] = PATH
    longer[3, 2:4] = PATH
    longer[4:6, 3] = PATH
    longer[5, 4:6] = PATH
    for wrong in (broken, stray, on_a_wall, longer, maze):
        assert not is_valid_path(maze, wrong, 7)


# --------------------------------------------------------------------------- CSV import


def write_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["source", "question", "answer", "rating"])
        for question, answer in rows:
            writer.writerow(["hrmkit-test", question, answer, 0])
    return path


def text_rows(root: Path, split: str) -> list[tuple[str, str]]:
    data = arrays(root, split)
    return [(to_text(i), to_text(l)) for i, l in zip(data["inputs"], data["labels"])]


def test_csv_import_round_trips_generated_mazes(tmp_path):
    source, _ = build(tmp_path, "source", size=9, train=12, test=6)
    train_csv = write_csv(tmp_path / "train.csv", text_rows(source, "train"))
    test_csv = write_csv(tmp_path / "test.csv", text_rows(source, "test"))
    inputs, labels = read_maze_csv(str(train_csv), 9)
    np.testing.assert_array_equal(inputs, arrays(source, "train")["inputs"])
    np.testing.assert_array_equal(labels, arrays(source, "train")["labels"])
    imported, summary = build(tmp_path, "imported", size=9, train=12, test=6, aug=True,
                              from_csv=str(train_csv), test_csv=str(test_csv))
    assert summary["source"] == "csv" and summary["train_examples"] == 96
    assert sorted(text_rows(imported, "test")) == sorted(text_rows(source, "test"))
    base_rows = text_rows(imported, "train")[::8]
    assert sorted(base_rows) == sorted(text_rows(source, "train"))


def test_one_csv_is_split_into_disjoint_train_and_test(tmp_path):
    source, _ = build(tmp_path, "source", size=9, train=10, test=1)
    rows = text_rows(source, "train")
    only_csv = write_csv(tmp_path / "all.csv", rows + rows[:2])  # duplicates are skipped, not reused
    imported, summary = build(tmp_path, "imported", size=9, train=100, test=4, from_csv=str(only_csv))
    assert (summary["test_puzzles"], summary["train_groups"]) == (4, 6)
    assert set(text_rows(imported, "train")).isdisjoint(text_rows(imported, "test"))


def test_an_import_without_a_size_takes_the_csvs_and_refuses_rows_that_disagree(tmp_path):
    source, _ = build(tmp_path, "source", size=9, train=3, test=2)
    train_csv = write_csv(tmp_path / "train.csv", text_rows(source, "train"))
    test_csv = write_csv(tmp_path / "test.csv", text_rows(source, "test"))
    imported = tmp_path / "imported"
    hrm_here("prepare", "maze", "--from-csv", train_csv, "--test-csv", test_csv, "--train", 3, "--test", 2,
             "--out", imported)
    assert json.loads((imported / "hrmkit_build.json").read_text())["config"]["size"] == 9
    assert load_split(imported, "train").metadata.seq_len == 81
    small, _ = build(tmp_path, "small", size=7, train=1, test=1)
    mixed = write_csv(tmp_path / "mixed.csv", [*text_rows(source, "train")[:1], *text_rows(small, "train")])
    with pytest.raises(ValueError, match=rf"^{mixed}:3: question is a 7x7 maze but {mixed}:2 holds a 9x9 one$"):
        build(tmp_path, train=1, test=1, from_csv=str(mixed))
    small_test = write_csv(tmp_path / "small_test.csv", text_rows(small, "test"))
    with pytest.raises(ValueError, match=rf"^{small_test}:2: question is a 7x7 maze but {train_csv}:2 holds a 9x9"):
        build(tmp_path, train=1, test=1, from_csv=str(train_csv), test_csv=str(small_test))
    with pytest.raises(ValueError, match=rf"^{train_csv}:2: question is a 9x9 maze but size is 7$"):
        build(tmp_path, size=7, train=1, test=1, from_csv=str(train_csv))
    empty = write_csv(tmp_path / "empty.csv", [])
    with pytest.raises(ValueError, match=rf"^{empty}: no rows to read the maze size from$"):
        build(tmp_path, train=1, test=1, from_csv=str(empty))
    assert not (tmp_path / "ds").exists()


def test_a_generated_build_without_a_size_is_30x30(tmp_path):
    root, summary = build(tmp_path, train=1, test=1)
    assert summary["config"]["size"] == 30 and load_split(root, "test").metadata.seq_len == 900


def test_an_import_that_leaves_a_split_empty_names_the_file(tmp_path):
    source, _ = build(tmp_path, "source", size=9, train=3, test=1)
    train_csv, empty_csv = write_csv(tmp_path / "train.csv", text_rows(source, "train")), write_csv(tmp_path / "empty.csv", [])
    with pytest.raises(ValueError, match=rf"^{empty_csv}: no rows for the test split$"):
        build(tmp_path, size=9, train=2, test=1, from_csv=str(train_csv), test_csv=str(empty_csv))
    with pytest.raises(ValueError, match=rf"^{empty_csv}: no rows left for the train split$"):
        build(tmp_path, size=9, train=2, test=1, from_csv=str(empty_csv))
    assert not (tmp_path / "ds").exists()


def test_a_csv_that_is_not_utf8_is_named_with_its_line(tmp_path):
    binary = tmp_path / "bin.csv"
    binary.write_bytes(b"\xff\xfe")
    with pytest.raises(ValueError, match=rf"^{binary}:1: byte 0xff at column 1 is not UTF-8 text"):
        build(tmp_path, size=9, train=2, test=1, from_csv=str(binary))
    assert not (tmp_path / "ds").exists()


def test_a_csv_saved_with_a_byte_order_mark_reads_its_header(tmp_path):
    """Spreadsheets save UTF-8 with a byte-order mark, which must not become part of the first column's name."""
    source, _ = build(tmp_path, "source", size=9, train=2, test=1)
    marked = tmp_path / "marked.csv"
    lines = ["question,answer,rating", *(f"{q},{a},0" for q, a in text_rows(source, "train"))]
    marked.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode())
    inputs, labels = read_maze_csv(str(marked), 9)
    np.testing.assert_array_equal(inputs, arrays(source, "train")["inputs"])
    np.testing.assert_array_equal(labels, arrays(source, "train")["labels"])


def corrupted_rows(rows: list[tuple[str, str]]) -> dict[str, tuple[str, str]]:
    question, answer = rows[0]
    first_path_cell = answer.index("o")
    return {
        "has 'x' at position 0": ("x" + question[1:], answer),
        "not a square grid": (question[:-1], answer[:-1]),
        "is a 10x10 maze but size is 9": (question + "#" * 19, answer + "#" * 19),
        "exactly one 'S'": (question.replace("S", " "), answer.replace("S", " ")),
        "not the question with one shortest": (question, answer[:first_path_cell] + " " + answer[first_path_cell + 1:]),
        "must not contain path cells": (answer, answer),
    }


def test_bad_csv_rows_raise_one_line_errors_naming_file_and_line(tmp_path):
    source, _ = build(tmp_path, "source", size=9, train=2, test=1, min_path_length=3)
    rows = text_rows(source, "train")
    for number, (problem, bad_row) in enumerate(corrupted_rows(rows).items()):
        path = write_csv(tmp_path / f"bad{number}.csv", [rows[1], bad_row])
        with pytest.raises(ValueError, match=rf"^{path}:3: .*{problem}") as caught:
            read_maze_csv(str(path), 9)
        assert "\n" not in str(caught.value)
    headerless = tmp_path / "headerless.csv"
    headerless.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match=rf"^{headerless}:1: header"):
        read_maze_csv(str(headerless), 9)


# --------------------------------------------------------------------------- bad arguments


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (dict(size=4), "size must be an integer >= 5"),
        (dict(train=0), "train must be >= 1, got 0"),
        (dict(test=0), "test must be >= 1, got 0"),
        (dict(test=-2), "test must be >= 1"),
        (dict(min_path_length=-1), "min_path_length must be >= 0"),
        (dict(size=5, min_path_length=25), "cannot fit"),
        (dict(extra_openings=1.5), "extra_openings"),
        (dict(test_csv="x.csv"), "set from_csv too"),
        (dict(size=9, from_csv="missing.csv"), "CSV file not found"),
    ],
)
def test_bad_arguments_raise_one_line_value_errors(tmp_path, config, message):
    with pytest.raises(ValueError, match=message) as caught:
        build(tmp_path, **{"train": 1, "test": 1, **config})
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "ds").exists()


def test_existing_output_is_kept_unless_overwrite(tmp_path):
    root, _ = build(tmp_path, size=7, train=2, test=1)
    with pytest.raises(ValueError, match="already exists"):
        build_maze(MazeBuildConfig(size=7, train=2, test=1), root)
    build_maze(MazeBuildConfig(size=7, train=3, test=1), root, overwrite=True)
    assert load_split(root, "train").num_groups == 3


@pytest.mark.cli
def test_the_maze_small_preset_trains_with_grid_attention_on_a_maze_dataset(tmp_path):
    from hrmkit.cli import main
    from hrmkit.config import load_run_config
    from hrmkit.loading import load_checkpoint

    preset = load_run_config("maze_small")
    assert (preset.model.pos_encodings, preset.model.grid_alibi) == ("rope2d", True)
    root, _ = build(tmp_path, size=9, train=16, test=4, min_path_length=6)
    tiny = ["model.hidden_size=32", "model.num_heads=2", "model.halt_max_steps=2", "model.L_cycles=1",
            "train.global_batch_size=8", "train.eval_max_examples=4", "train.progress=false"]
    assert main(["train", "--config", "maze_small", f"data.path={root}", f"runs_dir={tmp_path}", "train.steps=2", *tiny]) == 0
    model, _ = load_checkpoint(tmp_path / "maze_small" / "final")
    assert model.inner.grid_width == 9 and model.inner.grid_bias.shape == (2, 81, 81)  # rebuilt from the saved config
