from __future__ import annotations

import copy
import importlib.util
import inspect
import io
import math
from pathlib import Path

import pytest
import torch
from pytorch_optimizer import Adan, get_supported_optimizers

from hrmkit.train.adam_atan2 import AdamATan2
from hrmkit.train.known_names import list_names
from hrmkit.train.lr_schedule import ReplayScheduler, build_scheduler, lr_multiplier, pytorch_lr_scheduler_names
from hrmkit.train.optimizers import build_optimizer
from hrmkit.train.token_losses import build_loss


def _quadratic_loss(param: torch.Tensor) -> torch.Tensor:
    return ((param - 3.0) ** 2).sum()


def _train(optimizer: torch.optim.Optimizer, param: torch.Tensor, steps: int) -> None:
    for _ in range(steps):
        optimizer.zero_grad()
        _quadratic_loss(param).backward()
        optimizer.step()


def test_adam_atan2_decreases_a_quadratic():
    param = torch.zeros(4, requires_grad=True)
    optimizer = AdamATan2([param], lr=0.05, weight_decay=0.0)
    before = _quadratic_loss(param).item()
    _train(optimizer, param, 100)
    assert _quadratic_loss(param).item() < 0.05 * before


def _bf16(x: float) -> float:
    return torch.tensor(x, dtype=torch.bfloat16).item()


def _kernel_reference(start, grads, lr, betas, weight_decay, a=1.0, b=1.0, store=float):
    """adam-atan2 0.0.3's CUDA kernel (csrc/adam_atan2.cu), one scalar, in Python floats.

    Returns (param, exp_avg, exp_avg_sq) after each step; ``store`` rounds what the kernel
    writes back to memory (the parameter's dtype). ``a``/``b`` scale the step/denominator.
    """
    beta1, beta2 = betas
    param, exp_avg, exp_avg_sq, history = start, 0.0, 0.0, []
    for t, grad in enumerate(grads, start=1):
        bias_correction1, bias_correction2 = 1 - beta1**t, 1 - beta2**t
        param = param * (1 - lr * weight_decay)
        exp_avg = exp_avg + (1 - beta1) * (grad - exp_avg)  # lerp(exp_avg, grad, 1 - beta1)
        exp_avg_sq = exp_avg_sq + (1 - beta2) * (grad * grad - exp_avg_sq)  # a lerp too
        denom = b * math.sqrt(exp_avg_sq) / math.sqrt(bias_correction2)
        param = param - (lr * a / bias_correction1) * math.atan2(exp_avg, denom)
        param, exp_avg, exp_avg_sq = store(param), store(exp_avg), store(exp_avg_sq)
        history.append((param, exp_avg, exp_avg_sq))
    return history


# Three steps of gradients per scalar parameter: signs that flip, magnitudes from 1e-3 to 4,
# a zero first gradient (atan2(0, 0) = 0), and a parameter with weight decay in each group.
STARTS = (1.0, -2.0, 0.5, 0.25)
GRADS = ((0.3, -0.1, 0.2), (-2.0, -1.5, 4.0), (1e-3, 1e-3, -1e-3), (0.0, 0.5, 0.0))


def test_adam_atan2_step_1_is_lr_over_bc1_times_atan_of_bc1():
    # Step 1: m = 0.1 g, sqrt(v) / sqrt(bc2) = |g|, so the move is (lr / 0.1) * atan(0.1) per unit sign.
    param = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    optimizer = AdamATan2([param], lr=0.01, weight_decay=0.0)
    param.grad = torch.tensor([3.0, -0.02], dtype=torch.float64)
    optimizer.step()
    expected = (0.01 / 0.1) * math.atan(0.1)  # 0.9967 lr, not lr * pi / 4
    torch.testing.assert_close(param.detach(), torch.tensor([-expected, expected], dtype=torch.float64), rtol=1e-14, atol=0)


