"""Each way the reference code fails a new user on a CPU machine, pinned as working here."""

import json
import subprocess
import sys

import pytest
import torch
from cli_helpers import TINY_MODEL, final_weights, hrm, hrm_here

from hrmkit.config import ModelConfig
from hrmkit.model.act import ACTModel
from hrmkit.model.losses import act_loss
from hrmkit.train.optimizers import build_optimizer


def test_no_flash_attn_and_no_compiled_optimizer_are_needed():
    code = ("import sys, hrmkit.train.trainer, hrmkit.loading; "
            "bad = [m for m in sys.modules if m.startswith(('flash_attn', 'adam_atan2', 'wandb'))]; "
            "print(bad); sys.exit(1 if bad else 0)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0
    import math

    # The pure-PyTorch AdamATan2 takes the CUDA package's first step: bc1 = 1 - 0.9 = 0.1 scales the step
    # outside atan2 and m = 0.1 * g, sqrt(v) / sqrt(bc2) = |g| inside it, so each weight moves by
    # (lr / 0.1) * atan(0.1) = 0.9967 lr, after the decoupled decay by 1 - lr * weight_decay.
    weight = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
    optimizer = build_optimizer("adam_atan2", [weight], lr=0.1, weight_decay=0.5)
    weight.sum().backward()
    optimizer.step()
    exp_avg, exp_avg_sq = (1 - 0.9) * 1.0, (1 - 0.999) * 1.0**2  # lerps from 0 toward g = 1 and g * g = 1
    expected = 1.0 * (1 - 0.1 * 0.5) - (0.1 / (1 - 0.9)) * math.atan2(exp_avg, math.sqrt(exp_avg_sq) / math.sqrt(1 - 0.999))
    assert weight.tolist() == pytest.approx([expected] * 3, rel=1e-14)


def test_trm_with_hrm_style_halting_trains():
    cfg = ModelConfig(variant="trm", hidden_size=32, num_heads=2, L_layers=1, H_cycles=2, L_cycles=2,
                      halt_max_steps=3, no_ACT_continue=False, vocab_size=6, seq_len=8)
    model = ACTModel(cfg).train()
    batch = {"inputs": torch.randint(0, 6, (4, 8), dtype=torch.int32), "labels": torch.randint(0, 6, (4, 8)),
             "puzzle_identifiers": torch.zeros(4, dtype=torch.int32)}
    carry = model.initial_carry(batch)
    for _ in range(3):
        carry, outputs = model(carry=carry, batch=batch)
        assert "target_q_continue" in outputs
        loss, metrics = act_loss(outputs, carry.current_data["labels"], carry.halted, carry.steps, cfg.loss)
        loss.backward()
        assert "q_continue_loss" in metrics
    assert model.inner.q_head.weight.grad is not None


@pytest.mark.cli
def test_device_is_an_option_and_unknown_devices_are_refused(sudoku4, tmp_path):
    result = hrm_here("train", "--config", "quickstart_sudoku4", f"data.path={sudoku4}", "train.device=tpu", check=False)
    assert result.returncode == 2 and "device" in result.stderr
    if not torch.cuda.is_available():
        result = hrm_here("train", "--config", "quickstart_sudoku4", f"data.path={sudoku4}", f"runs_dir={tmp_path}",
                     "train.device=cuda", check=False)
        assert result.returncode == 2 and "CUDA" in result.stderr


@pytest.mark.parametrize("native_bf16", [False, True])
def test_auto_on_the_cpu_is_eager_bf16_only_where_the_cpu_has_bf16_and_fp32_is_a_flag(sudoku4, tmp_path, monkeypatch,
                                                                                       native_bf16):
    from hrmkit.config import TrainConfig, load_run_config
    from hrmkit.config_base import parse_overrides
    from hrmkit.model.layers import CastedLinear
    from hrmkit.puzzles.task import PuzzleTask
    from hrmkit.train import speed_settings
    from hrmkit.train.trainer import Trainer

    assert TrainConfig().precision == "auto" and TrainConfig().compile == "auto"
    monkeypatch.setattr(speed_settings, "cpu_has_native_bf16", lambda: native_bf16)

    def linear_output_dtypes(precision: str | None) -> set:
        """The dtypes of every linear layer's output in training steps (train.steps=2), in process."""
        settings = [*TINY_MODEL, f"data.path={sudoku4}", f"runs_dir={tmp_path}", f"run_name={precision or 'default'}",
                    "train.steps=2", "train.eval_interval=0", "train.ema=false"]
        if precision is not None:
            settings.append(f"train.precision={precision}")
        trainer = Trainer(load_run_config("quickstart_sudoku4", parse_overrides(settings)), PuzzleTask, log=lambda *_: None)
        seen = set()

        def record(module, inputs, output):
            if module.training:  # the training step, not an evaluation
                seen.add((output.dtype, torch.is_autocast_enabled(output.device.type)))

        linears = [m for m in trainer.model.modules() if isinstance(m, (torch.nn.Linear, CastedLinear))]
        assert linears
        for module in linears:
            module.register_forward_hook(record)
        trainer.train()
        return seen, (tmp_path / (precision or "default") / "config.yaml").read_text()

    seen, saved = linear_output_dtypes(None)  # auto: what ran is written down
    if native_bf16:
        assert seen == {(torch.bfloat16, True)} and "precision: bf16" in saved and "compile: false" in saved
        assert "state_dtype: float32" in saved  # the CPU keeps float32 states under autocast
    else:
        assert seen == {(torch.float32, False)} and "precision: fp32" in saved and "compile: false" in saved
    seen, saved = linear_output_dtypes("fp32")
    assert seen == {(torch.float32, False)} and "precision: fp32" in saved
    seen, saved = linear_output_dtypes("bf16")
    assert seen == {(torch.bfloat16, True)} and "precision: bf16" in saved


@pytest.mark.cli
def test_warmup_and_eval_intervals_count_optimizer_steps(sudoku4, tmp_path):
    hrm("train", "--config", "quickstart_sudoku4", f"data.path={sudoku4}", f"runs_dir={tmp_path}", "run_name=accum",
        "train.steps=4", "train.grad_accum_steps=2", "train.eval_interval=2", "train.lr_warmup_steps=2",
        "train.lr=0.01", "train.lr_min_ratio=1.0", *TINY_MODEL)
    records = [json.loads(line) for line in (tmp_path / "accum" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["kind"] == "eval"] == [2, 4]
    lrs = {r["step"]: r["lr"] for r in records if r["kind"] == "train"}
    assert lrs[1] == pytest.approx(0.005)  # step 1 of 2 warmup steps trains at half the rate, step 2 at the peak
    assert lrs[2] == lrs[4] == pytest.approx(0.01)


@pytest.mark.cli
@pytest.mark.slow
def test_a_compiled_run_saves_checkpoints_without_the_compile_prefix(sudoku4, tmp_path):
    hrm("train", "--config", "quickstart_sudoku4", f"data.path={sudoku4}", f"runs_dir={tmp_path}", "run_name=compiled",
        "train.steps=3", "train.compile=true", "train.checkpoint_interval=3", *TINY_MODEL)
    final = final_weights(tmp_path / "compiled")
    step = torch.load(tmp_path / "compiled" / "checkpoints" / "step_3.pt", weights_only=False)["model"]
    for weights in (final, step):
        assert weights and not any("_orig_mod" in key for key in weights)


def test_auto_on_cuda_means_bf16_states_compiled_with_tf32_and_a_loader_worker_and_an_explicit_choice_stays(monkeypatch):
    """The CUDA resolution, checked without a GPU: only the device type and bf16 support are read."""
    from hrmkit.config import DataConfig, RunConfig, TrainConfig
    from hrmkit.train.speed_settings import resolve_speed_settings

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    switches = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    cuda = torch.device("cuda", 0)
    try:
        torch.backends.cuda.matmul.allow_tf32 = False
        auto = RunConfig()
        resolve_speed_settings(auto, cuda)
        assert (auto.train.precision, auto.train.compile, auto.data.workers, auto.model.state_dtype,
                torch.backends.cuda.matmul.allow_tf32) == ("bf16", True, 1, "autocast", True)
        torch.backends.cuda.matmul.allow_tf32 = False
        exact = RunConfig(train=TrainConfig(precision="fp32", compile=False), data=DataConfig(workers=0),
                          model=ModelConfig(state_dtype="float32"))
        resolve_speed_settings(exact, cuda)
        assert (exact.train.precision, exact.train.compile, exact.data.workers, exact.model.state_dtype,
                torch.backends.cuda.matmul.allow_tf32) == ("fp32", False, 0, "float32", False)
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = switches
    cpu = RunConfig(train=TrainConfig(precision="fp32"))
    resolve_speed_settings(cpu, torch.device("cpu"))
    assert (cpu.train.precision, cpu.train.compile, cpu.data.workers, cpu.model.state_dtype) == ("fp32", False, 0, "float32")
