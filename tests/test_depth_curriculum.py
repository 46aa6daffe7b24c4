"""Training recipes: a recursion-depth curriculum and segment-weighted deep supervision."""

import json

import pytest
import torch
from cli_helpers import TINY_MODEL, hrm_here

from hrmkit.config import load_run_config
from hrmkit.config_base import ConfigError, parse_overrides
from hrmkit.model.core import RecursiveCore, set_recursion_depth
from hrmkit.model.losses import act_loss, segment_weights
from hrmkit.puzzles.task import PuzzleTask
from hrmkit.train.trainer import Trainer

SCHEDULE = "train.depth_schedule=[[0.5,1,1]]"


def test_depth_at_follows_the_stages_by_fraction_of_training():
    cfg = load_run_config("sudoku6", parse_overrides(["train.depth_schedule=[[0.3,1,1],[0.6,2,2]]", "train.steps=100"]))
    assert [cfg.train.depth_at(step) for step in (0, 29, 30, 59, 60, 99)] == [(1, 1), (1, 1), (2, 2), (2, 2), None, None]


@pytest.mark.parametrize("schedule, message", [
    ("[[0.6,1,1],[0.3,2,2]]", "larger than the one before"),
    ("[[1.5,1,1]]", "must be in (0, 1]"),
    ("[[0.5,0,1]]", "must be >= 1"),
])
def test_a_bad_depth_schedule_is_refused(schedule, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_run_config("sudoku6", parse_overrides([f"train.depth_schedule={schedule}"]))


def test_segment_weights_decay_by_segment_and_keep_the_mean_over_all_segments():
    weights = segment_weights(torch.tensor([1, 2, 3, 4]), 0.5, 4)
    # 0.5^0..0.5^3 = 1, 0.5, 0.25, 0.125; their mean is 0.46875.
    torch.testing.assert_close(weights, torch.tensor([1, 0.5, 0.25, 0.125]) / 0.46875)
    assert torch.equal(segment_weights(torch.tensor([1, 3]), 1.0, 4), torch.ones(2))


def test_row_weights_scale_each_rows_token_loss_and_leave_the_q_losses():
    torch.manual_seed(0)
    outputs = {"logits": torch.randn(2, 5, 7), "q_halt_logits": torch.randn(2), "q_continue_logits": torch.randn(2)}
    labels, halted, steps = torch.randint(0, 7, (2, 5)), torch.ones(2, dtype=torch.bool), torch.ones(2, dtype=torch.int32)
    rows = [act_loss({k: v[i:i + 1] for k, v in outputs.items()}, labels[i:i + 1], halted[:1], steps[:1], "softmax_cross_entropy")[1]
            for i in range(2)]
    _, weighted = act_loss(outputs, labels, halted, steps, "softmax_cross_entropy", torch.tensor([2.0, 0.0]))
    torch.testing.assert_close(weighted["lm_loss"], 2 * rows[0]["lm_loss"])
    torch.testing.assert_close(weighted["q_halt_loss"], rows[0]["q_halt_loss"] + rows[1]["q_halt_loss"])


def _tiny_config(sudoku4, runs, *overrides):
    return load_run_config("quickstart_sudoku4", parse_overrides([
        f"data.path={sudoku4}", f"runs_dir={runs}", "run_name=depth", "train.steps=4", "train.eval_interval=0",
        "train.checkpoint_interval=2", *TINY_MODEL, "model.H_cycles=2", "model.L_cycles=3", *overrides]))


def test_training_runs_shallower_early_and_evaluation_runs_the_full_depth(sudoku4, tmp_path):
    trainer = Trainer(_tiny_config(sudoku4, tmp_path, SCHEDULE), PuzzleTask, log=lambda *_: None)
    core = next(m for m in trainer.model.modules() if isinstance(m, RecursiveCore))
    calls, per_segment = [0], []
    level = core.L_level
    level.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    trainer.model.register_forward_pre_hook(lambda *_: calls.__setitem__(0, 0))  # one ACT segment per call
    trainer.model.register_forward_hook(lambda module, *_: per_segment.append((module.training, calls[0])))
    trainer.train()
    # TRM runs H_cycles * (L_cycles + 1) net calls a segment: 1 * 2 at depth (1, 1), 2 * 4 at (2, 3).
    training = [count for is_training, count in per_segment if is_training]
    evaluation = {count for is_training, count in per_segment if not is_training}
    assert training == [2, 2, 8, 8] and evaluation == {8}
    lines = [json.loads(line) for line in (tmp_path / "depth" / "metrics.jsonl").read_text().splitlines()]
    assert [(r["H_cycles"], r["L_cycles"]) for r in lines if r["kind"] == "train"] == [(1, 1), (1, 1), (2, 3), (2, 3)]


def test_set_recursion_depth_reaches_every_core_and_none_restores_the_config(sudoku4, tmp_path):
    trainer = Trainer(_tiny_config(sudoku4, tmp_path), PuzzleTask, log=lambda *_: None)
    cores = [m for m in trainer.model.modules() if isinstance(m, RecursiveCore)]
    set_recursion_depth(trainer.model, (1, 2))
    assert cores and all(core.cycles() == (1, 2) for core in cores)
    set_recursion_depth(trainer.model, None)
    assert all(core.cycles() == (2, 3) for core in cores)


@pytest.mark.cli
def test_a_resumed_curriculum_run_matches_an_uninterrupted_one(sudoku4, tmp_path):
    args = ["--config", "quickstart_sudoku4", f"data.path={sudoku4}", f"runs_dir={tmp_path}", "train.eval_interval=0",
            "train.checkpoint_interval=2", *TINY_MODEL, SCHEDULE, "train.segment_loss_decay=0.7",
            "train.lr_warmup_steps=0"]
    hrm_here("train", *args, "run_name=straight", "train.steps=4")
    hrm_here("train", *args, "run_name=resumed", "train.steps=4", "train.checkpoint_interval=2")
    resumed = tmp_path / "resumed"
    for name in ("step_4.pt", "step_4.yaml"):
        (resumed / "checkpoints" / name).unlink()
    hrm_here("train", *args, "run_name=resumed", "train.steps=4")

    def losses(run):
        return [(r["step"], r["lm_loss"], r["H_cycles"]) for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
                if r["kind"] == "train"]
    assert losses(resumed) == losses(tmp_path / "straight")
    assert [depth for _, _, depth in losses(resumed)] == [1, 1, 2, 2]
