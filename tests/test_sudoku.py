import csv
import json
from pathlib import Path

import numpy as np
import pytest

from hrmkit.puzzles.format import load_identifiers, load_split
from hrmkit.puzzles.sudoku import shuffle_sudoku, solve
from hrmkit.puzzles.sudoku_dataset import SudokuBuildConfig, build_sudoku

BOX = {4: (2, 2), 6: (2, 3), 9: (3, 3)}


def is_valid_solution(grid: np.ndarray, size: int) -> bool:
    grid = np.asarray(grid).reshape(size, size)
    box_rows, box_cols = BOX[size]
    boxes = grid.reshape(size // box_rows, box_rows, size // box_cols, box_cols).transpose(0, 2, 1, 3)
    boxes = boxes.reshape(size, size)
    digits = list(range(1, size + 1))
    return all(sorted(line) == digits for lines in (grid, grid.T, boxes) for line in lines.tolist())


def digits_of(tokens: np.ndarray) -> np.ndarray:
    """Reference tokens (1 blank, d + 1 digit) back to digits (0 blank)."""
    return np.asarray(tokens, dtype=np.int64) - 1


def build(tmp_path: Path, name: str = "ds", **config) -> tuple[Path, dict]:
    out = tmp_path / name
    return out, build_sudoku(SudokuBuildConfig(**config), out)


def arrays(root: Path, split: str) -> dict[str, np.ndarray]:
    return {name: np.asarray(array) for name, array in load_split(root, split).sets["all"].items()}


@pytest.mark.parametrize(("size", "train", "test"), [(4, 40, 10), (6, 20, 5), (9, 4, 2)])
def test_generated_puzzles_have_one_solution_which_is_the_label(tmp_path, size, train, test):
    root, summary = build(tmp_path, size=size, train=train, test=test)
    assert (summary["train_puzzles"], summary["test_puzzles"]) == (train, test)
    for split in ("train", "test"):
        data = arrays(root, split)
        for inputs, labels in zip(digits_of(data["inputs"]), digits_of(data["labels"])):
            solution, count = solve(inputs, size)
            assert count == 1
            np.testing.assert_array_equal(solution, labels)
            assert is_valid_solution(labels, size)
            givens = inputs != 0
            np.testing.assert_array_equal(inputs[givens], labels[givens])


@pytest.mark.parametrize("size", [4, 6, 9])
def test_tokens_and_metadata_follow_the_reference(tmp_path, size):
    root, _ = build(tmp_path, size=size, train=3, test=2, num_aug=1)
    assert load_identifiers(root) == ["<blank>"]
    for split, groups in (("train", 3), ("test", 2)):
        loaded = load_split(root, split)
        meta = loaded.metadata
        assert (meta.vocab_size, meta.seq_len, meta.pad_id, meta.ignore_label_id) == (size + 2, size * size, 0, 0)
        assert (meta.blank_identifier_id, meta.num_puzzle_identifiers, meta.sets) == (0, 1, ["all"])
        assert meta.total_groups == meta.total_puzzles == groups
        assert meta.mean_puzzle_examples == 1
        data = arrays(root, split)
        assert data["inputs"].min() >= 1 and data["inputs"].max() <= size + 1
        assert data["labels"].min() >= 2 and data["labels"].max() <= size + 1
        np.testing.assert_array_equal(data["puzzle_indices"], np.arange(len(data["inputs"]) + 1))
        assert not data["puzzle_identifiers"].any()


def test_difficulty_and_blanks_set_how_many_cells_are_blank(tmp_path):
    _, easy = build(tmp_path, "easy", size=9, train=3, test=1, difficulty="easy")
    _, exact = build(tmp_path, "exact", size=6, train=5, test=1, blanks=12)
    assert easy["blanks"]["train"]["max"] == round(0.40 * 81)
    assert exact["blanks"]["train"] == {"min": 12, "mean": 12.0, "max": 12}


def test_a_build_says_when_puzzles_keep_more_givens_than_asked(tmp_path):
    """Blanking stops where a further blank would admit a second solution: 64 blanks on 9x9 (17 givens, the
    fewest any uniquely solvable Sudoku has) built puzzles of 56-58 blanks, silently."""
    from cli_helpers import hrm

    short = hrm("prepare", "sudoku", "--size", "9", "--train", "4", "--test", "2", "--blanks", "64",
                "--out", str(tmp_path / "short"))
    blanks = json.loads((tmp_path / "short" / "hrmkit_build.json").read_text())["blanks"]
    assert blanks["train"]["max"] < 64 and blanks["test"]["max"] < 64
    assert short.stderr.count("note: ") == 1
    assert "64 blanks per puzzle asked" in short.stderr and "4 of 4 train puzzles have" in short.stderr
    assert "2 of 2 test puzzles have" in short.stderr
    reached = hrm("prepare", "sudoku", "--size", "6", "--train", "4", "--test", "2", "--blanks", "12",
                  "--out", str(tmp_path / "reached"))
    assert "note:" not in reached.stderr


def test_augmented_groups_hold_valid_variants_of_their_base_puzzle(tmp_path):
    root, summary = build(tmp_path, size=6, train=6, test=2, num_aug=4)
    data = arrays(root, "train")
    assert summary["train_examples"] == 6 * 5
    np.testing.assert_array_equal(data["group_indices"], np.arange(0, 31, 5))
    inputs, labels = digits_of(data["inputs"]), digits_of(data["labels"])
    for puzzle, solution in zip(inputs, labels):
        assert is_valid_solution(solution, 6)
        givens = puzzle != 0
        np.testing.assert_array_equal(puzzle[givens], solution[givens])
    for group in range(6):
        members = inputs[group * 5 : (group + 1) * 5]
        assert len({row.tobytes() for row in members}) > 1  # variants differ from the base
        assert len({int(np.sum(row == 0)) for row in members}) == 1  # same number of blanks
    assert len(arrays(root, "test")["inputs"]) == 2  # the test split is not augmented


def test_shuffle_preserves_validity_and_never_transposes_6x6():
    solution, _ = solve(np.zeros((6, 6), dtype=np.int64), 6)
    # Row and column moves keep 2x3 boxes valid, so any transposed image of this grid would be invalid.
    assert not is_valid_solution(solution.T, 6)
    board = np.where(np.arange(36).reshape(6, 6) % 3 == 0, 0, solution)
    rng = np.random.default_rng(0)
    for _ in range(200):
        shuffled_board, shuffled_solution = shuffle_sudoku(board, solution, 6, rng)
        assert shuffled_board.shape == (6, 6)
        assert is_valid_solution(shuffled_solution, 6)
        givens = shuffled_board != 0
        np.testing.assert_array_equal(shuffled_board[givens], shuffled_solution[givens])
        assert np.sum(shuffled_board == 0) == np.sum(board == 0)


@pytest.mark.parametrize("size", [4, 9])
def test_shuffle_transposes_square_box_sizes_sometimes(size):
    solution, _ = solve(np.zeros((size, size), dtype=np.int64), size)
    rng = np.random.default_rng(1)
    # Which cells shared a row survives every symmetry but transposition, which makes them share a column.
    marker = np.zeros((size, size), dtype=np.int64)
    marker[0, :] = solution[0, :]
    row_kept = []
    for _ in range(64):
        shuffled, shuffled_solution = shuffle_sudoku(marker, solution, size, rng)
        assert is_valid_solution(shuffled_solution, size)
        row_kept.append(bool(np.any(np.all(shuffled != 0, axis=1))))
    assert any(row_kept) and not all(row_kept)


def test_same_seed_builds_identical_bytes_and_another_seed_does_not(tmp_path):
    config = dict(size=4, train=30, test=10, num_aug=3, seed=5)
    first, _ = build(tmp_path, "first", **config)
    second, _ = build(tmp_path, "second", **config)
    other, _ = build(tmp_path, "other", **{**config, "seed": 6})
    data_files = sorted(path.relative_to(first) for path in first.rglob("*") if path.is_file())
    assert len(data_files) == 1 + 1 + 2 * 6  # identifiers, provenance, two splits of six files
    for relative in data_files:  # hrmkit_build.json included
        assert (first / relative).read_bytes() == (second / relative).read_bytes(), relative
    assert (first / "train/all__inputs.npy").read_bytes() != (other / "train/all__inputs.npy").read_bytes()


def test_train_and_test_share_no_input_grid_even_after_augmentation(tmp_path):
    # With one blank, 4x4 has only 4,608 puzzles: some augmented variants hit test inputs and are redrawn.
    root, _ = build(tmp_path, size=4, train=40, test=100, num_aug=20, blanks=1)
    test_inputs = {row.tobytes() for row in arrays(root, "test")["inputs"]}
    assert len(test_inputs) == 100
    assert not test_inputs & {row.tobytes() for row in arrays(root, "train")["inputs"]}


def test_disjoint_solutions_keeps_every_test_solution_out_of_augmented_6x6_train(tmp_path):
    root, summary = build(tmp_path, size=6, train=200, test=50, num_aug=8, disjoint_solutions=True)
    assert summary["solution_overlap"] == {"test_puzzles_with_solution_in_train": 0,
                                           "train_examples_with_a_test_solution": 0}
    provenance = json.loads((root / "hrmkit_build.json").read_text())
    assert provenance["solution_overlap"] == summary["solution_overlap"]
    assert provenance["config"]["disjoint_solutions"] is True
    test_solutions = {row.tobytes() for row in arrays(root, "test")["labels"]}
    assert not test_solutions & {row.tobytes() for row in arrays(root, "train")["labels"]}


def test_overlap_is_counted_when_solutions_may_repeat(tmp_path):
    # 4x4 has only 288 solution grids, so a plain build shares most held-out solutions with train.
    _, summary = build(tmp_path, size=4, train=300, test=40, num_aug=1)
    overlap = summary["solution_overlap"]
    assert 0 < overlap["test_puzzles_with_solution_in_train"] <= 40
    assert overlap["train_examples_with_a_test_solution"] > 0


def test_disjoint_solutions_fails_clearly_when_test_covers_every_4x4_grid(tmp_path):
    with pytest.raises(ValueError, match="288 solution grids"):
        build(tmp_path, size=4, train=10, test=3000, blanks=10, disjoint_solutions=True)
    assert not (tmp_path / "ds").exists()


def write_csv(path: Path, rows: list[tuple[str, str, str]], header: str = "source,q,a,rating") -> Path:
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(header.split(","))
        for source, (puzzle, solution, rating) in enumerate(rows):
            writer.writerow([f"src{source}", puzzle, solution, rating])
    return path


def grid_text(digits: np.ndarray, blank: str = ".") -> str:
    return "".join(blank if digit == 0 else str(digit) for digit in digits.ravel())


def csv_rows_from_build(tmp_path: Path, count: int) -> list[tuple[str, str, str]]:
    root, _ = build(tmp_path, "source", size=4, train=count, test=1)
    data = arrays(root, "train")
    return [
        (grid_text(q, blank="." if row % 2 else "0"), grid_text(a), str(row))
        for row, (q, a) in enumerate(zip(digits_of(data["inputs"]), digits_of(data["labels"])))
    ]


def test_csv_import_round_trips_and_filters_by_rating(tmp_path):
    rows = csv_rows_from_build(tmp_path, 12)
    train_csv = write_csv(tmp_path / "train.csv", rows[:8])
    test_csv = write_csv(tmp_path / "test.csv", rows[8:])
    root, summary = build(tmp_path, size=4, train=100, test=100, from_csv=str(train_csv), test_csv=str(test_csv))
    assert (summary["source"], summary["train_puzzles"], summary["test_puzzles"]) == ("csv", 8, 4)
    imported = {grid_text(digits_of(q)) for q in arrays(root, "train")["inputs"]}
    assert imported == {q.replace("0", ".") for q, _, _ in rows[:8]}
    root, summary = build(
        tmp_path, "filtered", size=4, train=3, test=2, from_csv=str(train_csv), min_difficulty=4, num_aug=2
    )
    assert (summary["train_puzzles"], summary["test_puzzles"], summary["train_examples"]) == (2, 2, 6)
    ratings = {q.replace("0", "."): int(rating) for q, _, rating in rows}
    for q in arrays(root, "train")["inputs"][::3]:
        assert ratings[grid_text(digits_of(q))] >= 4


def test_an_import_that_leaves_a_split_empty_names_the_file(tmp_path):
    rows = csv_rows_from_build(tmp_path, 4)
    train_csv, empty_csv = write_csv(tmp_path / "train.csv", rows), write_csv(tmp_path / "empty.csv", [])
    with pytest.raises(ValueError, match=rf"^{empty_csv}: no rows for the test split$"):
        build(tmp_path, size=4, train=2, test=2, from_csv=str(train_csv), test_csv=str(empty_csv))
    with pytest.raises(ValueError, match=rf"^{train_csv}: no rows left for the train split$"):
        build(tmp_path, size=4, train=2, test=2, from_csv=str(train_csv), min_difficulty=99)
    assert not (tmp_path / "ds").exists()


def test_a_csv_that_is_not_utf8_is_named_with_its_line(tmp_path):
    binary = tmp_path / "bin.csv"
    binary.write_bytes(b"\xff\xfe")
    with pytest.raises(ValueError, match=rf"^{binary}:1: byte 0xff at column 1 is not UTF-8 text"):
        build(tmp_path, size=4, train=2, test=1, from_csv=str(binary))
    latin = write_csv(tmp_path / "latin.csv", csv_rows_from_build(tmp_path, 3))
    latin.write_bytes(latin.read_bytes().replace(b"src1", b"caf\xe9"))
    with pytest.raises(ValueError, match=rf"^{latin}:3: byte 0xe9 at column 4 is not UTF-8 text"):
        build(tmp_path, size=4, train=2, test=1, from_csv=str(latin))
    assert not (tmp_path / "ds").exists()


def test_a_csv_saved_with_a_byte_order_mark_imports_and_lines_count_from_where_rows_start(tmp_path):
    """Spreadsheets save UTF-8 with a byte-order mark; a quoted source may span lines."""
    rows = csv_rows_from_build(tmp_path, 4)
    marked = tmp_path / "marked.csv"  # q is the first column, where the mark sits
    lines = ["q,a,source,rating", *(f"{q},{a},src,{rating}" for q, a, rating in rows)]
    marked.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode())
    root, summary = build(tmp_path, size=4, train=3, test=1, from_csv=str(marked))
    assert summary["train_puzzles"] + summary["test_puzzles"] == 4
    spanning = tmp_path / "spanning.csv"
    with open(spanning, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["source", "q", "a", "rating"])
        writer.writerow(["first\nsecond\nthird", rows[0][0], rows[0][1], 0])  # lines 2-4
        writer.writerow(["src", rows[1][0], rows[1][1][:-1], 0])  # line 5
    with pytest.raises(ValueError, match=rf"^{spanning}:5: column a must be 16 ASCII characters for size 4, got 15$"):
        build(tmp_path, "spans", size=4, train=1, test=1, from_csv=str(spanning))
    huge = tmp_path / "huge.csv"  # past the csv module's field limit: its error, with the line
    huge.write_text("q,a\n" + "1" * 200_000 + ",2\n")
    with pytest.raises(ValueError, match=rf"^{huge}:2: field larger than field limit"):
        build(tmp_path, "huge", size=4, train=1, test=1, from_csv=str(huge))


