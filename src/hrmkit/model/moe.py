"""Mixture-of-experts feed-forward (top-k routing with capacity), for the HRM-LM encoder.

Each token goes to its ``top_k`` highest-scoring experts, weighted by the router's renormalised
probabilities. An expert takes at most ``capacity = ceil(capacity_factor * tokens * top_k /
num_experts)`` tokens per training batch; first choices are served before second choices, and a token
that finds its expert full gets nothing from it (the block's residual carries it through). In eval mode
every token is served, so a row's output does not depend on the rest of its batch.
The load-balancing loss is the Switch Transformer's: ``num_experts * sum_e f_e * P_e`` with
``f_e`` the share of routed assignments that chose expert e and ``P_e`` its mean router
probability; it is 1 for perfectly even routing and grows as routing collapses. The encoder adds
its layers' losses (as the Switch Transformer does), so a run's logged ``balance_loss`` is the number
of MoE layers for perfectly even routing.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from hrmkit.model.layers import CastedLinear, SwiGLU


class MoEFeedForward(nn.Module):
    def __init__(self, hidden_size: int, num_experts: int, top_k: int, capacity_factor: float,
                 ff_multiplier: float, dropout: float = 0.0):
        super().__init__()
        if not 1 <= top_k <= num_experts:
            raise ValueError(f"top_k must be in [1, {num_experts}], got {top_k}")
        self.num_experts, self.top_k, self.capacity_factor = num_experts, top_k, capacity_factor
        self.router = CastedLinear(hidden_size, num_experts, bias=False)
        self.experts = nn.ModuleList(SwiGLU(hidden_size, ff_multiplier) for _ in range(num_experts))
        self.dropout = nn.Dropout(dropout)

    def capacity(self, num_tokens: int) -> int:
        return max(1, math.ceil(self.capacity_factor * num_tokens * self.top_k / self.num_experts))

    def forward(self, hidden: torch.Tensor, token_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """hidden [batch, seq, dim]; token_mask [batch, seq] (False = padding, never routed).
        Returns (output [batch, seq, dim], load-balancing loss)."""
        shape = hidden.shape
        tokens = hidden.reshape(-1, shape[-1])
        keep = torch.ones(tokens.shape[0], dtype=torch.bool, device=hidden.device) if token_mask is None \
            else token_mask.reshape(-1)
        real = keep.nonzero().squeeze(-1)
        if real.numel() == 0:
            return torch.zeros_like(hidden), hidden.new_zeros((), dtype=torch.float32)
        tokens_real = tokens[real]  # [n, dim]
        probs = torch.softmax(self.router(tokens_real).float(), dim=-1)  # [n, experts]
        weights, experts = probs.topk(self.top_k, dim=-1)  # [n, k]
        weights = weights / weights.sum(-1, keepdim=True)

        # Slot-major order: every token's first choice, then every token's second choice ...
        expert_of = experts.t().reshape(-1)  # [k * n]
        token_of = torch.arange(len(real), device=hidden.device).repeat(self.top_k)
        weight_of = weights.t().reshape(-1)
        one_hot = F.one_hot(expert_of, self.num_experts)  # [k * n, experts]
        position = (one_hot.cumsum(0) * one_hot).sum(-1) - 1  # place in its expert's queue
        # Capacity is a training-time budget. Evaluating with it made a token's output depend on the other rows
        # of its batch, and so on the batch size and the number of processes sharing an evaluation.
        served = position < self.capacity(len(real)) if self.training else torch.ones_like(position, dtype=torch.bool)

        out = torch.zeros_like(tokens_real)
        for index, expert in enumerate(self.experts):
            chosen = (served & (expert_of == index)).nonzero().squeeze(-1)
            if chosen.numel() == 0:
                continue
            rows = token_of[chosen]
            result = expert(tokens_real[rows]) * weight_of[chosen].unsqueeze(-1).to(tokens_real.dtype)
            out.index_add_(0, rows, self.dropout(result).to(out.dtype))
        full = torch.zeros_like(tokens).index_copy(0, real, out)

        share = one_hot.float().mean(0)  # f_e: share of assignments per expert
        mean_prob = probs.mean(0)  # P_e
        balance = self.num_experts * (share * mean_prob).sum()
        return full.view(shape), balance
