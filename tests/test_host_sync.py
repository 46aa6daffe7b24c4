"""A training step reads nothing back on the host: on a GPU every such read (``.item()``, ``float(t)``,
``.tolist()``, ``.cpu()``, ``nonzero()``, ``unique()``, ``if t:``) makes Python wait for the device. Metrics stay on
the device and are read at log lines only.

On the CPU there is no device to wait for, so the test counts the reads themselves: a run of 6
steps must make exactly the reads a run of 3 steps makes (setup, one log line, the final evaluation
and checkpoint). The one exception is each optimizer's step count, which torch keeps on the CPU by
design (reading it never waits for a GPU).
"""

import collections
import sys

import pytest
import torch
from cli_helpers import TINY_MODEL

from hrmkit.config import load_run_config
from hrmkit.config_base import parse_overrides
from hrmkit.puzzles.task import PuzzleTask
from hrmkit.train.trainer import Trainer

HOST_READS = ("item", "tolist", "__float__", "__int__", "__bool__", "__index__", "cpu", "numpy", "nonzero", "unique",
              "unique_consecutive", "masked_select")

# Every part of the step a default run uses: HRM and TRM cores, the puzzle embedding's SignSGD,
# adam_atan2, clipping, the EMA, gradient accumulation.
VARIANTS = {
    "hrm": ["model.variant=hrm", "train.optimizer=adam_atan2"],
    "trm_att": ["model.variant=trm", "model.mlp_t=false", "model.pos_encodings=rope", "train.optimizer=adamw"],
}


def _reads_of_a_run(sudoku4, tmp_path, monkeypatch, name: str, steps: int, variant: list[str]) -> collections.Counter:
    overrides = parse_overrides([f"data.path={sudoku4}", *TINY_MODEL, *variant, "model.puzzle_emb_ndim=32",
                                 f"train.steps={steps}", f"train.log_steps={steps}", "train.eval_interval=0",
                                 "train.eval_max_examples=16", "train.grad_clip=1.0", "train.ema=true",
                                 "train.grad_accum_steps=2"])
    cfg = load_run_config("quickstart_sudoku4", overrides)
    cfg.runs_dir, cfg.run_name = str(tmp_path), name
    trainer = Trainer(cfg, PuzzleTask, log=lambda *_: None)
    reads: collections.Counter = collections.Counter()

    def is_step_count(tensor) -> bool:
        return any(tensor is state.get("step") for opt in trainer.optimizers for state in opt.state.values())

    def counting(method_name, method):
        def wrapper(self, *args, **kwargs):
            if not is_step_count(self):
                caller = sys._getframe(1)
                reads[(method_name, caller.f_code.co_filename, caller.f_lineno)] += 1
            return method(self, *args, **kwargs)
        return wrapper

    with monkeypatch.context() as patch:
        for method_name in HOST_READS:
            patch.setattr(torch.Tensor, method_name, counting(method_name, getattr(torch.Tensor, method_name)))
        trainer.train()
    return reads


@pytest.mark.parametrize("variant", VARIANTS)
def test_training_steps_read_nothing_back_between_log_lines(sudoku4, tmp_path, monkeypatch, variant):
    short = _reads_of_a_run(sudoku4, tmp_path, monkeypatch, "short", 3, VARIANTS[variant])
    long = _reads_of_a_run(sudoku4, tmp_path, monkeypatch, "long", 6, VARIANTS[variant])
    assert sum(short.values()) > 0  # the counter sees the log line's and the evaluation's reads
    per_step = {site: long[site] - short[site] for site in long | short if long[site] != short[site]}
    assert not per_step, f"host reads that grow with the number of steps: {per_step}"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("variant", VARIANTS)
def test_on_a_gpu_a_training_step_is_queued_without_waiting_for_the_device(sudoku4, tmp_path, variant):
    """Keep the GPU busy with a long spin kernel, then ask for a training step: the host must queue
    the whole step and return while the spin still runs. Any wait for the device (a read, a copy from
    pageable memory, a synchronising call) would only return after the spin had finished."""
    overrides = parse_overrides([f"data.path={sudoku4}", *TINY_MODEL, *VARIANTS[variant], "model.puzzle_emb_ndim=32",
                                 "train.device=cuda", "train.compile=false", "train.steps=10", "train.grad_clip=1.0",
                                 "train.ema=true", "train.grad_accum_steps=2"])
    cfg = load_run_config("quickstart_sudoku4", overrides)
    cfg.runs_dir, cfg.run_name = str(tmp_path), variant
    trainer = Trainer(cfg, PuzzleTask, log=lambda *_: None)
    for _ in range(2):  # warm-up: allocators, cuBLAS handles, pinned-memory pool
        trainer._train_step()
    torch.cuda.synchronize()
    spun = torch.cuda.Event()
    torch.cuda._sleep(2_000_000_000)  # about a second of GPU clock cycles
    spun.record()
    trainer._train_step()
    assert not spun.query(), "the host waited for the GPU during a training step"
    torch.cuda.synchronize()
