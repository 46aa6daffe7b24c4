"""``hrm train --dry_run``: one forward and backward pass on random tokens, to check a config
(shapes, memory, loss name) in seconds without touching a dataset."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from .config import RunConfig
from .model.act import ACTModel
from .train.optim import build_optimizer, build_token_loss
from .model.seq2seq import Seq2SeqHRM
from .tasks.puzzle import act_segment_loss
from .tasks.seq2seq import seq2seq_loss

DRY_RUN_BATCH = 4


def _shapes_from_data(cfg: RunConfig) -> None:
    """Fill vocab / length from the dataset when it exists; random tokens need nothing else."""
    root = Path(cfg.data.path) if cfg.data.path else None
    model = cfg.model
    if root is None or (model.vocab_size and model.seq_len):
        return
    if cfg.task == "seq2seq" and (root / "meta.json").exists():
        from .data.text import load_corpus_meta
        meta = load_corpus_meta(root)
        model.vocab_size = model.vocab_size or int(meta["vocab_size"])
        model.seq_len = model.seq_len or int(meta.get("max_seq_len") or 0)
    elif cfg.task == "puzzle" and (root / cfg.data.train_split / "dataset.json").exists():
        from .data.puzzle_format import load_split
        meta = load_split(root, cfg.data.train_split).metadata
        model.vocab_size, model.seq_len = meta.vocab_size, meta.seq_len
        model.num_puzzle_identifiers = meta.num_puzzle_identifiers


def dry_run(cfg: RunConfig) -> dict:
    _shapes_from_data(cfg)
    model_cfg = cfg.model
    if not model_cfg.vocab_size or not model_cfg.seq_len:
        raise ValueError("--dry_run needs model.vocab_size and model.seq_len (or a dataset at data.path to read them from)")
    torch.manual_seed(cfg.train.seed)
    generator = torch.Generator().manual_seed(cfg.train.seed)
    vocab, length = model_cfg.vocab_size, model_cfg.seq_len
    started = time.perf_counter()
    if cfg.task == "seq2seq":
        model = Seq2SeqHRM(model_cfg)
        answer = max(1, length // 2)
        batch = {"encoder_ids": torch.randint(0, vocab, (DRY_RUN_BATCH, length), generator=generator),
                 "encoder_mask": torch.ones(DRY_RUN_BATCH, length, dtype=torch.bool),
                 "decoder_input_ids": torch.randint(0, vocab, (DRY_RUN_BATCH, answer), generator=generator),
                 "decoder_mask": torch.ones(DRY_RUN_BATCH, answer, dtype=torch.bool),
                 "labels": torch.randint(0, vocab, (DRY_RUN_BATCH, answer), generator=generator)}
        loss, _ = seq2seq_loss(model, batch, build_token_loss(model_cfg.loss, model_cfg.loss_kwargs),
                               model_cfg.moe.aux_loss_weight)
    else:
        model_cfg.num_puzzle_identifiers = max(model_cfg.num_puzzle_identifiers, 1)
        model = ACTModel(model_cfg)
        batch = {"inputs": torch.randint(1, vocab, (DRY_RUN_BATCH, length), generator=generator, dtype=torch.int32),
                 "labels": torch.randint(1, vocab, (DRY_RUN_BATCH, length), generator=generator),
                 "puzzle_identifiers": torch.zeros(DRY_RUN_BATCH, dtype=torch.int32)}
        loss, _ = act_segment_loss(model, batch, [None], 0, model_cfg.loss)
    loss = loss / DRY_RUN_BATCH
    loss.backward()
    tc = cfg.train  # build (and step) the optimizer too, so a bad name or kwarg shows up here
    build_optimizer(tc.optimizer, [p for p in model.parameters() if p.requires_grad], lr=tc.lr,
                    weight_decay=tc.weight_decay, betas=(tc.beta1, tc.beta2), kwargs=tc.optimizer_kwargs).step()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    return {"task": cfg.task, "loss": float(loss.detach()), "parameters": sum(p.numel() for p in model.parameters()),
            "parameters_with_grad": sum(g.numel() for g in grads), "batch": DRY_RUN_BATCH,
            "seconds": time.perf_counter() - started}
