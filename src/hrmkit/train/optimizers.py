"""Optimizers by name: our own (``adamw``, ``adam_atan2``) first, any other name from
pytorch-optimizer, whose optional-package optimizers (bitsandbytes, torchao, ...) fail with an
install hint instead of an import error. A name that hrmkit's trainer cannot train with (it needs the
model, a closure, Muon's parameter groups, ...) is refused when built, saying why.
"""

from __future__ import annotations

import importlib.util
import inspect
from collections.abc import Iterable
from typing import Any

import torch
from pytorch_optimizer import get_supported_optimizers, load_optimizer

from hrmkit.train import collectives
from hrmkit.train.adam_atan2 import AdamATan2
from hrmkit.train.name_lookup import keyword_names, unknown_name_message

ADAM_ATAN2_NAMES = ("adam_atan2", "adamatan2", "adam-atan2")
# The training guide's short names for pytorch-optimizer's bitsandbytes optimizers.
OPTIMIZER_ALIASES = {"adamw_8bit": "bnb_adamw8bit", "adam_8bit": "bnb_adam8bit"}
# pytorch-optimizer name prefixes that load an optional package (import name, pip name).
OPTIONAL_OPTIMIZER_PACKAGES = {
    "bnb": [("bitsandbytes", "bitsandbytes")],
    "q_galore": [("bitsandbytes", "bitsandbytes"), ("q_galore_torch", "q-galore-torch")],
    "torchao": [("torchao", "torchao")],
}
# What a few optimizers need that their constructor's signature does not show, and hrmkit's trainer
# (one flat list of parameters, a plain loss.backward() and optimizer.step()) does not give. Found by
# a one-step probe over every name; tests/test_optim.py reruns it, so a new such optimizer shows up there.
# The needs a signature does show (the model, a closure, Muon's groups, a Hessian) are read from it.
UNMET_NEEDS = {
    "alig": "needs a closure that recomputes the loss at each step",
    "bsam": "needs a closure that recomputes the loss at each step",
    "spectralsphere": "takes only 2-D parameters, and hrmkit's models have 1-D ones (the q_head bias)",
}


def build_optimizer(
    name: str,
    params: Iterable[torch.Tensor] | Iterable[dict],
    lr: float,
    weight_decay: float,
    betas: tuple[float, ...] | None = None,
    kwargs: dict | None = None,
) -> torch.optim.Optimizer:
    """An optimizer by (case-insensitive) name: ``adamw``, ``adam_atan2``, or any
    pytorch-optimizer name. ``betas`` is passed only when given and the optimizer takes betas;
    ``kwargs`` last. A ValueError naming train.optimizer when it cannot be built or trained here."""
    key = name.strip().lower()
    key = OPTIMIZER_ALIASES.get(key, key)
    optimizer_class = optimizer_class_for(key)
    kwargs = kwargs or {}
    need = unmet_need(key, optimizer_class)
    if need is not None:
        raise ValueError(f"train.optimizer '{name}' {need}; pick another (hrm info --names)")
    # Needs a run can meet, so the name stays listed: Ranger21's num_iterations, DeMo's process group.
    missing = [arg for arg in _required_args(optimizer_class) if arg not in kwargs]
    if missing:
        raise ValueError(f"train.optimizer '{name}' needs {', '.join(missing)} in train.optimizer_kwargs (no default)")
    if "process_group" in keyword_names(optimizer_class) and not collectives.active():
        raise ValueError(f"train.optimizer '{name}' exchanges gradients itself and needs a torch.distributed "
                         "process group: launch with torchrun")
    options: dict[str, Any] = {"lr": lr}
    # A few optimizers (lbfgs, ...) take no weight decay; leaving out a zero one lets them build.
    if weight_decay or "weight_decay" in keyword_names(optimizer_class):
        options["weight_decay"] = weight_decay
    if betas is not None and "betas" in keyword_names(optimizer_class):
        options["betas"] = _betas_for(optimizer_class, tuple(betas))
    options.update(kwargs)
    try:
        return optimizer_class(params, **options)
    except Exception as error:  # a constructor's own checks raise anything (RuntimeError, KeyError, ...)
        raise ValueError(f"train.optimizer '{name}' cannot be built: {type(error).__name__}: {error}") from None