@pytest.mark.parametrize("dtype, rtol", [(torch.float64, 1e-13), (torch.float32, 2e-6)])
@pytest.mark.parametrize("a, b", [(1.0, 1.0), (1.27, 2.0)])
def test_adam_atan2_follows_the_cuda_kernel_for_three_steps(dtype, rtol, a, b):
    lr, betas = 0.05, (0.9, 0.95)
    params = [torch.tensor(start, dtype=dtype, requires_grad=True) for start in STARTS]
    groups = [{"params": params[:2], "weight_decay": 0.2}, {"params": params[2:], "weight_decay": 0.0}]
    optimizer = AdamATan2(groups, lr=lr, betas=betas, a=a, b=b)
    for step in range(3):
        for param, grads in zip(params, GRADS):
            param.grad = torch.tensor(grads[step], dtype=dtype)
        optimizer.step()
        for index, (param, start, grads) in enumerate(zip(params, STARTS, GRADS)):
            weight_decay = 0.2 if index < 2 else 0.0
            expected = _kernel_reference(start, grads, lr, betas, weight_decay, a, b)[step]
            state = optimizer.state[param]
            got = (param.item(), state["exp_avg"].item(), state["exp_avg_sq"].item())
            assert got == pytest.approx(expected, rel=rtol, abs=1e-300), f"parameter {index}, step {step + 1}"
            assert state["step"].dtype == torch.float32 and state["step"].item() == step + 1


def test_adam_atan2_bfloat16_runs_in_float32_and_stores_bfloat16():
    # The kernel loads bf16 param, grad and moments, computes in fp32 and stores bf16: the
    # expectation is the kernel formula with every stored value rounded to bf16 between steps.
    lr, betas, weight_decay = 0.01, (0.9, 0.95), 0.1
    starts = (0.25, -0.1875, 0.0625)
    # bf16 values chosen so that no stored value falls within 0.003 bf16 ulp of a rounding tie.
    grads = ((0.69921875, -0.30078125, 0.44921875), (-3.09375, -2.203125, 1.296875),
             (0.0169677734375, 0.0, -0.1298828125))
    params = [torch.tensor(start, dtype=torch.bfloat16, requires_grad=True) for start in starts]
    optimizer = AdamATan2(params, lr=lr, betas=betas, weight_decay=weight_decay)
    for step in range(3):
        for param, param_grads in zip(params, grads):
            param.grad = torch.tensor(param_grads[step], dtype=torch.bfloat16)
        optimizer.step()
        for index, (param, start, param_grads) in enumerate(zip(params, starts, grads)):
            expected = _kernel_reference(start, param_grads, lr, betas, weight_decay, store=_bf16)[step]
            state = optimizer.state[param]
            assert param.dtype == state["exp_avg"].dtype == state["exp_avg_sq"].dtype == torch.bfloat16
            got = (param.item(), state["exp_avg"].item(), state["exp_avg_sq"].item())
            assert got == expected, f"parameter {index}, step {step + 1}"


def test_adam_atan2_weight_decay_is_decoupled_from_the_gradient():
    # A zero gradient gives atan2(0, 0) = 0, so only the decay moves the weights.
    param = torch.full((3,), 2.0, requires_grad=True)
    optimizer = AdamATan2([param], lr=0.1, weight_decay=0.5)
    param.grad = torch.zeros(3)
    optimizer.step()
    torch.testing.assert_close(param.detach(), torch.full((3,), 2.0 * (1 - 0.1 * 0.5)))


def test_adam_atan2_accepts_a_tensor_lr_and_bfloat16_params():
    param = torch.ones(5, dtype=torch.bfloat16, requires_grad=True)
    optimizer = AdamATan2([param], lr=torch.tensor(0.01), weight_decay=0.0)
    param.grad = torch.ones(5, dtype=torch.bfloat16)
    optimizer.step()
    assert param.dtype == torch.bfloat16
    assert optimizer.state[param]["exp_avg"].dtype == torch.bfloat16
    expected = _kernel_reference(1.0, [1.0], 0.01, (0.9, 0.999), 0.0, store=_bf16)[0][0]
    assert expected == 0.98828125  # 1 - 0.9967 * 0.01 rounded to bf16 (1 - 0.01 * pi / 4 rounds to 0.9921875)
    assert param.float().tolist() == [expected] * 5


def test_adam_atan2_state_dict_round_trip_continues_identically():
    param = torch.zeros(4, requires_grad=True)
    optimizer = AdamATan2([param], lr=0.05)
    _train(optimizer, param, 3)
    saved_param, saved_state = param.detach().clone(), copy.deepcopy(optimizer.state_dict())
    _train(optimizer, param, 4)

    resumed = saved_param.clone().requires_grad_(True)
    resumed_optimizer = AdamATan2([resumed], lr=0.05)
    resumed_optimizer.load_state_dict(saved_state)
    _train(resumed_optimizer, resumed, 4)
    torch.testing.assert_close(resumed.detach(), param.detach(), rtol=0, atol=0)


