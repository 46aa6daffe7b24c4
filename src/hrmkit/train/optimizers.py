"""Optimizers by name: our own (``adamw``, ``adam_atan2``) first, any other name from
pytorch-optimizer, whose optional-package optimizers (bitsandbytes, torchao, ...) fail with an
install hint instead of an import error.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable
from typing import Any

import torch
from pytorch_optimizer import get_supported_optimizers, load_optimizer

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


def build_optimizer(
    name: str,
    params: Iterable[torch.Tensor] | Iterable[dict],
    lr: float,
    weight_decay: float,
    betas: tuple[float, ...] | None = None,
    kwargs: dict | None = None,
) -> torch.optim.Optimizer:
    """An optimizer by (case-insensitive) name: ``adamw``, ``adam_atan2``, or any
    pytorch-optimizer name. ``betas`` is passed only when given; ``kwargs`` last."""
    key = name.strip().lower()
    key = OPTIMIZER_ALIASES.get(key, key)
    if key in ADAM_ATAN2_NAMES:
        optimizer_class: type = AdamATan2
    elif key == "adamw":
        optimizer_class = torch.optim.AdamW
    else:
        optimizer_class = _pytorch_optimizer_class(key)
    options: dict[str, Any] = {"lr": lr}
    # A few optimizers (lbfgs, ...) take no weight decay; leaving out a zero one lets them build.
    if weight_decay or "weight_decay" in keyword_names(optimizer_class):
        options["weight_decay"] = weight_decay
    if betas is not None:
        options["betas"] = tuple(betas)
    options.update(kwargs or {})
    try:
        return optimizer_class(params, **options)
    except TypeError as error:
        raise ValueError(f"cannot build optimizer '{name}': {error}") from None


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
