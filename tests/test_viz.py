"""``hrm viz``: run pages for every puzzle family, code-evaluation pages, the routing explorer, and the
pages in headless Chromium."""

from __future__ import annotations

import json
import shutil
import re
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import MBPP_DIR, TINY_MODEL, hrm, hrm_here

from hrmkit.puzzles.format import load_split
from hrmkit.puzzles.maze_dataset import MazeBuildConfig, build_maze
from hrmkit.puzzles.routing import optimal_cost
from hrmkit.puzzles.routing_dataset import RoutingBuildConfig, build_routing
from hrmkit.puzzles.views.trace import halting_steps, read_rows
from hrmkit.viz.headless import find_chromium, screenshot, self_test
from hrmkit.viz.page import SHARED_SCRIPTS, embedded_json

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SEGMENTS = 4  # TINY_MODEL's halt_max_steps
CHROMIUM_MISSING = ("headless Chromium is not installed (Debian: apt-get install chromium; or set HRM_CHROMIUM); "
                    "the browser check of hrm viz pages is skipped")
needs_chromium = pytest.mark.skipif(find_chromium() is None, reason=CHROMIUM_MISSING)
MBPP = MBPP_DIR / "mbpp.jsonl"
needs_mbpp = pytest.mark.skipif(not MBPP.exists(), reason=f"MBPP is not at {MBPP_DIR} (set HRM_MBPP_DIR); "
                                                          "the page of real `hrm eval code` results is skipped")


def page_data(page: Path) -> dict:
    found = re.search(r'<script id="viz-data" type="application/json">(.*?)</script>', page.read_text(), re.S)
    assert found, "the page embeds no data"
    return json.loads(found.group(1))


def train(data: Path, runs: Path, name: str, *settings: str) -> Path:
    hrm_here("train", f"data.path={data}", f"runs_dir={runs}", f"run_name={name}", "train.steps=2",
        "train.eval_interval=0", "train.ema=false", *settings)
    return runs / name


def viz(*args: str) -> Path:
    result = hrm("viz", *args)
    return Path(result.stdout.split()[1])


# ----------------------------------------------------------------------------- runs, one per family


@pytest.fixture(scope="module")
def sudoku_run(trained_sudoku_run) -> Path:
    return trained_sudoku_run  # shared with the other tests that need a trained run (conftest.py)


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
    hrm_here("prepare", "arc", "--source", "arc1", "--max-tasks", "2", "--num-aug", "3", "--out", str(data))
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
def sudoku_guesses_page(sudoku_run, pages) -> Path:
    return viz(str(sudoku_run), "--n", "6", "--tta", "4", "--out", str(pages / "sudoku-guesses.html"))


@pytest.fixture(scope="module")
def maze_guesses_page(maze_run, pages) -> Path:
    return viz(str(maze_run), "--n", "4", "--tta", "8", "--out", str(pages / "maze-guesses.html"))


@pytest.fixture(scope="module")
def explorer_page(routing_data, pages) -> Path:
    return viz("--dataset", str(routing_data), "--n", "2", "--out", str(pages / "explore.html"))


# ----------------------------------------------------------------------------- code-evaluation results


@pytest.fixture(scope="module")
def mbpp_results(tmp_path_factory) -> Path:
    """`hrm eval code --references` on the first 5 MBPP test tasks, really run in the sandbox."""
    if not MBPP.exists():
        pytest.skip(f"MBPP is not at {MBPP_DIR} (set HRM_MBPP_DIR)")
    results = tmp_path_factory.mktemp("code") / "code-eval-mbpp-test-references.jsonl"
    hrm("eval", "code", "--task", "mbpp", "--data", str(MBPP), "--references", "--limit", "5", "--workers", "2",
        "--out", str(results))
    return results


# Untrusted text as a model may write it: each would run or show as markup if the page parsed it.
HOSTILE = [
    "</script><script>console.error('injected by a completion')</script>",
    '<img src=x onerror="console.error(\'injected by a completion\')"><b>bold?</b>',
    "<!-- <script> ]]> &amp; &lt; \u2028\u2029 ${'`'} \\u003c/script>",
]


def sample_record(task, sample, verdict, completion, code=None, seconds=0.1, detail=""):
    return {"task_id": task, "sample": sample, "completion": completion, "code": completion if code is None else code,
            "passed": verdict == "passed", "verdict": verdict, "seconds": seconds, "detail": detail, "run_key": "k"}


