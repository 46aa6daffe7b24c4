"""An exponential moving average of a model's trainable parameters, as TRM keeps one.

Buffers are not averaged: the sparse puzzle-embedding table (a buffer, up to gigabytes for ARC)
and fixed buffers such as ``H_init`` are taken live wherever the average stands in for the model.
The average starts from the weights the run starts with, so it is built after a resume has
loaded them.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn


class ParameterEMA:
    """Bound to one model: its trainable parameters are looked up once, not at every step."""

    def __init__(self, model: nn.Module, rate: float):
        self.model, self.rate = model, rate
        named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
        self.params = [p for _, p in named]
        self.shadow = {name: p.detach().clone() for name, p in named}

    @torch.no_grad()
    def update(self) -> None:
        """shadow = rate * shadow + (1 - rate) * parameter, for every parameter at once."""
        torch._foreach_lerp_(list(self.shadow.values()), self.params, 1.0 - self.rate)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.shadow

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Takes the parameter entries of ``state``; a checkpoint of an older hrmkit also averaged
        buffers, which are ignored here."""
        missing = [name for name in self.shadow if name not in state]
        if missing:
            raise KeyError(f"EMA state lacks {missing[:3]}")
        for name, value in self.shadow.items():
            value.copy_(state[name])

    def averaged_state_dict(self) -> dict[str, torch.Tensor]:
        """The model's state dict with the averaged parameters in place of the live ones."""
        return {**self.model.state_dict(), **self.shadow}

    @contextlib.contextmanager
    def swapped_in(self):
        """The model holds the averaged parameters inside the block, its own after it."""
        live = [p.detach().clone() for p in self.params]
        with torch.no_grad():
            torch._foreach_copy_(self.params, list(self.shadow.values()))
        try:
            yield
        finally:
            with torch.no_grad():
                torch._foreach_copy_(self.params, live)
