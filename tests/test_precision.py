"""The trainer under reduced precision: fp16 steps that overflow, and devices without float64."""

import math

import torch
from cli_helpers import TINY_MODEL
from torch.utils._python_dispatch import TorchDispatchMode

from hrmkit.config import load_run_config
from hrmkit.config_base import parse_overrides
from hrmkit.model import losses
from hrmkit.puzzles.task import PuzzleTask
from hrmkit.train.trainer import Trainer


def _trainer(sudoku4, tmp_path, *extra) -> Trainer:
    overrides = parse_overrides([f"data.path={sudoku4}", "train.steps=3", "model.puzzle_emb_ndim=32", *TINY_MODEL, *extra])
    cfg = load_run_config("quickstart_sudoku4", overrides)
    cfg.runs_dir, cfg.run_name = str(tmp_path), "run"
    return Trainer(cfg, PuzzleTask, log=lambda *_: None)


def test_an_fp16_step_with_non_finite_gradients_changes_no_weight_and_no_puzzle_embedding(sudoku4, tmp_path):
    trainer = _trainer(sudoku4, tmp_path, "train.precision=fp16")
    trainer._train_step()
    table = trainer.model.puzzle_emb.weights
    table_before, params_before = table.clone(), [p.detach().clone() for p in trainer.model.parameters()]
    scale_before = trainer.scaler.get_scale()
    task_loss = trainer.task.train_loss
    trainer.task.train_loss = lambda *args: (lambda loss, metrics: (loss * math.nan, metrics))(*task_loss(*args))
    trainer._train_step()
    assert trainer.scaler.get_scale() < scale_before  # the scaler saw the NaN and skipped the step
    assert torch.equal(table, table_before) and torch.isfinite(table).all()
    assert all(torch.equal(p, before) for p, before in zip(trainer.model.parameters(), params_before))
    trainer.task.train_loss = task_loss
    trainer._train_step()  # training goes on from finite weights
    assert not torch.equal(table, table_before) and torch.isfinite(table).all()


class _NoFloat64(TorchDispatchMode):
    """Fails any operation that makes a float64 tensor, as a device without float64 (MPS) would."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for tensor in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(tensor, torch.Tensor) and tensor.dtype == torch.float64:
                raise AssertionError(f"{func} made a float64 tensor")
        return out


def test_a_device_without_float64_trains_and_evaluates_in_float32(sudoku4, tmp_path, monkeypatch):
    assert losses.widest_float(torch.device("mps")) == torch.float32
    assert losses.widest_float(torch.device("cpu")) == torch.float64
    monkeypatch.setattr(losses, "DEVICES_WITHOUT_FLOAT64", {"cpu"})  # pretend the CPU is such a device
    trainer = _trainer(sudoku4, tmp_path)
    with _NoFloat64():
        metrics = trainer._train_step()
        evaluation = trainer._evaluate_and_keep_best(None, 16)
    assert math.isfinite(metrics["lm_loss"]) and evaluation["count"] == 16


def test_model_state_dtype_autocast_keeps_the_carry_and_the_residual_stream_in_bf16_as_the_reference_forward(
        sudoku4, tmp_path):
    """The reference's bf16 run keeps its states in bf16 (half the bytes); ``float32`` keeps them in
    float32 under the same autocast, and an fp32 run has float32 states whatever the setting. Checked on
    what each block hands on, on the carry between steps, and on a carry resumed from the other setting."""
    cases = (("bf16", "autocast", torch.bfloat16), ("bf16", "float32", torch.float32), ("fp32", "autocast", torch.float32))
    for precision, state_dtype, expected in cases:
        trainer = _trainer(sudoku4, tmp_path / f"{precision}_{state_dtype}", f"train.precision={precision}",
                           f"model.state_dtype={state_dtype}", "model.variant=hrm")
        handed_on = set()
        core = trainer.model.inner
        hooks = [block.register_forward_hook(lambda module, args, output: handed_on.add(output.dtype))
                 for level in (core.H_level, core.L_level) for block in level.layers]
        trainer._train_step()
        trainer._train_step()  # the second step continues the first step's carry
        carry = trainer.task.carries[0].inner_carry
        assert handed_on == {expected}, (precision, state_dtype, handed_on)
        assert (carry.z_H.dtype, carry.z_L.dtype) == (expected, expected), (precision, state_dtype)
        other = torch.float32 if expected == torch.bfloat16 else torch.bfloat16
        carry.z_H, carry.z_L = carry.z_H.to(other), carry.z_L.to(other)  # as a checkpoint of the other setting
        handed_on.clear()
        metrics = trainer._train_step()
        for hook in hooks:
            hook.remove()
        assert handed_on == {expected} and math.isfinite(metrics["lm_loss"]), (precision, state_dtype)
