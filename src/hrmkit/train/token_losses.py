"""Token losses by name for seq2seq training: the model head's cross-entropies, plain
``cross_entropy``, and any pytorch-optimizer loss run once per row, all as each row's mean
token loss; and the check the config runs on a loss name.

The model's own loss head (``hrmkit.model.losses``) is a separate thing: it is part of the model
and imports nothing of ``train/``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from pytorch_optimizer.loss import LOSS_FUNCTIONS

from hrmkit.model.losses import IGNORE_LABEL_ID, stablemax_cross_entropy
from hrmkit.train.name_lookup import unknown_name_message

# Cross-entropy variants computed inside the model's loss head, not built by build_loss.
MODEL_HEAD_LOSSES = ("softmax_cross_entropy", "stablemax_cross_entropy")
# Plain token cross-entropy for seq2seq (F.cross_entropy; takes label_smoothing and the like).
CROSS_ENTROPY = "cross_entropy"


def _loss_class(name: str) -> type | None:
    key = name.strip().lower().replace("_", "").replace("-", "")
    for candidate in (key, key + "loss"):
        if candidate in LOSS_FUNCTIONS:
            return LOSS_FUNCTIONS[candidate]
    return None


def build_loss(name: str, kwargs: dict | None = None) -> torch.nn.Module:
    """A pytorch-optimizer loss by name (``focal``, ``FocalLoss`` and ``focal_loss`` all work).

    The cross-entropy losses (``softmax_cross_entropy``, ``stablemax_cross_entropy``)
    belong to the model's loss head and are rejected here with a message saying so.
    """
    if name.strip().lower() in MODEL_HEAD_LOSSES:
        raise ValueError(f"loss '{name}' is computed by the model's loss head; set it in the model config")
    loss_class = _loss_class(name)
    if loss_class is None:
        raise ValueError(unknown_name_message("loss", name, LOSS_FUNCTIONS))
    return loss_class(**(kwargs or {}))


def loss_name_problem(name: str) -> str | None:
    """None when ``name`` is a token loss we can build, else why not (for config validation)."""
    if name in (*MODEL_HEAD_LOSSES, CROSS_ENTROPY) or _loss_class(name) is not None:
        return None
    return unknown_name_message("loss", name, [*MODEL_HEAD_LOSSES, CROSS_ENTROPY, *LOSS_FUNCTIONS])


def build_token_loss(name: str, kwargs: dict | None = None) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """A function (logits [rows, T, vocab], labels [rows, T] with -100 ignored) -> each row's mean
    token loss [rows] (0 for a row with no label). Every example weighs the same whatever its
    length, so sums over rows add up exactly across micro-batches and processes.

    pytorch-optimizer's losses come from segmentation and classification, return one scalar and
    disagree on the target they take (class indices or one-hot): they run once per row, and one
    probe on a tiny batch picks the target form that works, or fails with the loss's own complaint.
    """
    kwargs = dict(kwargs or {})
    if name == "stablemax_cross_entropy":
        if kwargs:
            raise ValueError(f"{name} takes no keyword arguments, got {sorted(kwargs)}")
        return lambda logits, labels: _row_means(stablemax_cross_entropy(logits, labels), labels)
    if name in ("softmax_cross_entropy", CROSS_ENTROPY):
        def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            flat = F.cross_entropy(logits.float().flatten(0, -2), labels.long().flatten(), ignore_index=IGNORE_LABEL_ID,
                                   reduction="none", **kwargs)
            return _row_means(flat.view(labels.shape), labels)
        return cross_entropy
    try:
        loss_fn = build_loss(name, kwargs)
    except TypeError as error:
        raise ValueError(f"loss '{name}' could not be built with loss_kwargs {kwargs}: {error}") from None
    to_target = _probe_target_form(name, loss_fn)

    def per_row(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        rows = []
        for row_logits, row_labels in zip(logits, labels):
            valid = row_labels != IGNORE_LABEL_ID
            if not valid.any():
                rows.append(row_logits.sum().float() * 0.0)
                continue
            picked = row_labels[valid].long()
            rows.append(loss_fn(row_logits[valid].float(), to_target(picked, row_logits.shape[-1])).float())
        return torch.stack(rows)

    return per_row


def _row_means(token_losses: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    counts = (labels != IGNORE_LABEL_ID).sum(-1).clamp_min(1)
    return token_losses.sum(-1) / counts


def _probe_target_form(name: str, loss_fn: torch.nn.Module):
    forms = (lambda labels, classes: labels, lambda labels, classes: F.one_hot(labels, classes).float())
    logits, labels = torch.randn(4, 5), torch.tensor([0, 1, 2, 4])
    complaint = ""
    for to_target in forms:
        try:
            value = loss_fn(logits, to_target(labels, 5))
        except (RuntimeError, ValueError, IndexError, TypeError) as error:
            complaint = str(error).splitlines()[0]
            continue
        if value.numel() == 1 and torch.isfinite(value):
            return to_target
        complaint = f"it returned shape {tuple(value.shape)}"
    raise ValueError(f"loss '{name}' does not take (logits [tokens, vocab], targets) for token prediction: {complaint}")
