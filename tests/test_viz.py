"""``hrm viz``: run pages for every puzzle family, the routing explorer, and the page in headless Chromium."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from cli_helpers import TINY_MODEL, hrm
from hrmkit.data.maze import MazeBuildConfig, build_maze
from hrmkit.data.puzzle_format import load_split
from hrmkit.data.routing import RoutingBuildConfig, build_routing, optimal_cost
from hrmkit.viz.headless import find_chromium, screenshot, self_test
from hrmkit.viz.page import embedded_json
from hrmkit.viz.trace import halting_steps, read_rows

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SEGMENTS = 4  # TINY_MODEL's halt_max_steps
CHROMIUM_MISSING = ("headless Chromium is not installed (Debian: apt-get install chromium; or set HRM_CHROMIUM); "
                    "the browser check of hrm viz pages is skipped")
needs_chromium = pytest.mark.skipif(find_chromium() is None, reason=CHROMIUM_MISSING)


def page_data(page: Path) -> dict:
    found = re.search(r'<script id="viz-data" type="application/json">(.*?)</script>', page.read_text(), re.S)
    assert found, "the page embeds no data"
    return json.loads(found.group(1))


def train(data: Path, runs: Path, name: str, *settings: str) -> Path:
    hrm("train", f"data.path={data}", f"runs_dir={runs}", f"run_name={name}", "train.steps=2",
        "train.eval_interval=0", "train.ema=false", *settings)
    return runs / name


def viz(*args: str) -> Path:
    result = hrm("viz", *args)
    return Path(result.stdout.split()[1])


# ----------------------------------------------------------------------------- runs, one per family


@pytest.fixture(scope="module")
def sudoku_run(sudoku4, tmp_path_factory) -> Path:
    return train(sudoku4, tmp_path_factory.mktemp("runs"), "sudoku", "--config", "quickstart_sudoku4", *TINY_MODEL)


@pytest.fixture(scope="module")
def maze_run(tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("data") / "maze"
    build_maze(MazeBuildConfig(size=9, train=32, test=6, seed=0), data)
    return train(data, tmp_path_factory.mktemp("runs"), "maze", "--config", "quickstart_sudoku4", *TINY_MODEL)


@pytest.fixture(scope="module")
def routing_data(tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("data") / "routing"
    build_routing(RoutingBuildConfig(size=8, train_bases=8, test_bases=3, seed=0), data)
    return data


@pytest.fixture(scope="module")
def routing_run(routing_data, tmp_path_factory) -> Path:
    return train(routing_data, tmp_path_factory.mktemp("runs"), "routing", "--config", "routing_small", *TINY_MODEL)


@pytest.fixture(scope="module")
def arc_run(tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("data") / "arc"
    hrm("prepare", "arc", "--source", "arc1", "--max-tasks", "2", "--num-aug", "3", "--out", str(data))
    return train(data, tmp_path_factory.mktemp("runs"), "arc", "--config", "quickstart_sudoku4", "model.mlp_t=false",
                 "model.pos_encodings=rope", "model.puzzle_emb_ndim=32", "model.num_heads=2",
                 "train.global_batch_size=8", *TINY_MODEL[:-3])


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("pages")


@pytest.fixture(scope="module")
def sudoku_page(sudoku_run, pages) -> Path:
    return viz(str(sudoku_run), "--n", "5", "--out", str(pages / "sudoku.html"))


@pytest.fixture(scope="module")
def maze_page(maze_run, pages) -> Path:
    return viz(str(maze_run), "--n", "4", "--out", str(pages / "maze.html"))


@pytest.fixture(scope="module")
def routing_page(routing_run, pages) -> Path:
    return viz(str(routing_run), "--n", "6", "--out", str(pages / "routing.html"))


@pytest.fixture(scope="module")
def arc_page(arc_run, pages) -> Path:
    return viz(str(arc_run), "--n", "2", "--out", str(pages / "arc.html"))


@pytest.fixture(scope="module")
def explorer_page(routing_data, pages) -> Path:
    return viz("--dataset", str(routing_data), "--n", "2", "--out", str(pages / "explore.html"))


# ----------------------------------------------------------------------------- pure parts


def test_halting_step_is_the_first_segment_wanting_to_halt_else_the_last():
    q_halt = np.array([[-1.0, 2.0, 3.0], [-1.0, -1.0, 5.0], [1.0, 1.0, 1.0]])
    q_continue = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [2.0, 0.5, 0.0]])
    assert halting_steps(q_halt, q_continue, halts_on_q_halt_alone=True).tolist() == [2, 3, 1]
    assert halting_steps(q_halt, q_continue, halts_on_q_halt_alone=False).tolist() == [2, 3, 2]


def test_read_rows_returns_rows_in_the_order_asked(sudoku4):
    split = load_split(sudoku4, "test")
    rows = read_rows(split, np.array([5, 0, 3]))
    assert np.array_equal(rows["inputs"], np.asarray(split.sets["all"]["inputs"])[[5, 0, 3]])
    assert np.array_equal(rows["labels"], np.asarray(split.sets["all"]["labels"])[[5, 0, 3]])


def test_embedded_json_cannot_close_its_script_element():
    text = embedded_json({"name": "</script><script>alert(1)</script> & <!--"})
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text)["name"].startswith("</script>")


# ----------------------------------------------------------------------------- run pages


def test_sudoku_page_is_self_contained_and_has_every_segment(sudoku_page, sudoku4):
    text = sudoku_page.read_text()
    assert not re.search(r"(src|href)\s*=|https?://|@import|fetch\(|XMLHttpRequest", text)
    data = page_data(sudoku_page)
    assert data["kind"] == "sudoku" and data["segments"] == SEGMENTS and len(data["examples"]) == 5
    labels = np.asarray(load_split(sudoku4, "test").sets["all"]["labels"])
    for row, example in enumerate(data["examples"]):
        assert len(example["segments"]) == len(example["q_halt"]) == len(example["q_continue"]) == SEGMENTS
        assert 1 <= example["halt"] <= SEGMENTS
        last = np.array([int(c, 36) for c in example["segments"][-1]])
        assert example["solved"] == bool((last == labels[row]).all())


def test_maze_page_judges_paths_against_the_oracle(maze_page):
    data = page_data(maze_page)
    assert data["kind"] == "maze" and len(data["examples"]) == 4
    for example in data["examples"]:
        assert example["oracle_cost"] == example["label"].count("5") + 1  # path cells + 1 steps
        assert len(example["status"]) == len(example["path_costs"]) == SEGMENTS


def test_routing_page_shows_both_path_costs_and_the_vehicle(routing_page, routing_data):
    data = page_data(routing_page)
    inputs = np.asarray(load_split(routing_data, "test").sets["all"]["inputs"])
    assert data["kind"] == "routing" and len(data["examples"]) == 6
    for row, example in enumerate(data["examples"]):
        assert example["oracle_cost"] == optimal_cost(inputs[row], data["size"])
        assert example["vehicle"] in example["title"] and len(example["costs"]) == data["size"] ** 2


def test_arc_page_votes_over_every_variant_of_each_test_pair(arc_page):
    data = page_data(arc_page)
    assert data["kind"] == "arc" and len(data["examples"]) == 2
    for example in data["examples"]:
        assert len(example["voted"]) == SEGMENTS
        assert all(vote["votes"] <= example["variant_count"] for vote in example["voted"])
        assert 1 <= len(example["variants"]) <= example["variant_count"]
        assert example["solved"] == (example["voted"][-1]["target_rank"] == 1)


def test_routing_dataset_alone_gives_the_explorer(explorer_page):
    data = page_data(explorer_page)
    assert data["page"] == "routing-explorer" and len(data["scenarios"]) == 2
    first = data["scenarios"][0]
    assert set(first["vehicles"]) == {"bike", "car", "van", "truck"}
    truck, bike = first["vehicles"]["truck"], first["vehicles"]["bike"]
    assert truck["costs"] != bike["costs"] and truck["route"][0] == bike["route"][0]  # same S, other roads


def test_bad_input_is_one_line_and_exit_2(sudoku4, tmp_path, capsys):
    from hrmkit.cli import main
    for args, needle in ((["--n", "3"], "give a run folder"),
                         ([str(tmp_path / "missing")], "missing"),
                         (["--dataset", str(sudoku4)], "routing datasets only"),
                         (["--dataset", str(tmp_path / "nowhere")], "nowhere")):
        assert main(["viz", *args]) == 2
        err = capsys.readouterr().err
        assert needle in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not list(tmp_path.iterdir())  # nothing half-written


# ----------------------------------------------------------------------------- in the browser


@needs_chromium
def test_pages_pass_their_self_test_in_headless_chromium(sudoku_page, maze_page, routing_page, arc_page, explorer_page,
                                                         tmp_path):
    verdict = self_test(sudoku_page)
    assert verdict["ok"], verdict
    assert verdict["examples"] == verdict["cards_in_dom"] == 5
    assert verdict["stepping_changed_grid"] and verdict["data_changes"] > 0
    shot = screenshot(sudoku_page, tmp_path / "sudoku.png", width=1000, height=700)
    assert shot.read_bytes().startswith(PNG_MAGIC) and shot.stat().st_size > 5000
    for page, examples in ((maze_page, 4), (routing_page, 6), (arc_page, 2), (explorer_page, 2)):
        verdict = self_test(page)
        assert verdict["ok"] and verdict["stepping_changed_grid"], (page.name, verdict)
        assert verdict["examples"] == examples


@needs_chromium
def test_browser_check_fails_a_broken_page(sudoku_page, tmp_path):
    text = sudoku_page.read_text()
    # A script error on load: the viewer never finishes building the page.
    crashing = tmp_path / "crashing.html"
    crashing.write_text(text.replace("entry.view.show(segment);", "entry.view.shwo(segment);"))
    verdict = self_test(crashing)
    assert not verdict["ok"] and any("shwo" in error for error in verdict["errors"] + verdict["console_errors"])
    # No error at all, but the prediction never follows the slider.
    frozen = tmp_path / "frozen.html"
    frozen.write_text(text.replace("example.segments[segment - 1], example.input", "example.segments[0], example.input"))
    verdict = self_test(frozen)
    assert not verdict["ok"] and not verdict["errors"]
    assert any("did not change" in failure for failure in verdict["failures"])
    # A console error alone fails the page too.
    noisy = tmp_path / "noisy.html"
    noisy.write_text(text.replace("<body>", "<body><script>console.error('boom')</script>", 1))
    verdict = self_test(noisy)
    assert not verdict["ok"] and any("boom" in error for error in verdict["errors"] + verdict["console_errors"])
