from __future__ import annotations

import copy
import math

import pytest
import torch

from hrmkit.train.optim import (
    AdamATan2,
    ReplayScheduler,
    build_loss,
    build_optimizer,
    build_scheduler,
    list_names,
    lr_multiplier,
)


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


def test_adam_atan2_first_step_matches_hand_computation():
    start = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    grad = torch.tensor([0.3, -0.1, 0.0], dtype=torch.float64)
    param = start.clone().requires_grad_(True)
    lr, weight_decay, (beta1, beta2), a, b = 0.1, 0.2, (0.9, 0.95), 1.27, 2.0
    optimizer = AdamATan2([param], lr=lr, betas=(beta1, beta2), weight_decay=weight_decay, a=a, b=b)
    param.grad = grad.clone()
    optimizer.step()

    m_hat = (1 - beta1) * grad / (1 - beta1)
    v_hat = (1 - beta2) * grad**2 / (1 - beta2)
    expected = start * (1 - lr * weight_decay) - lr * a * torch.atan2(m_hat, b * v_hat.sqrt())
    torch.testing.assert_close(param.detach(), expected)


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
    torch.testing.assert_close(param.float(), torch.full((5,), 1 - 0.01 * math.pi / 4), atol=4e-3, rtol=0)


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


@pytest.mark.parametrize("name, kwargs", [("cosine", None), ("poly", {"poly_order": 2.0}), ("rex", None), ("cosine_annealing", None)])
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


def test_pytorch_optimizer_warmup_scheduler_is_wrapped_with_its_step_count():
    optimizer = _fresh_optimizer()
    scheduler = build_scheduler(optimizer, "poly", warmup_steps=2, total_steps=10, min_ratio=0.0)
    assert isinstance(scheduler, ReplayScheduler)
    _lrs_over(optimizer, scheduler, 4)
    assert scheduler.state_dict() == {"step": 4}
    assert scheduler.get_last_lr() == [optimizer.param_groups[0]["lr"]]


def test_unknown_scheduler_suggests_a_close_name():
    with pytest.raises(ValueError, match="did you mean.*'cosine_annealing'"):
        build_scheduler(_fresh_optimizer(), "cosine_anealing", 1, 10, 0.0)
    with pytest.raises(ValueError, match="unknown lr scheduler 'proportion'"):
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
    assert {"adam_atan2", "adamw", "lion"} <= set(names["optimizers"])
    assert {"cosine", "linear", "constant", "rex"} <= set(names["lr_schedulers"])
    assert names["losses"][:2] == ["softmax_cross_entropy", "stablemax_cross_entropy"]