@pytest.fixture(scope="module")
def hostile_results(tmp_path_factory) -> Path:
    """A hand-written results file: every sandbox verdict, hostile completions and prompt, a task file."""
    folder = tmp_path_factory.mktemp("hostile")
    tasks = folder / "tasks.jsonl"  # MBPP's format; task 12's prompt is hostile too
    tasks.write_text("".join(json.dumps({"task_id": number, "text": text, "code": "def f(x):\n    return x",
                                         "test_list": ["assert f(1) == 1"], "test_setup_code": "",
                                         "challenge_test_list": []}) + "\n"
                             for number, text in ((11, "Return x."), (12, HOSTILE[0]), (13, "Loop."), (14, "Kill."))))
    records = [
        sample_record("MBPP/11", 0, "passed", "def f(x):\n    return x"),
        sample_record("MBPP/11", 1, "failed", HOSTILE[0], code="def f(x):\n    return 0", detail="AssertionError"),
        sample_record("MBPP/12", 0, "failed", HOSTILE[1], detail="AssertionError: " + HOSTILE[1]),
        sample_record("MBPP/12", 1, "error", HOSTILE[2], detail="SyntaxError"),
        sample_record("MBPP/13", 0, "timeout", "def f(x):\n    while True: pass", seconds=2.0),
        sample_record("MBPP/13", 1, "passed", "```python\ndef f(x):\n    return x\n```", code="def f(x):\n    return x"),
        sample_record("MBPP/14", 0, "killed", "def f(x):\n    return [0] * 10**10"),
        sample_record("MBPP/14", 1, "output-limit", "def f(x):\n    print('x' * 10**9)"),
        sample_record("MBPP/14", 2, "passed", "beyond n: left out, as pass@k leaves it out"),
    ]
    results = folder / "hostile.jsonl"
    results.write_text("".join(json.dumps(record) + "\n" for record in records))
    summary = {"settings": {"task": "mbpp", "data": str(tasks), "split": "test", "source": "references"},
               "sandbox": "bwrap", "n": 2, "tasks": 4, "pass_at_k": {"pass@1": 0.25, "pass@2": 0.5},
               "not_reported": {"pass@5": "needs n >= 5"}, "verdicts": {"passed": 2, "failed": 2}, "per_task": {}}
    (folder / "hostile.summary.json").write_text(json.dumps(summary))
    return results


@pytest.fixture(scope="module")
def mbpp_code_page(mbpp_results) -> Path:
    return viz(str(mbpp_results))  # default: beside the results


@pytest.fixture(scope="module")
def hostile_code_page(hostile_results, pages) -> Path:
    return viz(str(hostile_results), "--out", str(pages / "hostile.html"))


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


@pytest.mark.cli
def test_a_bf16_runs_page_shows_the_answers_hrm_eval_scores(sudoku4, tmp_path):
    """The page runs the model in the run's own precision, as its evaluations and `hrm eval` do; drawn in
    fp32, some cards showed answers the run never gave."""
    run = train(sudoku4, tmp_path, "bf16", "--config", "quickstart_sudoku4", *TINY_MODEL, "train.steps=30",
                "train.precision=bf16", "train.device=cpu")
    hrm_here("eval", "--checkpoint", str(run / "final"), "--data", str(sudoku4), "--device", "cpu")
    scored = np.load(run / "final" / f"eval-{sudoku4.name}-test" / "predictions.npz")["predictions"]
    data = page_data(viz(str(run / "final"), "--dataset", str(sudoku4), "--n", "64", "--device", "cpu",
                         "--out", str(tmp_path / "page.html")))
    assert ["precision", "bf16"] in data["meta"]
    drawn = np.array([[int(c, 36) for c in example["segments"][-1]] for example in data["examples"]])
    np.testing.assert_array_equal(drawn, scored)


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