def test_adam_atan2_resumed_from_a_saved_state_dict_stays_on_the_kernel_path():
    lr, betas = 0.05, (0.9, 0.95)
    dtypes = (torch.float64, torch.float64, torch.bfloat16)
    starts, grads = (1.0, -2.0, 0.25), ((0.3, -0.1, 0.2), (-2.0, -1.5, 4.0), (0.69921875, -3.09375, 0.0169677734375))

    def build(values):
        params = [torch.tensor(value, dtype=dtype, requires_grad=True) for value, dtype in zip(values, dtypes)]
        groups = [{"params": params[:2], "weight_decay": 0.2}, {"params": params[2:], "weight_decay": 0.0}]
        return params, AdamATan2(groups, lr=lr, betas=betas)

    def run(params, optimizer, steps):
        for step in steps:
            for param, param_grads in zip(params, grads):
                param.grad = torch.tensor(param_grads[step], dtype=param.dtype)
            optimizer.step()

    params, optimizer = build(starts)
    run(params, optimizer, [0])
    buffer = io.BytesIO()
    torch.save({"params": [p.detach().clone() for p in params], "optimizer": optimizer.state_dict()}, buffer)
    run(params, optimizer, [1, 2])

    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    resumed, resumed_optimizer = build([p.item() for p in saved["params"]])
    resumed_optimizer.load_state_dict(saved["optimizer"])
    state = resumed_optimizer.state[resumed[2]]
    assert state["step"].dtype == torch.float32 and state["step"].item() == 1
    assert state["exp_avg"].dtype == state["exp_avg_sq"].dtype == torch.bfloat16
    run(resumed, resumed_optimizer, [1, 2])

    for index, (param, again) in enumerate(zip(params, resumed)):
        assert again.item() == param.item(), f"parameter {index}"
        for key in ("step", "exp_avg", "exp_avg_sq"):
            assert resumed_optimizer.state[again][key].item() == optimizer.state[param][key].item()
    for index, (param, start, param_grads) in enumerate(zip(params, starts, grads)):
        weight_decay = 0.2 if index < 2 else 0.0
        if param.dtype == torch.bfloat16:
            assert param.item() == _kernel_reference(start, param_grads, lr, betas, weight_decay, store=_bf16)[-1][0]
        else:
            assert param.item() == pytest.approx(_kernel_reference(start, param_grads, lr, betas, weight_decay)[-1][0],
                                                 rel=1e-13)


@pytest.mark.parametrize(
    "name, expected_class",
    [("adamw", "AdamW"), ("AdamW", "AdamW"), ("adam_atan2", "AdamATan2"), ("adamatan2", "AdamATan2"), ("lion", "Lion"), ("Adan", "Adan")],
)
def test_build_optimizer_by_name(name, expected_class):
    param = torch.nn.Parameter(torch.zeros(2))
    optimizer = build_optimizer(name, [param], lr=1e-3, weight_decay=0.1)
    assert type(optimizer).__name__ == expected_class
    assert optimizer.param_groups[0]["lr"] == 1e-3
    assert optimizer.param_groups[0]["weight_decay"] == 0.1


def test_build_optimizer_passes_betas_kwargs_and_param_groups():
    first, second = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    groups = [{"params": [first]}, {"params": [second], "weight_decay": 0.0}]
    optimizer = build_optimizer("adamw", groups, lr=1e-3, weight_decay=0.1, betas=(0.9, 0.95), kwargs={"eps": 1e-6})
    assert [group["weight_decay"] for group in optimizer.param_groups] == [0.1, 0.0]
    assert optimizer.param_groups[0]["betas"] == (0.9, 0.95)
    assert optimizer.param_groups[0]["eps"] == 1e-6


def test_unknown_optimizer_suggests_a_close_name():
    with pytest.raises(ValueError, match=r"unknown optimizer 'lamm' \(did you mean .*'lamb'"):
        build_optimizer("lamm", [torch.nn.Parameter(torch.zeros(1))], lr=1e-3, weight_decay=0.0)


def test_optimizer_needing_a_missing_package_names_it():
    with pytest.raises(ValueError, match="bitsandbytes"):
        build_optimizer("bnb_adamw8bit", [torch.nn.Parameter(torch.zeros(1))], lr=1e-3, weight_decay=0.0)


