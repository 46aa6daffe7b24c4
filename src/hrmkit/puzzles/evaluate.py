"""Puzzle evaluation: every example runs all ``halt_max_steps`` segments (as the reference).

Reported: exact accuracy (every labelled cell right) and token accuracy at the last segment, the
same two at the segment where the Q head would have halted, and the mean of that halting step.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from hrmkit.model.losses import IGNORE_LABEL_ID
from hrmkit.puzzles.batches import eval_batches
from hrmkit.puzzles.format import PuzzleSplit


@torch.no_grad()
def evaluate_puzzles(model, split: PuzzleSplit, batch_size: int, device: torch.device,
                     autocast=contextlib.nullcontext, max_examples: int = 0, keep_predictions: bool = False,
                     rank: int = 0, world_size: int = 1) -> dict:
    """Returns metric *sums* plus ``count`` (callers reduce across processes, then divide);
    with ``keep_predictions``, also per-example arrays under ``predictions``: the final segment's
    ``predictions``, ``exact``, ``halt_step``, ``q_halt`` (sigmoid of the final segment's q_halt
    logit, the confidence ARC voting ranks by) and the rows' ``puzzle_identifiers``."""
    was_training = model.training
    model.eval()
    halt_on_q_alone = model.config.halts_on_q_halt_alone
    sums = {name: 0.0 for name in ("count", "exact_accuracy", "accuracy", "halted_exact_accuracy", "halted_accuracy", "steps")}
    kept: dict[str, list[np.ndarray]] = {"predictions": [], "exact": [], "halt_step": [], "q_halt": [],
                                         "puzzle_identifiers": []}
    for _set_name, batch, num_valid in eval_batches(split, batch_size, rank=rank, world_size=world_size,
                                                    max_examples=max_examples):
        batch = {k: v.to(device) for k, v in batch.items()}
        carry = model.initial_carry(batch)
        batch_len = batch["labels"].shape[0]
        halt_step = torch.full((batch_len,), model.config.halt_max_steps, device=device)
        halted_preds = None
        for step in range(1, model.config.halt_max_steps + 1):
            with autocast():
                carry, outputs = model(carry=carry, batch=batch)
            preds = outputs["logits"].argmax(-1)
            q_halt = outputs["q_halt_logits"]
            wants_halt = q_halt > 0 if halt_on_q_alone else q_halt > outputs["q_continue_logits"]
            newly = wants_halt & (halt_step == model.config.halt_max_steps) & (step < model.config.halt_max_steps)
            halt_step = torch.where(newly, step, halt_step)
            halted_preds = preds.clone() if halted_preds is None else halted_preds
            halted_preds = torch.where((halt_step >= step).unsqueeze(-1), preds, halted_preds)
        labels = batch["labels"]
        valid_rows = torch.arange(batch_len, device=device) < num_valid
        final = _row_scores(preds, labels, valid_rows)
        at_halt = _row_scores(halted_preds, labels, valid_rows)
        sums["count"] += float(final["counted"].sum())
        sums["exact_accuracy"] += float(final["exact"].sum())
        sums["accuracy"] += float(final["token_accuracy"].sum())
        sums["halted_exact_accuracy"] += float(at_halt["exact"].sum())
        sums["halted_accuracy"] += float(at_halt["token_accuracy"].sum())
        sums["steps"] += float(torch.where(final["counted"], halt_step, 0).sum())
        if keep_predictions:
            # Token ids fit a byte for every puzzle family (ARC-1 keeps millions of 900-token rows).
            kept["predictions"].append(preds[:num_valid].cpu().numpy().astype(np.uint8 if model.config.vocab_size <= 256 else np.int32))
            kept["exact"].append(final["exact"][:num_valid].cpu().numpy())
            kept["halt_step"].append(halt_step[:num_valid].cpu().numpy().astype(np.int32))
            kept["q_halt"].append(torch.sigmoid(q_halt[:num_valid].float()).cpu().numpy())
            kept["puzzle_identifiers"].append(batch["puzzle_identifiers"][:num_valid].cpu().numpy().astype(np.int32))
    model.train(was_training)
    if keep_predictions:
        sums["predictions"] = {k: np.concatenate(v) if v else np.zeros(0) for k, v in kept.items()}
    return sums


def _row_scores(preds: torch.Tensor, labels: torch.Tensor, valid_rows: torch.Tensor) -> dict[str, torch.Tensor]:
    mask = labels != IGNORE_LABEL_ID
    counts = mask.sum(-1)
    counted = valid_rows & (counts > 0)
    correct = (mask & (preds == labels)).sum(-1)
    return {
        "counted": counted,
        "exact": counted & (correct == counts),
        "token_accuracy": torch.where(counted, correct.float() / counts.clamp_min(1), 0.0),
    }