def test_guesses_page_shows_the_candidates_of_hrm_eval_tta_and_its_vote(sudoku_guesses_page, sudoku_run, sudoku4):
    import torch

    from hrmkit.loading import load_checkpoint
    from hrmkit.puzzles.guesses import vote_over_guesses
    data = page_data(sudoku_guesses_page)
    split = load_split(sudoku4, "test")
    from hrmkit.train.speed_settings import autocast_for, resolve_precision
    model, cfg = load_checkpoint(sudoku_run)  # what hrm viz draws: best-model/, else final/
    cpu = torch.device("cpu")
    precision = resolve_precision(cfg.train.precision, cpu)  # the run's, as hrm eval --tta runs it
    evaluated = vote_over_guesses([model], split, "sudoku", 4, 64, cpu,
                                  autocast=lambda: autocast_for(precision, cpu))["predictions"]
    labels = np.asarray(split.sets["all"]["labels"])
    for row, example in enumerate(data["examples"]):
        candidates = example["candidates"]
        assert example["guesses"] == 4 and 1 <= example["candidate_count"] <= 4
        assert sum(c["votes"] for c in candidates) == 4 or example["candidate_count"] > len(candidates)
        assert [(c["votes"], c["confidence"]) for c in candidates] == sorted(((c["votes"], c["confidence"]) for c in candidates), reverse=True)
        voted = np.array([int(c, 36) for c in candidates[0]["answer"]])
        assert np.array_equal(voted, evaluated[row])  # the page's vote is hrm eval --tta's
        assert candidates[0]["correct"] == bool((voted == labels[row]).all())


@pytest.mark.cli
def test_viz_tta_refuses_bad_counts_and_arc_runs(sudoku_run, arc_run, tmp_path, capsys):
    from hrmkit.cli import main
    for run, tta, needle in ((sudoku_run, "0", "--tta must be at least 1"), (arc_run, "2", "shows its own votes")):
        assert main(["viz", str(run), "--tta", tta, "--n", "2", "--out", str(tmp_path / "page.html")]) == 2
        err = capsys.readouterr().err
        assert needle in err and len(err.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())


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


@pytest.mark.cli
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


# ----------------------------------------------------------------------------- code-evaluation pages


def test_code_page_of_real_mbpp_references_shows_each_task_with_its_prompt(mbpp_code_page, mbpp_results):
    assert mbpp_code_page == mbpp_results.with_suffix(".html")
    data = page_data(mbpp_code_page)
    assert data["kind"] == "code" and "segments" not in data and len(data["examples"]) == 5
    prompts = {json.loads(line)["task_id"]: json.loads(line)["text"] for line in MBPP.read_text().splitlines()}
    records = [json.loads(line) for line in mbpp_results.read_text().splitlines()]
    for example, record in zip(data["examples"], records):
        assert example["title"] == record["task_id"] and example["solved"]
        assert (example["passed"], example["n"], example["rate"]) == (1, 1, 1.0)
        assert example["prompt"] == prompts[int(record["task_id"].split("/")[1])]
        sample, = example["samples"]
        assert sample["verdict"] == "passed" and sample["completion"] == record["completion"] and "code" not in sample
    assert ["pass@1", "100.0 %"] in data["meta"]


def test_code_page_counts_samples_per_task_and_keeps_every_verdict(hostile_code_page):
    data = page_data(hostile_code_page)
    examples = {example["title"]: example for example in data["examples"]}
    assert [(e["passed"], e["n"], e["solved"]) for e in examples.values()] == [(1, 2, True), (0, 2, False),
                                                                             (1, 2, True), (0, 2, False)]
    assert [s["verdict"] for s in examples["MBPP/14"]["samples"]] == ["killed", "output-limit"]  # sample 2 >= n
    assert [s["verdict"] for s in examples["MBPP/13"]["samples"]] == ["timeout", "passed"]
    assert examples["MBPP/13"]["samples"][1]["code"] == "def f(x):\n    return x"  # sanitised code differs
    assert "code" not in examples["MBPP/13"]["samples"][0]  # ran as it was written
    assert examples["MBPP/12"]["prompt"] == HOSTILE[0] and examples["MBPP/11"]["prompt"] == "Return x."
    meta = dict(map(tuple, data["meta"]))
    assert meta["pass@1"] == "25.0 %" and meta["pass@2"] == "50.0 %" and "needs n >= 5" in meta["pass@5"]


def test_untrusted_code_text_cannot_end_the_data_or_add_markup(hostile_code_page):
    text = hostile_code_page.read_text()
    # The page's own script elements only: the shared ones, the kind's, the viewer, the self-test, errors, data.
    assert text.lower().count("<script") == len(SHARED_SCRIPTS) + 5
    data_text = re.search(r'<script id="viz-data" type="application/json">(.*?)</script>', text, re.S).group(1)
    assert "<" not in data_text and ">" not in data_text and "&" not in data_text
    shown = [sample["completion"] for example in page_data(hostile_code_page)["examples"] for sample in example["samples"]]
    assert all(hostile in shown for hostile in HOSTILE)  # and they come back exactly as written


