"""``hrm train --dry_run``: one real training step on random tokens, to check a config (shapes,
memory, loss and optimizer names) in seconds without a dataset.

It is the trainer's own step on the family's own Task class (``bench.synthetic_task``), at a
batch of four, in a throw-away run folder: what passes here is what ``hrm train`` will run.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import replace
from pathlib import Path

from hrmkit.bench import synthetic_task
from hrmkit.config import RunConfig

DRY_RUN_BATCH = 4


def shapes_from_data(cfg: RunConfig) -> None:
    """Fill vocab / length from the dataset when it exists; random tokens need nothing else."""
    root = Path(cfg.data.path) if cfg.data.path else None
    model = cfg.model
    if root is None or (model.vocab_size and model.seq_len):
        return
    if cfg.task == "seq2seq" and (root / "meta.json").exists():
        from hrmkit.lm.corpus_format import load_corpus_meta
        meta = load_corpus_meta(root)
        model.vocab_size = model.vocab_size or int(meta["vocab_size"])
        model.seq_len = model.seq_len or int(meta.get("max_seq_len") or 0)
    elif cfg.task == "puzzle" and (root / cfg.data.train_split / "dataset.json").exists():
        from hrmkit.puzzles.format import load_split
        meta = load_split(root, cfg.data.train_split).metadata
        # A size given by hand stays (it was replaced: hrm info then counted another model's parameters).
        model.vocab_size, model.seq_len = model.vocab_size or meta.vocab_size, model.seq_len or meta.seq_len
        model.num_puzzle_identifiers = meta.num_puzzle_identifiers


def dry_run(cfg: RunConfig) -> dict:
    from hrmkit.train.metric_window import MetricWindow
    from hrmkit.train.trainer import Trainer
    shapes_from_data(cfg)
    if not cfg.model.vocab_size or not cfg.model.seq_len:
        raise ValueError("--dry_run needs model.vocab_size and model.seq_len (or a dataset at data.path to read them from)")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as runs_dir:
        cfg = replace(cfg, runs_dir=runs_dir, run_name="dry_run",
                      train=replace(cfg.train, global_batch_size=DRY_RUN_BATCH, grad_accum_steps=1, steps=1,
                                    progress=False, logger="none"))
        trainer = Trainer(cfg, synthetic_task(cfg), log=lambda *_: None)
        trained = [p for p in trainer.model.parameters() if p.requires_grad]
        got_gradient: set[int] = set()
        hooks = [p.register_post_accumulate_grad_hook(lambda p: got_gradient.add(id(p))) for p in trained]
        window = MetricWindow(DRY_RUN_BATCH, 0)
        window.add(trainer._train_step())
        metrics = window.flush()
        for hook in hooks:
            hook.remove()
    return {"task": cfg.task, "lm_loss": metrics["lm_loss"], "grad_norm": metrics["grad_norm"],
            "parameters": sum(p.numel() for p in trainer.model.parameters()),
            "parameters_with_grad": sum(p.numel() for p in trained if id(p) in got_gradient), "batch": DRY_RUN_BATCH,
            "seconds": time.perf_counter() - started}