# Every optimizer name the config accepts: what `hrm info --names` lists and the names it leaves out.
EVERY_OPTIMIZER = sorted({*get_supported_optimizers(), "adam_atan2"})


@pytest.mark.parametrize("name", EVERY_OPTIMIZER)
def test_every_optimizer_takes_a_step_or_is_refused_naming_train_optimizer(name):
    # Built exactly as the trainer builds it (config defaults: weight decay 0.1, betas 0.9/0.95, no
    # kwargs), from a flat list of a small model's parameters, 1-D biases among them.
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    params = [p for p in model.parameters() if p.requires_grad]
    try:
        optimizer = build_optimizer(name, params, lr=1e-3, weight_decay=0.1, betas=(0.9, 0.95), kwargs={})
    except ValueError as error:
        message = str(error)
        assert message.startswith(f"train.optimizer '{name}' ") and "\n" not in message, message
        # A listed name is refused only for what the run can give (optimizer_kwargs, torchrun).
        listed = name in list_names()["optimizers"]
        assert listed != ("pick another" in message), message
        return
    model(torch.randn(5, 3)).pow(2).mean().backward()
    optimizer.step()
    assert all(torch.isfinite(p).all() for p in params)
    assert name in list_names()["optimizers"]


def test_adan_trains_with_the_configs_beta1_and_beta2_and_its_own_third():
    def adan_after_two_steps(optimizer_class_or_name, **options):
        torch.manual_seed(0)
        param = torch.nn.Parameter(torch.randn(6))
        if isinstance(optimizer_class_or_name, str):
            optimizer = build_optimizer(optimizer_class_or_name, [param], lr=0.01, weight_decay=0.1, **options)
        else:
            optimizer = optimizer_class_or_name([param], lr=0.01, weight_decay=0.1, **options)
        for _ in range(2):
            optimizer.zero_grad()
            _quadratic_loss(param).backward()
            optimizer.step()
        return optimizer.param_groups[0]["betas"], param.detach()

    third = inspect.signature(Adan).parameters["betas"].default[2]
    betas, trained = adan_after_two_steps("adan", betas=(0.8, 0.85))
    assert betas == (0.8, 0.85, third)
    assert torch.equal(trained, adan_after_two_steps(Adan, betas=(0.8, 0.85, third))[1])
    # optimizer_kwargs may give all three.
    assert adan_after_two_steps("adan", betas=(0.8, 0.85), kwargs={"betas": (0.7, 0.75, 0.5)})[0] == (0.7, 0.75, 0.5)


def test_an_optimizer_without_betas_builds_and_one_that_fails_to_build_is_one_line():
    param = torch.nn.Parameter(torch.zeros(2))
    assert "betas" not in build_optimizer("sgd", [param], lr=0.1, weight_decay=0.1, betas=(0.9, 0.95)).defaults
    with pytest.raises(ValueError, match=r"^train.optimizer 'adamw' cannot be built: ValueError: Invalid epsilon"):
        build_optimizer("adamw", [param], lr=0.1, weight_decay=0.1, kwargs={"eps": -1.0})
    with pytest.raises(ValueError, match=r"^train.optimizer 'ranger21' needs num_iterations in train.optimizer_kwargs"):
        build_optimizer("ranger21", [param], lr=0.1, weight_decay=0.1)
    build_optimizer("ranger21", [param], lr=0.1, weight_decay=0.1, kwargs={"num_iterations": 10})


@pytest.mark.cli
def test_hrm_train_with_an_optimizer_it_cannot_train_with_is_one_line_before_training(sudoku4, tmp_path):
    from cli_helpers import hrm_here
    result = hrm_here("train", "--config", "quickstart_sudoku4", f"data.path={sudoku4}", f"runs_dir={tmp_path}",
                      "run_name=m", "model.hidden_size=32", "train.steps=1", "train.optimizer=muon", check=False)
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == ["error: train.optimizer 'muon' needs parameter groups marked use_muon, which "
                                          "hrmkit's trainer does not make; pick another (hrm info --names)"]


def test_lr_multiplier_warmup_cosine_and_floor():
    def cosine(step):
        return lr_multiplier(step, warmup_steps=10, total_steps=110, min_ratio=0.1)

    assert cosine(0) == 0.0
    assert cosine(5) == pytest.approx(0.5)
    assert cosine(10) == pytest.approx(1.0)
    assert cosine(60) == pytest.approx(0.1 + 0.9 * 0.5)
    assert cosine(110) == pytest.approx(0.1)
    assert cosine(500) == pytest.approx(0.1)


