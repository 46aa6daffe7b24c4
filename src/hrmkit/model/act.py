"""Adaptive computation time around the recursive core, with the reference's call shape:

    carry = model.initial_carry(batch)
    carry, outputs = model(carry=carry, batch=batch)   # outputs: logits, q_halt_logits, q_continue_logits

Training uses continuous batching: each call runs one segment for every row; rows that halt are
replaced by the matching rows of the next ``batch`` at the following call. Evaluation never halts
early: every row runs exactly ``halt_max_steps`` segments.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from hrmkit.config import ModelConfig
from hrmkit.model.core import CoreCarry, RecursiveCore


@dataclass
class ACTCarry:
    inner_carry: CoreCarry
    steps: torch.Tensor  # [batch] int32: segments run on the current example
    halted: torch.Tensor  # [batch] bool: the row takes a new example at the next call
    current_data: dict[str, torch.Tensor]
    # With model.reuse_q_target_forward only: the no-grad part of the next segment as HRM's
    # Q-target forward computed it, reused next call for rows that keep going. It was computed
    # with the weights before the optimizer step, so reusing it approximates the reference.
    prefetched: tuple[torch.Tensor, torch.Tensor] | None = None


def _row_mask(flags: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return flags.view((-1,) + (1,) * (like.ndim - 1))


class ACTModel(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.inner = RecursiveCore(config)

    @property
    def checkpoint_module(self) -> nn.Module:
        """What checkpoints hold: the inner model, keyed as the reference keys it."""
        return self.inner

    @property
    def puzzle_emb(self):
        return getattr(self.inner, "puzzle_emb", None)

    def initial_carry(self, batch: dict) -> ACTCarry:
        batch_size = batch["inputs"].shape[0]
        device = batch["inputs"].device
        return ACTCarry(
            inner_carry=self.inner.empty_carry(batch_size, batch["inputs"].shape[1]),
            steps=torch.zeros(batch_size, dtype=torch.int32, device=device),
            halted=torch.ones(batch_size, dtype=torch.bool, device=device),  # every row takes data at once
            current_data={k: torch.zeros_like(v) for k, v in batch.items()},
        )

    def forward(self, carry: ACTCarry, batch: dict, puzzle_grad_sink: torch.Tensor | None = None) -> tuple[ACTCarry, dict]:
        """One segment for every row. ``puzzle_grad_sink``: where the puzzle embedding's rows collect
        their gradient in training (``CastedSparseEmbedding.new_grad_sink``); without it they are constants."""
        cfg = self.config
        inner_carry = self.inner.reset_carry(carry.halted, carry.inner_carry)
        steps = torch.where(carry.halted, 0, carry.steps)
        data = {k: torch.where(_row_mask(carry.halted, v), batch[k], v) for k, v in carry.current_data.items()}

        x = self.inner.input_embeddings(data["inputs"], data["puzzle_identifiers"], puzzle_grad_sink)
        z_H, z_L = self._warm_state(carry, inner_carry, x)
        z_H, z_L = self.inner.recurse_with_grad(z_H, z_L, x)
        new_inner = CoreCarry(z_H.detach(), z_L.detach())
        q_halt, q_continue = self.inner.q_logits(z_H)
        outputs = {"logits": self.inner.token_logits(z_H), "q_halt_logits": q_halt, "q_continue_logits": q_continue}

        prefetched = None
        with torch.no_grad():
            steps = steps + 1
            is_last_step = steps >= cfg.halt_max_steps
            halted = is_last_step
            if self.training and cfg.halt_max_steps > 1:
                wants_halt = q_halt > 0 if cfg.halts_on_q_halt_alone else q_halt > q_continue
                # Exploration: some rows must run a random minimum number of segments first.
                explore = torch.rand_like(q_halt) < cfg.halt_exploration_prob
                min_steps = explore * torch.randint_like(steps, low=2, high=cfg.halt_max_steps + 1)
                halted = (halted | wants_halt) & (steps >= min_steps)
                if not cfg.halts_on_q_halt_alone:
                    outputs["target_q_continue"], warm = self._q_continue_target(new_inner, x.detach(), is_last_step)
                    prefetched = warm if cfg.reuse_q_target_forward else None
        return ACTCarry(new_inner, steps, halted, data, prefetched), outputs

    def _warm_state(self, carry: ACTCarry, inner_carry: CoreCarry, x: torch.Tensor):
        """The no-grad part of this segment. By default it is computed here, with the current
        weights, as the reference does; with ``reuse_q_target_forward`` rows that continue take
        the prefetched result of the last Q-target forward instead."""
        if carry.prefetched is None or not self.training:
            return self.inner.recurse_without_grad(inner_carry.z_H, inner_carry.z_L, x)
        z_H, z_L = (t.clone() for t in carry.prefetched)
        # The rows that took a new puzzle: their number is data, so nonzero() reads it from the device,
        # this option's one host read per segment (the default path has none).
        fresh = carry.halted.nonzero().squeeze(-1)
        if fresh.numel():
            fresh_H, fresh_L = self.inner.recurse_without_grad(inner_carry.z_H[fresh], inner_carry.z_L[fresh], x[fresh])
            z_H[fresh], z_L[fresh] = fresh_H, fresh_L
        return z_H, z_L

    @torch.no_grad()
    def _q_continue_target(self, new_inner: CoreCarry, x: torch.Tensor, is_last_step: torch.Tensor):
        """Q-learning target from one more segment: sigmoid(max(next q_halt, next q_continue)),
        or the next q_halt alone at the last step."""
        warm = self.inner.recurse_without_grad(new_inner.z_H, new_inner.z_L, x)
        next_z_H, _ = self.inner.recurse_with_grad(*warm, x)
        next_halt, next_continue = self.inner.q_logits(next_z_H)
        target = torch.sigmoid(torch.where(is_last_step, next_halt, torch.maximum(next_halt, next_continue)))
        return target, warm