@pytest.mark.cli
def test_code_page_bad_input_is_one_line_and_exit_2(hostile_results, tmp_path, capsys):
    from hrmkit.cli import main
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(sample_record("T/0", 0, "passed", "x")) + "\n{cut short\n")
    nameless = tmp_path / "nameless.jsonl"
    nameless.write_text(json.dumps({"completion": "x"}) + "\n")
    for args, needle in (([str(tmp_path / "missing.jsonl")], "no such results file"),
                         ([str(broken)], "broken.jsonl:2"),
                         ([str(nameless)], "no task_id"),
                         ([str(hostile_results), "--dataset", str(tmp_path / "gone.jsonl"), "--out",
                           str(tmp_path / "page.html")], "gone.jsonl"),
                         ([str(hostile_results), "--n", "0", "--out", str(tmp_path / "page.html")], "--n")):
        assert main(["viz", *args]) == 2
        err = capsys.readouterr().err
        assert needle in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["broken.jsonl", "nameless.jsonl"]  # no page written


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
def test_guesses_pages_pass_their_self_test_and_it_catches_a_misdrawn_vote(sudoku_guesses_page, maze_guesses_page, tmp_path):
    for page in (sudoku_guesses_page, maze_guesses_page):
        verdict = self_test(page)
        assert verdict["ok"], (page.name, verdict)
    unframed = tmp_path / "unframed.html"  # the vote's answer drawn like any other candidate
    unframed.write_text(sudoku_guesses_page.read_text().replace('(rank === 0 ? " voted" : "")', '""'))
    verdict = self_test(unframed)
    assert not verdict["ok"] and any("voted answer" in failure for failure in verdict["failures"])


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


@needs_chromium
def test_code_pages_pass_their_self_test_and_filter_in_headless_chromium(mbpp_code_page, hostile_code_page, tmp_path):
    verdict = self_test(mbpp_code_page)
    assert verdict["ok"], verdict
    assert verdict["kind"] == "code" and verdict["segments"] == 0
    assert verdict["examples"] == verdict["cards_in_dom"] == 5
    assert verdict["shown_by_filter"] == {"solved": 5, "unsolved": 0, "all": 5}
    # Hostile completions: nothing ran (no console error), nothing became markup, every text shown as written.
    verdict = self_test(hostile_code_page)
    assert verdict["ok"] and not verdict["console_errors"] and not verdict["errors"], verdict
    assert verdict["examples"] == verdict["cards_in_dom"] == 4
    assert verdict["shown_by_filter"] == {"solved": 2, "unsolved": 2, "all": 4}
    shot = screenshot(hostile_code_page, tmp_path / "code.png", width=1000, height=700)
    assert shot.read_bytes().startswith(PNG_MAGIC) and shot.stat().st_size > 5000


@needs_chromium
def test_code_page_self_test_catches_text_rendered_as_markup(hostile_code_page, tmp_path):
    text = hostile_code_page.read_text()
    as_markup = 'VIZ.el("pre", {className: "code", text: text})'
    assert as_markup in text
    unsafe = tmp_path / "unsafe.html"
    unsafe.write_text(text.replace(as_markup, '(function () { var n = VIZ.el("pre", {className: "code"}); '
                                              'n.innerHTML = text; return n; })()'))
    verdict = self_test(unsafe)
    assert not verdict["ok"]
    assert any("became markup" in failure for failure in verdict["failures"])


@pytest.mark.cli
def test_a_code_page_whose_task_file_moved_says_it_has_no_prompts(tmp_path):
    """The page came out without a single prompt, exit 0 and nothing said."""
    if not MBPP.exists():
        pytest.skip(f"MBPP is not at {MBPP_DIR} (set HRM_MBPP_DIR)")
    tasks = tmp_path / "mbpp.jsonl"
    shutil.copy(MBPP, tasks)
    results = tmp_path / "refs.jsonl"
    hrm("eval", "code", "--task", "mbpp", "--data", str(tasks), "--references", "--limit", "2", "--out", str(results))
    tasks.rename(tmp_path / "moved.jsonl")
    shown = hrm("viz", str(results), "--out", str(tmp_path / "page.html"))
    assert "warning: the page shows no prompts" in shown.stderr and "--dataset" in shown.stderr
    assert all(example["prompt"] is None for example in page_data(tmp_path / "page.html")["examples"])