def test_the_sudoku_extreme_header_question_answer_imports_as_q_a_does(tmp_path):
    """Sudoku-Extreme's CSVs are headed source,question,answer,rating; the reference reads by position."""
    rows = csv_rows_from_build(tmp_path, 6)
    named = write_csv(tmp_path / "extreme.csv", rows, header="source,question,answer,rating")
    short = write_csv(tmp_path / "short.csv", rows)
    extreme_root, _ = build(tmp_path, "extreme", size=4, train=100, test=1, from_csv=str(named))
    short_root, _ = build(tmp_path, "short", size=4, train=100, test=1, from_csv=str(short))
    for name in ("inputs", "labels"):
        np.testing.assert_array_equal(arrays(extreme_root, "train")[name], arrays(short_root, "train")[name])
    with pytest.raises(ValueError, match="must name columns question and answer"):
        build(tmp_path, "bad", size=4, train=100, test=1,
              from_csv=str(write_csv(tmp_path / "bad.csv", rows, header="source,puzzle,solution,rating")))


def test_an_import_without_a_size_takes_the_csvs_and_a_generated_build_is_9x9(tmp_path):
    rows = csv_rows_from_build(tmp_path, 3)  # 4x4 puzzles
    root, summary = build(tmp_path, train=2, test=1, from_csv=str(write_csv(tmp_path / "four.csv", rows)))
    assert summary["config"]["size"] == 4 and load_split(root, "train").metadata.seq_len == 16
    assert json.loads((root / "hrmkit_build.json").read_text())["config"]["size"] == 4
    empty = write_csv(tmp_path / "empty.csv", [])
    with pytest.raises(ValueError, match=rf"^{empty}: no rows to read the Sudoku size from$"):
        build(tmp_path, "e", train=1, test=1, from_csv=str(empty))
    odd = write_csv(tmp_path / "odd.csv", [("1234.", "12345", "0")])
    with pytest.raises(ValueError, match=rf"^{odd}:2: column q has 5 characters, which is no Sudoku size"):
        build(tmp_path, "o", train=1, test=1, from_csv=str(odd))
    generated, summary = build(tmp_path, "generated", train=1, test=1, difficulty="easy")
    assert summary["config"]["size"] == 9 and load_split(generated, "test").metadata.seq_len == 81


