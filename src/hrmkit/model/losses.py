"""Token losses (stablemax and softmax cross-entropy) and the ACT loss head.

Metrics are per-batch *sums* (as the reference) so they can be summed across micro-batches and
processes, then divided by ``count``; ``count`` leaves out rows with no valid label.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from hrmkit.model.labels import IGNORE_LABEL_ID
# Device types without float64 tensors (Apple's MPS); losses and metric sums use float32 there.
DEVICES_WITHOUT_FLOAT64 = {"mps"}


def widest_float(device: torch.device) -> torch.dtype:
    """float64, the reference's precision for losses and metric sums, where the device has it."""
    return torch.float32 if device.type in DEVICES_WITHOUT_FLOAT64 else torch.float64


def _stablemax_s(x: torch.Tensor, epsilon: float = 1e-30) -> torch.Tensor:
    # s(x) = x + 1 for x >= 0 and 1 / (1 - x) below: positive, monotone, and linear growth
    # instead of exp, which avoids the "softmax collapse" the stablemax paper describes.
    return torch.where(x < 0, 1 / (1 - x + epsilon), x + 1)


def log_stablemax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    s_x = _stablemax_s(x)
    return torch.log(s_x / s_x.sum(dim=dim, keepdim=True))


def stablemax_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = IGNORE_LABEL_ID) -> torch.Tensor:
    """Per-token loss in float64 (the reference's precision; float32 on MPS); 0 where the label is ignored."""
    logprobs = log_stablemax(logits.to(widest_float(logits.device)), dim=-1)
    valid = labels != ignore_index
    safe_labels = torch.where(valid, labels, 0).long()
    picked = torch.gather(logprobs, -1, safe_labels.unsqueeze(-1)).squeeze(-1)
    return -torch.where(valid, picked, 0)


def softmax_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = IGNORE_LABEL_ID) -> torch.Tensor:
    flat = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels.long().reshape(-1),
                           ignore_index=ignore_index, reduction="none")
    return flat.view(labels.shape)


TOKEN_LOSSES = {"stablemax_cross_entropy": stablemax_cross_entropy, "softmax_cross_entropy": softmax_cross_entropy}


def segment_weights(steps: torch.Tensor, decay: float, max_segments: int) -> torch.Tensor:
    """decay^(t-1) for each row's segment t (``steps``, counted from 1), divided by the mean of
    decay^0 .. decay^(max_segments-1) so that a puzzle run through every segment keeps the weight it has
    without the decay: early segments count more, and the loss keeps its scale."""
    mean = sum(decay ** t for t in range(max_segments)) / max_segments
    return decay ** (steps.float() - 1) / mean


def act_loss(outputs: dict, labels: torch.Tensor, halted: torch.Tensor, steps: torch.Tensor,
             loss_name: str, row_weights: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The reference ACT objective: lm + 0.5 * (BCE(q_halt, exact) + BCE(q_continue, target)).

    ``lm`` is each row's mean token loss, summed over rows (callers divide by the batch size), each
    row's times ``row_weights`` when given (segment_weights); the Q losses, which teach halting, are
    never weighted. Metrics count only rows that halted this step, i.e. finished examples.
    """
    logits = outputs["logits"]
    with torch.no_grad():
        mask = labels != IGNORE_LABEL_ID
        label_counts = mask.sum(-1)
        divisor = label_counts.clamp_min(1).unsqueeze(-1)
        is_correct = mask & (logits.argmax(-1) == labels)
        seq_is_correct = is_correct.sum(-1) == label_counts
        valid = halted & (label_counts > 0)
        metrics = {
            "count": valid.sum(),
            "accuracy": torch.where(valid, (is_correct.float() / divisor).sum(-1), 0).sum(),
            "exact_accuracy": (valid & seq_is_correct).sum(),
            "q_halt_accuracy": (valid & ((outputs["q_halt_logits"] >= 0) == seq_is_correct)).sum(),
            "steps": torch.where(valid, steps, 0).sum(),
        }
    row_lm_loss = (TOKEN_LOSSES[loss_name](logits, labels) / divisor).sum(-1)
    lm_loss = (row_lm_loss * row_weights if row_weights is not None else row_lm_loss).sum()
    q_halt_loss = F.binary_cross_entropy_with_logits(outputs["q_halt_logits"], seq_is_correct.float(), reduction="sum")
    total = lm_loss + 0.5 * q_halt_loss
    metrics.update(lm_loss=lm_loss.detach(), q_halt_loss=q_halt_loss.detach())
    if "target_q_continue" in outputs:
        q_continue_loss = F.binary_cross_entropy_with_logits(outputs["q_continue_logits"], outputs["target_q_continue"], reduction="sum")
        total = total + 0.5 * q_continue_loss
        metrics["q_continue_loss"] = q_continue_loss.detach()
    return total, metrics