def test_lr_multiplier_linear_and_constant():
    assert lr_multiplier(60, 10, 110, 0.0, "linear") == pytest.approx(0.5)
    assert lr_multiplier(5, 10, 110, 0.0, "constant") == pytest.approx(0.5)
    assert lr_multiplier(100, 10, 110, 0.0, "constant") == 1.0
    with pytest.raises(ValueError, match="did you mean 'cosine'"):
        lr_multiplier(1, 1, 2, 0.0, "cosin")


def _lrs_over(optimizer, scheduler, steps: int) -> list[float]:
    lrs = []
    for _ in range(steps):
        optimizer.step()
        scheduler.step()
        lrs.append(optimizer.param_groups[0]["lr"])
    return lrs


def _fresh_optimizer(lr: float = 0.1) -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)


@pytest.mark.parametrize("name, kwargs", [("cosine", None), ("rex", None), ("cosine_annealing", None), ("one_cycle", None)])
def test_scheduler_resumes_where_it_left_off(name, kwargs):
    def build(optimizer):
        return build_scheduler(optimizer, name, warmup_steps=3, total_steps=12, min_ratio=0.1, kwargs=kwargs)

    optimizer = _fresh_optimizer()
    scheduler = build(optimizer)
    _lrs_over(optimizer, scheduler, 5)
    saved_optimizer, saved_scheduler = copy.deepcopy(optimizer.state_dict()), copy.deepcopy(scheduler.state_dict())
    expected = _lrs_over(optimizer, scheduler, 6)

    resumed_optimizer = _fresh_optimizer()
    resumed_scheduler = build(resumed_optimizer)
    resumed_optimizer.load_state_dict(saved_optimizer)
    resumed_scheduler.load_state_dict(saved_scheduler)
    assert _lrs_over(resumed_optimizer, resumed_scheduler, 6) == pytest.approx(expected)


def test_our_cosine_scheduler_follows_lr_multiplier():
    optimizer = _fresh_optimizer(lr=2.0)
    scheduler = build_scheduler(optimizer, "cosine", warmup_steps=2, total_steps=10, min_ratio=0.0)
    # The first optimizer step already runs at lr * 1/warmup (the reference counts it as step 1).
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1.0)
    lrs = _lrs_over(optimizer, scheduler, 10)
    assert lrs == pytest.approx([2.0 * lr_multiplier(step, 2, 10, 0.0) for step in range(2, 12)])


def test_a_scheduler_is_wrapped_with_its_step_count():
    optimizer = _fresh_optimizer()
    scheduler = build_scheduler(optimizer, "rex", warmup_steps=2, total_steps=10, min_ratio=0.0)
    assert isinstance(scheduler, ReplayScheduler)
    _lrs_over(optimizer, scheduler, 4)
    assert scheduler.state_dict() == {"step": 4}
    assert scheduler.get_last_lr() == [optimizer.param_groups[0]["lr"]]


def test_poly_is_refused_since_it_raises_the_rate_without_bound():
    from pytorch_optimizer import load_lr_scheduler
    optimizer = _fresh_optimizer(lr=0.1)
    upstream = load_lr_scheduler("poly")(optimizer, poly_order=0.5, t_max=1000, max_lr=0.1, min_lr=0.01)
    for _ in range(1000):
        optimizer.step()
        upstream.step()
    assert optimizer.param_groups[0]["lr"] > 0.1  # above its own max_lr: why it is not offered
    with pytest.raises(ValueError, match="train.lr_schedule 'poly' is not offered: .* without bound"):
        build_scheduler(_fresh_optimizer(), "poly", 2, 10, 0.0)
    assert "poly" not in pytorch_lr_scheduler_names()


def test_unknown_scheduler_suggests_a_close_name():
    with pytest.raises(ValueError, match="did you mean.*'cosine_annealing'"):
        build_scheduler(_fresh_optimizer(), "cosine_anealing", 1, 10, 0.0)
    with pytest.raises(ValueError, match="'proportion' is not offered: it wraps another scheduler to schedule SAM's rho"):
        build_scheduler(_fresh_optimizer(), "proportion", 1, 10, 0.0)