def test_a_csv_of_another_grid_size_says_which_size_to_give(tmp_path):
    rows = csv_rows_from_build(tmp_path, 3)  # 4x4 puzzles, read as size 9
    with pytest.raises(ValueError, match=r"bad\.csv:2: column q must be 81 ASCII characters for size 9, got 16 "
                                         r"\(a 4x4 grid: give --size 4\)"):
        build(tmp_path, size=9, train=2, test=1, from_csv=str(write_csv(tmp_path / "bad.csv", rows)))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda q, a: (q[:-1], a), r"bad\.csv:3: column q must be 16"),
        (lambda q, a: ("x" + q[1:], a), r"bad\.csv:3: column q has 'x'"),
        (lambda q, a: (q, "5" + a[1:]), r"bad\.csv:3: column a has '5'"),
        (lambda q, a: (q, a[1] + a[0] + a[2:]), r"bad\.csv:3: a is not a valid 4x4 solution"),
    ],
)
def test_malformed_csv_rows_are_reported_with_their_line(tmp_path, edit, message):
    rows = csv_rows_from_build(tmp_path, 3)
    q, a, rating = rows[1]
    rows[1] = (*edit(q, a), rating)
    with pytest.raises(ValueError, match=message):
        build(tmp_path, size=4, train=2, test=1, from_csv=str(write_csv(tmp_path / "bad.csv", rows)))


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (dict(size=5), "size must be one of"),
        (dict(train=-1), "train must be >= 1"),
        (dict(train=0), "train must be >= 1, got 0"),
        (dict(test=0), "test must be >= 1, got 0"),
        (dict(num_aug=-1), "num_aug must be >= 0"),
        (dict(size=9, blanks=70), "blanks=70 is impossible"),
        (dict(difficulty="extreme"), "difficulty must be one of"),
        (dict(min_difficulty=3), "set from_csv"),
    ],
)
def test_bad_arguments_raise_a_clear_value_error(tmp_path, config, message):
    with pytest.raises(ValueError, match=message):
        build(tmp_path, **config)


def test_solve_counts_solutions_up_to_two():
    empty_count = solve(np.zeros(16, dtype=np.int64), 4)[1]
    puzzle = np.array([[1, 0, 0, 0], [0, 0, 3, 0], [0, 4, 0, 0], [0, 0, 0, 2]])
    solution, count = solve(puzzle, 4)
    contradiction = solve(np.array([1, 1] + [0] * 14), 4)
    assert empty_count == 2
    assert count == 1 and solution.shape == (4, 4) and is_valid_solution(solution, 4)
    assert contradiction == (None, 0)


def test_progress_reports_each_stage(tmp_path):
    calls = []
    config = SudokuBuildConfig(size=4, train=5, test=2, num_aug=1)
    build_sudoku(config, tmp_path / "ds", progress=lambda *call: calls.append(call))
    assert ("test puzzles", 2, 2) in calls and ("train puzzles", 5, 5) in calls
    assert ("augmenting", 5, 5) in calls and calls[-1] == ("writing", 1, 1)
