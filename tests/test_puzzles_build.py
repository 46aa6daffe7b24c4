"""What the dataset builders share: the five arrays and dataset.json of uniform splits, the summary,
imported streams, the dihedral tables, and all-or-nothing output."""

import json
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import hrm_here

from hrmkit.puzzles import arc_dataset
from hrmkit.puzzles.arc_dataset import ArcBuildConfig, build_arc
from hrmkit.puzzles.build import uniform_arrays
from hrmkit.puzzles.format import load_split
from hrmkit.puzzles.grid import (
    DIHEDRAL_INVERSE,
    DIHEDRAL_SWAPS_AXES,
    dihedral_transform,
)
from hrmkit.puzzles.maze_dataset import MazeBuildConfig, build_maze
from hrmkit.puzzles.routing_dataset import RoutingBuildConfig, build_routing
from hrmkit.puzzles.selection import imported_streams
from hrmkit.puzzles.sudoku_dataset import SudokuBuildConfig, build_sudoku


def test_uniform_arrays_cut_rows_into_equal_puzzles_and_groups():
    rows = np.arange(12, dtype=np.uint8).reshape(12, 1)
    arrays = uniform_arrays(rows, rows, examples_per_puzzle=3, puzzles_per_group=2)
    assert arrays["puzzle_indices"].tolist() == [0, 3, 6, 9, 12]
    assert arrays["group_indices"].tolist() == [0, 2, 4]
    assert arrays["puzzle_identifiers"].tolist() == [0, 0, 0, 0]
    assert {arrays[name].dtype for name in ("puzzle_identifiers", "puzzle_indices", "group_indices")} == {np.dtype(np.int32)}
    empty = uniform_arrays(rows[:0], rows[:0], examples_per_puzzle=3, puzzles_per_group=2)
    assert empty["puzzle_indices"].tolist() == [0] and empty["group_indices"].tolist() == [0]


def dataset_json(root: Path, split: str) -> dict:
    return json.loads((root / split / "dataset.json").read_text())


def test_generated_datasets_write_what_trm_writes_in_total_puzzles(tmp_path):
    sudoku = tmp_path / "sudoku"
    build_sudoku(SudokuBuildConfig(size=4, train=6, test=2, num_aug=2, seed=1), sudoku)
    assert load_split(sudoku, "train").num_puzzles == 18
    assert dataset_json(sudoku, "train") == {
        "pad_id": 0, "ignore_label_id": 0, "blank_identifier_id": 0, "vocab_size": 6, "seq_len": 16,
        "num_puzzle_identifiers": 1, "total_groups": 6, "mean_puzzle_examples": 1.0, "total_puzzles": 6,
        "sets": ["all"]}  # Sudoku and mazes: TRM writes the number of groups as total_puzzles
    maze = tmp_path / "maze"
    build_maze(MazeBuildConfig(size=7, train=3, test=2, aug=True, seed=1), maze)
    assert dataset_json(maze, "train")["total_groups"] == dataset_json(maze, "train")["total_puzzles"] == 3
    routing = tmp_path / "routing"
    build_routing(RoutingBuildConfig(size=8, train_bases=2, test_bases=1, vehicles="bike,car", aug=True, seed=1), routing)
    train = dataset_json(routing, "train")
    assert (train["total_groups"], train["total_puzzles"], train["mean_puzzle_examples"]) == (2, 16, 2.0)
    assert [json.loads((root / "identifiers.json").read_text()) for root in (sudoku, maze, routing)] == [["<blank>"]] * 3


def test_every_summary_names_builder_and_config_first_and_only_the_printed_one_has_seconds(tmp_path):
    summaries = [
        build_sudoku(SudokuBuildConfig(size=4, train=2, test=1), tmp_path / "sudoku"),
        build_maze(MazeBuildConfig(size=7, train=2, test=1), tmp_path / "maze"),
        build_routing(RoutingBuildConfig(size=8, train_bases=1, test_bases=1, vehicles="car"), tmp_path / "routing"),
    ]
    for summary, name in zip(summaries, ("sudoku", "maze", "routing")):
        saved = json.loads((tmp_path / name / "hrmkit_build.json").read_text())
        assert list(summary)[-1] == "seconds" and "seconds" not in saved  # saved, it would differ run to run
        assert saved == {key: value for key, value in summary.items() if key != "seconds"}
        assert list(saved)[:2] == ["builder", "config"]
        assert saved["builder"] == f"hrmkit.data.{name}"


def test_imported_streams_share_one_file_unless_a_test_file_is_given():
    files = {"a.csv": (np.arange(5)[:, None], np.arange(5)[:, None] + 10), "b.csv": (np.arange(3)[:, None] + 20,) * 2}
    train, test = imported_streams(files.__getitem__, "a.csv", None, seed=0)
    assert train is test  # test takes the first shuffled rows, train the rest
    rows = [int(row[0]) for row, _ in train]
    assert sorted(rows) == [0, 1, 2, 3, 4]
    train, test = imported_streams(files.__getitem__, "a.csv", "b.csv", seed=0)
    assert sorted(int(row[0]) for row, _ in test) == [20, 21, 22]
    assert sorted(int(row[0]) for row, _ in train) == [0, 1, 2, 3, 4]


