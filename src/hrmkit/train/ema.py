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
    def __init__(self, model: nn.Module, rate: float):
        self.rate = rate
        self.names = [name for name, p in model.named_parameters() if p.requires_grad]
        params = dict(model.named_parameters())
        self.shadow = {name: params[name].detach().clone() for name in self.names}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """shadow = rate * shadow + (1 - rate) * parameter, for every parameter at once."""
        params = dict(model.named_parameters())
        torch._foreach_lerp_(list(self.shadow.values()), [params[name].detach() for name in self.names], 1.0 - self.rate)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.shadow

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Takes the parameter entries of ``state``; a checkpoint of an older hrmkit also averaged
        buffers, which are ignored here."""
        missing = [name for name in self.names if name not in state]
        if missing:
            raise KeyError(f"EMA state lacks {missing[:3]}")
        for name in self.names:
            self.shadow[name].copy_(state[name])

    def averaged_state_dict(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """The model's state dict with the averaged parameters in place of the live ones."""
        return {**model.state_dict(), **self.shadow}

    @contextlib.contextmanager
    def swapped_in(self, model: nn.Module):
        """The model holds the averaged parameters inside the block, its own after it."""
        params = dict(model.named_parameters())
        live = {name: params[name].detach().clone() for name in self.names}
        with torch.no_grad():
            for name in self.names:
                params[name].copy_(self.shadow[name])
        try:
            yield
        finally:
            with torch.no_grad():
                for name in self.names:
                    params[name].copy_(live[name])