def test_build_loss_resolves_pytorch_optimizer_names():
    assert type(build_loss("focal_loss")).__name__ == "FocalLoss"
    assert type(build_loss("Dice", {"mode": "binary"})).__name__ == "DiceLoss"
    with pytest.raises(ValueError, match="did you mean 'focalloss'"):
        build_loss("focalos")
    with pytest.raises(ValueError, match="loss head"):
        build_loss("stablemax_cross_entropy")


def test_list_names_covers_ours_and_pytorch_optimizer():
    names = list_names()
    assert {"adam_atan2", "adamw", "lion", "sgd", "adan"} <= set(names["optimizers"])
    assert not {"muon", "lomo", "alig", "adahessian"} & set(names["optimizers"])  # refused: see build_optimizer
    assert {"cosine", "linear", "constant", "rex"} <= set(names["lr_schedulers"])
    assert names["losses"][:2] == ["softmax_cross_entropy", "stablemax_cross_entropy"]


@pytest.mark.cli
def test_hrm_info_names_lists_what_the_config_accepts(capsys):
    from hrmkit.cli import main
    assert main(["info", "--names"]) == 0
    lines = dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines())
    assert "adam_atan2" in lines[next(k for k in lines if k.startswith("optimizers"))].split(", ")
    assert "cosine" in lines[next(k for k in lines if k.startswith("lr_schedulers"))].split(", ")
    assert "stablemax_cross_entropy" in lines[next(k for k in lines if k.startswith("losses"))].split(", ")


def _benchmark_module(name: str):
    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The step as it was before it went bucketed, one parameter at a time: the benchmark keeps it to time it.
_PerParameterAdamATan2 = _benchmark_module("adam_atan2_step").PerParameterAdamATan2


_TORCH_ATAN2 = torch.atan2