def optimizer_class_for(key: str) -> type:
    """The class a lower-case optimizer name (aliases resolved) stands for."""
    if key in ADAM_ATAN2_NAMES:
        return AdamATan2
    if key == "adamw":
        return torch.optim.AdamW
    return _pytorch_optimizer_class(key)


def unmet_need(key: str, optimizer_class: type) -> str | None:
    """Why hrmkit's trainer cannot train with this optimizer whatever the config says, or None
    (``hrm info --names`` leaves such names out)."""
    if key in UNMET_NEEDS:
        return UNMET_NEEDS[key]
    signature = inspect.signature(optimizer_class)
    if next(iter(signature.parameters), None) == "model":  # lomo, adalomo, adammini
        return "needs the model itself, not its parameters, which hrmkit's trainer does not pass"
    closure = inspect.signature(optimizer_class.step).parameters.get("closure")
    if closure is not None and closure.default is inspect.Parameter.empty:  # lbfgs
        return "needs a closure that recomputes the loss at each step"
    names = keyword_names(optimizer_class)
    # The Muon family runs AdamW (adamw_lr, adamw_betas) on the groups not marked use_muon and
    # refuses a group with no mark.
    if "adamw_betas" in names:
        return "needs parameter groups marked use_muon, which hrmkit's trainer does not make"
    # A Hutchinson Hessian estimate differentiates the gradients again (adahessian, sophiah).
    if "hessian_distribution" in names:
        return "needs gradients taken with create_graph=True, which hrmkit's trainer does not do"
    return None


def _required_args(optimizer_class: type) -> list[str]:
    """Constructor arguments with no default, besides the parameters (the first)."""
    parameters = list(inspect.signature(optimizer_class).parameters.values())[1:]
    return [p.name for p in parameters
            if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def _betas_for(optimizer_class: type, betas: tuple[float, ...]) -> tuple[float, ...]:
    """The config's betas, followed by the optimizer's own defaults for any further ones (Adan,
    AdEMAMix, CAME, ... take three; two would fail at the first step)."""
    parameter = inspect.signature(optimizer_class).parameters.get("betas")
    default = () if parameter is None or parameter.default is parameter.empty else tuple(parameter.default)
    return betas + default[len(betas):]


def _pytorch_optimizer_class(key: str) -> type:
    for prefix, packages in OPTIONAL_OPTIMIZER_PACKAGES.items():
        if key.startswith(prefix):
            _require_packages(key, packages)
            try:
                return load_optimizer(key)
            except (ImportError, NotImplementedError) as error:
                raise ValueError(f"optimizer '{key}' is unavailable here: {error}") from None
    supported = get_supported_optimizers()
    if key not in supported:
        raise ValueError(unknown_name_message("optimizer", key, [*supported, ADAM_ATAN2_NAMES[0]]))
    return load_optimizer(key)


def _require_packages(key: str, packages: list[tuple[str, str]]) -> None:
    for import_name, pip_name in packages:
        if importlib.util.find_spec(import_name) is None:
            raise ValueError(
                f"optimizer '{key}' needs the {pip_name} package (and a CUDA GPU): "
                f"pip install {pip_name}"
            )


def load_state_keeping_settings(optimizer: torch.optim.Optimizer, state: dict, kwargs: dict | None = None) -> None:
    """Load a checkpoint's optimizer state (moments, step counts) but keep the settings the optimizer was
    built with from the run's config as it is now: the base learning rate (``initial_lr``, which the
    schedule scales), weight decay, betas and any ``train.optimizer_kwargs`` entry. A resumed run with
    another ``train.lr`` runs at it, as its config.yaml says. Other per-group entries (D-Adaptation's
    ``d`` and ``step``, ...) are state and come from the checkpoint."""
    names = {"initial_lr", "weight_decay", "betas", *(kwargs or {})}
    settings = [{name: group[name] for name in names if name in group} for group in optimizer.param_groups]
    optimizer.load_state_dict(state)
    for group, kept in zip(optimizer.param_groups, settings):
        group.update(kept)