def test_dihedral_inverse_undoes_each_transform_and_swaps_axes_where_told():
    grid = np.arange(6).reshape(2, 3)  # not square, so a swap of rows and columns shows
    for index in range(8):
        moved = dihedral_transform(grid, index)
        assert np.array_equal(dihedral_transform(moved, DIHEDRAL_INVERSE[index]), grid)
        assert (moved.shape == (3, 2)) == DIHEDRAL_SWAPS_AXES[index]


def write_kaggle(folder: Path) -> Path:
    """Two small made-up tasks per subset in the Kaggle layout (challenges plus solutions)."""
    rng = np.random.default_rng(0)
    folder.mkdir()
    for subset in ("training", "evaluation"):
        tasks = {f"{subset}{i}": {"train": [{"input": rng.integers(0, 10, (2, 3)).tolist(),
                                             "output": rng.integers(0, 10, (3, 2)).tolist()}] * 2,
                                  "test": [{"input": rng.integers(0, 10, (2, 2)).tolist(),
                                            "output": rng.integers(0, 10, (2, 2)).tolist()}]} for i in range(2)}
        challenges = {t: {"train": task["train"], "test": [{"input": p["input"]} for p in task["test"]]}
                      for t, task in tasks.items()}
        (folder / f"arc-agi_{subset}_challenges.json").write_text(json.dumps(challenges))
        (folder / f"arc-agi_{subset}_solutions.json").write_text(
            json.dumps({t: [p["output"] for p in task["test"]] for t, task in tasks.items()}))
    return folder


def test_an_arc_build_that_fails_while_writing_leaves_no_output_and_keeps_the_old_one(tmp_path, monkeypatch):
    cfg = ArcBuildConfig(source="kaggle-json", path=str(write_kaggle(tmp_path / "kaggle")), num_aug=2, seed=0)
    built = build_arc(cfg, tmp_path / "kept")
    before = sorted(path.relative_to(tmp_path) for path in (tmp_path / "kept").rglob("*"))

    def failing(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(arc_dataset, "encode_variants", failing)
    with pytest.raises(OSError, match="disk full"):
        build_arc(cfg, tmp_path / "new")
    with pytest.raises(OSError, match="disk full"):
        build_arc(cfg, tmp_path / "kept", overwrite=True)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["kaggle", "kept"]  # no output, no temporary folder
    assert sorted(path.relative_to(tmp_path) for path in (tmp_path / "kept").rglob("*")) == before
    saved = {key: value for key, value in built.items() if key != "seconds"}  # printed, never saved
    assert json.loads((tmp_path / "kept" / "hrmkit_build.json").read_text()) == saved


@pytest.mark.parametrize(("kind", "flags", "message"), [
    ("sudoku", ["--size", "4", "--train", "0"], "train must be >= 1, got 0"),
    ("maze", ["--size", "7", "--test", "0"], "test must be >= 1, got 0"),
    ("routing", ["--size", "8", "--train-bases", "0"], "train_bases must be >= 1, got 0"),
])
def test_prepare_refuses_an_empty_split_in_one_line(tmp_path, kind, flags, message):
    result = hrm_here("prepare", kind, *flags, "--out", tmp_path / "ds", check=False)
    assert (result.returncode, result.stderr) == (2, f"error: {message}\n")
    assert not (tmp_path / "ds").exists()


def _gone_pid() -> int:
    """The pid of a process that has ended (what a writer killed with SIGKILL leaves its files named after)."""
    import subprocess
    import sys
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.mark.cli
def test_a_build_clears_what_a_killed_build_of_the_same_output_left(tmp_path):
    """A build killed with SIGKILL (or a power loss) left <out>.tmp-<pid> (gigabytes for ARC at the README's
    --num-aug 1000) and nothing ever removed it. The next build of that output removes it; what a live
    process or another output owns stays."""
    import subprocess
    import sys

    from cli_helpers import hrm_here
    gone = _gone_pid()
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # another build, still writing
    try:
        killed, live, other = (tmp_path / f"s4.tmp-{gone}", tmp_path / f"s4.tmp-{running.pid}",
                               tmp_path / f"s6.tmp-{gone}")
        for folder in (killed, live, other):
            folder.mkdir()
            (folder / "train").mkdir()
        hrm_here("prepare", "sudoku", "--size", "4", "--train", "20", "--test", "5", "--out", tmp_path / "s4")
        assert sorted(path.name for path in tmp_path.iterdir()) == sorted(["s4", live.name, other.name])
    finally:
        running.kill()
        running.wait()


def test_an_output_a_killed_swap_had_retired_comes_back_under_its_name(tmp_path):
    """Killed between its two renames, a replacement left no output under the final name: the old one was
    <name>.old-<pid>. The next write of that output puts it back first."""
    from hrmkit.files import atomic_write_text, clear_leftovers
    gone = _gone_pid()
    retired = tmp_path / f"data.old-{gone}"
    retired.mkdir()
    atomic_write_text(retired / "dataset.json", "{}")
    clear_leftovers(tmp_path, "data")
    assert (tmp_path / "data" / "dataset.json").read_text() == "{}" and not retired.exists()
