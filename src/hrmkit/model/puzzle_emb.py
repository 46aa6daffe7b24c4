"""Sparse per-puzzle embeddings and the SignSGD step that trains them.

Puzzle embeddings are huge (ARC: ~1M identifiers × 512) and each batch touches a few rows, so
the table is a buffer outside autograd (as in the reference, where it is saved as
``puzzle_emb.weights``). A training forward copies the touched rows into a leaf tensor that
collects gradients; ``SignSGDSparseEmbedding.step`` applies sign(grad) with decoupled weight
decay to exactly those rows.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

from .layers import trunc_normal_init_


class CastedSparseEmbedding(nn.Module):
    def __init__(self, num_embeddings: int, embedding_dim: int, init_std: float, cast_to: torch.dtype):
        super().__init__()
        self.cast_to = cast_to
        self.register_buffer("weights", trunc_normal_init_(torch.empty(num_embeddings, embedding_dim), std=init_std))
        # (ids, rows-with-grad) of each differentiable forward since the last optimizer step.
        self.pending: list[tuple[torch.Tensor, torch.Tensor]] = []

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        ids = ids.long()
        if not (self.training and torch.is_grad_enabled()):
            return self.weights[ids].to(self.cast_to)
        rows = self.weights[ids].detach().requires_grad_(True)
        self.pending.append((ids, rows))
        return rows.to(self.cast_to)


class SignSGDSparseEmbedding(torch.optim.Optimizer):
    """SignSGD with decoupled weight decay for the rows of a ``CastedSparseEmbedding``.

    Gradients of duplicate ids are summed before taking the sign; under DDP every rank's
    (ids, grads) are all-gathered first so all ranks apply the identical update.
    """

    def __init__(self, embedding: CastedSparseEmbedding, lr: float = 1e-2, weight_decay: float = 0.1):
        # The optimizer "owns" the table buffer so LR schedulers can drive its param group.
        super().__init__([embedding.weights], dict(lr=lr, weight_decay=weight_decay))
        self.embedding = embedding

    @torch.no_grad()
    def step(self, closure=None):
        pending = [(ids, rows.grad) for ids, rows in self.embedding.pending if rows.grad is not None]
        self.embedding.pending.clear()
        if not pending:
            return None
        ids = torch.cat([ids for ids, _ in pending])
        grads = torch.cat([grad for _, grad in pending]).to(self.embedding.weights.dtype)
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            ids, grads = _all_gather_rows(ids, grads)
        unique_ids, inverse = ids.unique(return_inverse=True)
        summed = torch.zeros(unique_ids.numel(), grads.shape[1], dtype=grads.dtype, device=grads.device)
        summed.index_add_(0, inverse, grads)
        group = self.param_groups[0]
        weights = self.embedding.weights
        rows = weights[unique_ids]
        rows.mul_(1.0 - group["lr"] * group["weight_decay"]).add_(torch.sign(summed), alpha=-group["lr"])
        weights[unique_ids] = rows
        return None

    def zero_grad(self, set_to_none: bool = True):
        self.embedding.pending.clear()


def _all_gather_rows(ids: torch.Tensor, grads: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    world = dist.get_world_size()
    all_ids = [torch.empty_like(ids) for _ in range(world)]
    all_grads = [torch.empty_like(grads) for _ in range(world)]
    dist.all_gather(all_ids, ids)
    dist.all_gather(all_grads, grads)
    return torch.cat(all_ids), torch.cat(all_grads)
