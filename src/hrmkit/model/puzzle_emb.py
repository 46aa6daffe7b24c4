"""Sparse per-puzzle embeddings and the SignSGD step that trains them.

Puzzle embeddings are huge (ARC: ~1M identifiers × 512) and each batch touches a few rows, so
the table is a buffer outside autograd (as in the reference, where it is saved as
``puzzle_emb.weights``). A training forward copies the touched rows into a leaf tensor that
collects gradients; ``SignSGDSparseEmbedding.step`` applies sign(grad) with decoupled weight
decay to exactly those rows.
"""

from __future__ import annotations

import torch
from torch import nn

from hrmkit.model.layers import trunc_normal_init_


class CastedSparseEmbedding(nn.Module):
    def __init__(self, num_embeddings: int, embedding_dim: int, init_std: float, cast_to: torch.dtype):
        super().__init__()
        self.cast_to = cast_to
        self.register_buffer("weights", trunc_normal_init_(torch.empty(num_embeddings, embedding_dim), std=init_std))
        # (ids, grad sink) of each training forward since the last optimizer step.
        self.pending: list[tuple[torch.Tensor, torch.Tensor]] = []

    def forward(self, ids: torch.Tensor, grad_sink: torch.Tensor | None = None) -> torch.Tensor:
        """The rows of ``ids``. With a ``grad_sink`` (see ``new_grad_sink``) added to them, their
        gradient collects in ``grad_sink.grad``: the forward makes no leaf tensor of its own, so
        ``torch.compile`` traces it without a graph break."""
        rows = self.weights[ids.long()]
        if grad_sink is not None:
            rows = rows + grad_sink
        return rows.to(self.cast_to)

    def new_grad_sink(self, batch_size: int) -> torch.Tensor:
        """Zeros [batch, dim] that a training forward adds to its rows, made before (outside) the forward."""
        return torch.zeros(batch_size, self.weights.shape[1], device=self.weights.device, requires_grad=True)

    def record(self, ids: torch.Tensor, grad_sink: torch.Tensor) -> None:
        """The ids a training forward looked up with ``grad_sink``: the next ``SignSGDSparseEmbedding.step`` updates them."""
        self.pending.append((ids.long(), grad_sink))


class SignSGDSparseEmbedding(torch.optim.Optimizer):
    """SignSGD with decoupled weight decay for the rows of a ``CastedSparseEmbedding``.

    Gradients of duplicate ids are summed before taking the sign. Under torchrun, ``gather_rows``
    (the trainer passes ``train.collectives.all_gather_rows``) collects every process's (ids, grads)
    first, so all processes apply the identical update; every process calls it at every step, also
    one with no rows of its own, since its peers wait in that collective.
    """

    def __init__(self, embedding: CastedSparseEmbedding, lr: float = 1e-2, weight_decay: float = 0.1,
                 gather_rows=None):
        # The optimizer "owns" the table buffer so LR schedulers can drive its param group.
        super().__init__([embedding.weights], dict(lr=lr, weight_decay=weight_decay))
        self.embedding = embedding
        self.gather_rows = gather_rows

    @torch.no_grad()
    def step(self, closure=None):
        weights = self.embedding.weights
        pending = [(ids, sink.grad) for ids, sink in self.embedding.pending if sink.grad is not None]
        self.embedding.pending.clear()
        ids = torch.cat([ids for ids, _ in pending]) if pending else weights.new_zeros(0, dtype=torch.long)
        grads = (torch.cat([grad for _, grad in pending]) if pending else weights.new_zeros(0, weights.shape[1])).to(weights.dtype)
        if self.gather_rows is not None:
            ids, grads = self.gather_rows(ids, grads)
        if ids.numel() == 0:
            return None
        # Duplicate ids are summed without unique(), whose output size the host would have to read:
        # sort, number the runs of equal ids, sum each run, then give every position its run's update.
        # Positions of one id write the same row, so writing them all is exact.
        order = ids.argsort()
        sorted_ids = ids[order]
        run_starts = torch.ones_like(sorted_ids, dtype=torch.bool)
        run_starts[1:] = sorted_ids[1:] != sorted_ids[:-1]
        run = run_starts.cumsum(0) - 1
        summed = torch.zeros_like(grads).index_add_(0, run, grads[order])
        group = self.param_groups[0]
        rows = weights[sorted_ids].mul_(1.0 - group["lr"] * group["weight_decay"])
        rows.add_(torch.sign(summed[run]), alpha=-group["lr"])
        weights[sorted_ids] = rows
        return None

    def zero_grad(self, set_to_none: bool = True):
        self.embedding.pending.clear()

