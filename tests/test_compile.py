"""``train.compile``: the ACT step compiles to one graph, with no graph break, and never recompiles
after its first step (the carry, the puzzle embedding's gradient sink and the accumulation slots
keep every shape and type fixed). Checked on the CPU with dynamo's own counters."""

import pytest
import torch
from cli_helpers import TINY_MODEL
from torch._dynamo.utils import counters

from hrmkit.config import load_run_config
from hrmkit.config_base import parse_overrides
from hrmkit.model.layers import SwiGLU
from hrmkit.puzzles.task import PuzzleTask
from hrmkit.train.trainer import Trainer

# The paper configs' parts at a tiny size: puzzle embedding, adam_atan2, EMA, clipping, accumulation.
VARIANTS = {
    "hrm": ["model.variant=hrm"],
    "trm_att": ["model.variant=trm", "model.mlp_t=false", "model.pos_encodings=rope"],
    "trm_mlp": ["model.variant=trm"],  # the quickstart's token-mixing MLP
}


@pytest.mark.parametrize("state_dtype", ["float32", "autocast"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_the_compiled_step_is_one_graph_that_never_recompiles(sudoku4, tmp_path, monkeypatch, variant, state_dtype):
    # The SwiGLUs recompute their product in the backward (an autograd.Function) from paper-config sizes
    # on; at this tiny size only when told to, so that the compiled step here is the one a GPU compiles.
    monkeypatch.setattr(SwiGLU, "recompute_min_elements", 0)
    overrides = parse_overrides([f"data.path={sudoku4}", *TINY_MODEL, *VARIANTS[variant], "model.puzzle_emb_ndim=32",
                                 "train.precision=bf16", f"model.state_dtype={state_dtype}",
                                 "train.compile=true", "train.optimizer=adam_atan2", "train.ema=true",
                                 "train.grad_clip=1.0", "train.grad_accum_steps=2", "train.steps=8"])
    cfg = load_run_config("quickstart_sudoku4", overrides)
    cfg.runs_dir, cfg.run_name = str(tmp_path), f"{variant}_{state_dtype}"
    torch._dynamo.reset()
    counters.clear()
    trainer = Trainer(cfg, PuzzleTask, log=lambda *_: None)
    trainer._train_step()  # warm-up: the first segment compiles
    graphs_after_warm_up = counters["stats"]["unique_graphs"]
    for _ in range(5):  # rows halt at different segments, new puzzles enter: the shapes stay
        trainer._train_step()
    assert graphs_after_warm_up == 1
    assert counters["stats"]["unique_graphs"] == graphs_after_warm_up, "the step recompiled after warm-up"
    assert not counters["graph_break"], f"graph breaks: {list(counters['graph_break'])}"


def test_evaluation_runs_the_compiled_model_and_compiles_once(sudoku4, tmp_path):
    """Under train.compile the trainer's evaluations ran the model eager, where the reference evaluates its
    compiled model. Now the evaluation forward is one graph of its own (no_grad, eval mode), compiled at the
    first evaluation and reused by every later one, a partly filled last batch included."""
    overrides = parse_overrides([f"data.path={sudoku4}", *TINY_MODEL, *VARIANTS["hrm"], "train.precision=fp32",
                                 "train.compile=true", "train.steps=4", "train.eval_batch_size=24"])
    cfg = load_run_config("quickstart_sudoku4", overrides)
    cfg.runs_dir, cfg.run_name = str(tmp_path), "eval_compiled"
    torch._dynamo.reset()
    counters.clear()
    trainer = Trainer(cfg, PuzzleTask, log=lambda *_: None)
    trainer._train_step()
    training_graphs = counters["stats"]["unique_graphs"]
    first = trainer._evaluate(None, 0, logged=False)  # 64 examples: batches of 24, 24 and 16 (+ 8 padding rows)
    assert counters["stats"]["unique_graphs"] == training_graphs + 1
    trainer._train_step()
    second = trainer._evaluate(None, 0, logged=False)
    trainer._evaluate(None, 20, logged=False)  # an interim evaluation of the first 20 examples
    assert counters["stats"]["unique_graphs"] == training_graphs + 1, "an evaluation recompiled"
    assert not counters["graph_break"], f"graph breaks: {list(counters['graph_break'])}"
    assert first["count"] == second["count"] == 64