def _atan2_one_element_at_a_time(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    # On CPU torch.atan2 computes the elements that fill a SIMD vector (SLEEF) and the leftover
    # tail (libm) differently in the last bit, so an element's result depends on where it sits in
    # its tensor. Taken one element at a time, every element goes the same (scalar) way.
    values = [_TORCH_ATAN2(one_y, one_x) for one_y, one_x in zip(y.reshape(-1), x.reshape(-1))]
    return torch.stack(values).view(y.shape) if values else _TORCH_ATAN2(y, x)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs CUDA"))])
def test_adam_atan2_flat_step_matches_the_per_parameter_update_bit_for_bit(device, monkeypatch):
    # Two groups, float32 and bfloat16 in each, and a parameter that misses steps: 4 or 5 buckets a step.
    if device == "cpu":
        # The one position-dependent op (see above): the same on both sides, so the rest is compared.
        monkeypatch.setattr(torch, "atan2", _atan2_one_element_at_a_time)
        # The CPU keeps each parameter in a bucket of its own: share them, to compare the flat path.
        monkeypatch.setattr(AdamATan2, "shares_buckets", staticmethod(lambda device: True))
    shapes = [(), (7,), (5, 9), (3, 5), (2, 3, 4), (19,)]
    dtypes = [torch.float32, torch.float32, torch.float32, torch.bfloat16, torch.bfloat16, torch.float32]
    generator = torch.Generator().manual_seed(0)
    starts = [torch.randn(shape, generator=generator).to(dtype) for shape, dtype in zip(shapes, dtypes)]

    def build(optimizer_class):
        params = [start.clone().to(device).requires_grad_(True) for start in starts]
        groups = [{"params": params[:4], "lr": 0.05, "weight_decay": 0.2},
                  {"params": params[4:], "lr": 0.003, "weight_decay": 0.0, "a": 1.27, "b": 2.0}]
        return params, optimizer_class(groups, betas=(0.9, 0.95))

    flat_params, flat = build(AdamATan2)
    reference_params, reference = build(_PerParameterAdamATan2)
    for step in range(5):
        grads = [torch.randn(shape, generator=generator).to(dtype) * 10.0 ** (index - 2)
                 for index, (shape, dtype) in enumerate(zip(shapes, dtypes))]
        if step == 0:
            grads[0].zero_()  # atan2(0, 0)
        for params in (flat_params, reference_params):
            for index, (param, grad) in enumerate(zip(params, grads)):
                # The 1-d float32 parameter skips steps 1 and 3: its step count falls behind the
                # others' of its group, so it is updated in a bucket of its own.
                param.grad = None if index == 1 and step in (1, 3) else grad.to(device)
        flat.step()
        reference.step()
        for index, (param, expected) in enumerate(zip(flat_params, reference_params)):
            assert torch.equal(param, expected), f"parameter {index}, step {step + 1}"
            state, expected_state = flat.state[param], reference.state[expected]
            assert state["step"].device.type == "cpu" and state["step"].dtype == torch.float32
            for key in ("step", "exp_avg", "exp_avg_sq"):
                assert state[key].dtype == expected_state[key].dtype
                assert torch.equal(state[key], expected_state[key]), f"parameter {index} {key}, step {step + 1}"
    assert flat.state[flat_params[1]]["step"].item() == 3 and flat.state[flat_params[0]]["step"].item() == 5


def _ops_in_a_step(parameter_count: int) -> int:
    """Tensor operations that AdamATan2.step runs for ``parameter_count`` float32 parameters of
    mixed shapes, at the second step; views and reads of the (CPU) step counts aside: neither
    launches a kernel."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        calls = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            step_count_read = func is torch.ops.aten._local_scalar_dense.default and any(
                args[0] is state["step"] for state in optimizer.state.values())
            Count.calls += 0 if func.is_view or step_count_read else 1
            return func(*args, **(kwargs or {}))

    params = [torch.nn.Parameter(torch.randn((index % 3 + 1,) * (index % 3))) for index in range(parameter_count)]
    optimizer = AdamATan2(params, lr=0.01)
    for _ in range(2):
        for param in params:
            param.grad = torch.randn_like(param)
        Count.calls = 0  # the first step also makes the state
        with Count():
            optimizer.step()
    return Count.calls


def test_adam_atan2_step_runs_as_many_ops_for_40_parameters_as_for_4(monkeypatch):
    # Buckets are shared on CUDA, not on the CPU (where launches are cheap): share them here to count.
    monkeypatch.setattr(AdamATan2, "shares_buckets", staticmethod(lambda device: True))
    assert _ops_in_a_step(40) == _ops_in_a_step(4)


def test_the_logged_gradient_norm_is_the_global_norm_in_a_constant_number_of_ops():
    """The trainer takes the gradient norm every step (for the log) even without clipping: it must be the
    norm of all gradients together, and cost the same few operations however many parameters there are."""
    from torch.utils._python_dispatch import TorchDispatchMode

    from hrmkit.train.trainer import _clip

    class Count(TorchDispatchMode):
        calls = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            Count.calls += 1
            return func(*args, **(kwargs or {}))

    counts = []
    for parameter_count in (4, 40):
        model = torch.nn.ParameterList([torch.nn.Parameter(torch.zeros(index % 5 + 1)) for index in range(parameter_count)])
        for index, param in enumerate(model):
            param.grad = torch.arange(param.numel(), dtype=torch.float32) + index
        expected = torch.cat([param.grad for param in model]).norm()
        Count.calls = 0
        with Count():
            norm = _clip(model, 0.0)
        counts.append(Count.calls)
        assert torch.allclose(norm, expected, rtol=1e-6)
    assert counts[0] == counts[1]


@pytest.mark.parametrize(("schedule", "unused"), [
    ("cosine_annealing", "train.lr_warmup_steps 3"),  # CosineAnnealingLR has no warmup
    ("one_cycle", "train.lr_warmup_steps 3 or train.lr_min_ratio 0.1"),  # OneCycleLR: pct_start, final_div_factor
    ("cosine", None),
])
def test_a_run_says_which_schedule_settings_its_scheduler_has_no_option_for(sudoku4, tmp_path, schedule, unused):
    """train.lr_warmup_steps (50 by default) and train.lr_min_ratio did nothing under some schedulers, silently."""
    from hrmkit.config import load_run_config
    from hrmkit.puzzles.task import PuzzleTask
    from hrmkit.train.trainer import Trainer
    cfg = load_run_config("quickstart_sudoku4", {
        "data": {"path": str(sudoku4)}, "runs_dir": str(tmp_path), "model": {"hidden_size": 32},
        "train": {"steps": 4, "lr_schedule": schedule, "lr_warmup_steps": 3, "lr_min_ratio": 0.1, "device": "cpu"}})
    said = []
    Trainer(cfg, PuzzleTask, log=said.append)
    warnings = [line for line in said if "has no option for" in line]
    assert warnings == ([] if unused is None else [f"warning: lr scheduler '{schedule}' has no option for {unused}: not used"])
