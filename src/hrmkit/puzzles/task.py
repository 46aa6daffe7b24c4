"""The puzzle task: fixed-length grids in the reference format, trained with ACT.

A task knows its data and its loss; the trainer owns the loop. Here the task also owns the ACT
carries (one per micro-batch slot), because under continuous batching they are part of where
training stands and must be checkpointed with the sampler.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch

from hrmkit.config import RunConfig
from hrmkit.files import missing_eval_split, puzzle_split_names
from hrmkit.model.act import ACTCarry, ACTModel
from hrmkit.model.core import CoreCarry
from hrmkit.model.losses import act_loss, segment_weights
from hrmkit.model.puzzle_emb import SignSGDSparseEmbedding
from hrmkit.puzzles.batches import TrainSampler
from hrmkit.puzzles.evaluate import evaluate_puzzles
from hrmkit.puzzles.format import PuzzleSplit, load_split
from hrmkit.train import collectives
from hrmkit.train.batch_loader import batch_loader_for


class PuzzleTask:
    """Implements ``hrmkit.train.task.Task`` for puzzle datasets (or for ``splits`` given in memory)."""

    evaluates_compiled = True  # evaluation batches are padded to one size

    def __init__(self, cfg: RunConfig, rank: int = 0, world_size: int = 1,
                 splits: tuple[PuzzleSplit, PuzzleSplit | None] | None = None):
        self.cfg = cfg
        self.rank, self.world_size = rank, world_size
        self.train_split, self.eval_split = splits or _load_splits(cfg)
        if cfg.train.global_batch_size % (world_size * cfg.train.grad_accum_steps):
            raise ValueError(f"train.global_batch_size {cfg.train.global_batch_size} must be divisible by "
                             f"processes × grad_accum_steps = {world_size * cfg.train.grad_accum_steps}")
        # The reference's sampler shuffles as many passes at a time as it trains between evaluations.
        sampler = TrainSampler(self.train_split, cfg.train.global_batch_size, seed=cfg.train.seed, rank=rank,
                               world_size=world_size, epochs_per_iter=max(1, cfg.train.eval_interval_epochs))
        self.batches = batch_loader_for(cfg, sampler)
        self.carries: list[ACTCarry | None] = [None] * cfg.train.grad_accum_steps

    def fill_model_config(self) -> None:
        """Copy vocabulary, length and identifier count from the dataset into the model config."""
        meta, model = self.train_split.metadata, self.cfg.model
        for name, value in (("vocab_size", meta.vocab_size), ("seq_len", meta.seq_len),
                            ("num_puzzle_identifiers", meta.num_puzzle_identifiers)):
            current = getattr(model, name)
            if current and current != value:
                raise ValueError(f"model.{name} is {current} but the dataset at {self.cfg.data.path} has {value}")
            setattr(model, name, value)

    def build_model(self) -> ACTModel:
        return ACTModel(self.cfg.model)

    def extra_optimizers(self, model: ACTModel) -> list[torch.optim.Optimizer]:
        """The puzzle-embedding table is a buffer the reference trains with sparse SignSGD, not the main optimizer."""
        if model.puzzle_emb is None:
            return []
        tc = self.cfg.train
        return [SignSGDSparseEmbedding(model.puzzle_emb, lr=tc.puzzle_emb_lr, weight_decay=tc.puzzle_emb_weight_decay,
                                       gather_rows=collectives.all_gather_rows)]

    def before_step(self, model: ACTModel, step: int) -> None:
        pass  # nothing changes with the step count

    def save_assets(self, folder: Path) -> None:
        pass  # the weights file and config.yaml hold everything a puzzle model needs

    @property
    def steps_per_epoch(self) -> float:
        """Optimizer steps for one pass over the training groups: the sampler draws one puzzle per group and
        batches all its examples, so a pass holds total_groups × mean_puzzle_examples rows (the reference's
        count, from dataset.json)."""
        meta = self.train_split.metadata
        return meta.total_groups * meta.mean_puzzle_examples / self.cfg.train.global_batch_size

    @property
    def tokens_per_example(self) -> int:
        return self.train_split.metadata.seq_len

    def next_micro_batches(self) -> list[dict[str, torch.Tensor]]:
        batch = self.batches.next_batch()
        return [dict(zip(batch, parts)) for parts in zip(*(v.chunk(len(self.carries)) for v in batch.values()))]

    def train_loss(self, model: ACTModel, batch: dict, slot: int):
        return act_segment_loss(model, batch, self.carries, slot, self.cfg.model.loss, self.cfg.train.segment_loss_decay)

    def evaluate(self, model: ACTModel, device: torch.device, autocast=contextlib.nullcontext,
                 max_examples: int = 0) -> dict | None:
        if self.eval_split is None:
            return None
        batch_size = self.cfg.train.eval_batch_size or self.cfg.train.global_batch_size
        return evaluate_puzzles(model, self.eval_split, batch_size, device, autocast, max_examples,
                                rank=self.rank, world_size=self.world_size)

    # -- resume ----------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"sampler": self.batches.state_dict(), "carries": [_carry_to_dict(c) for c in self.carries]}

    def load_state_dict(self, state: dict, device: torch.device) -> None:
        self.batches.load_state_dict(state["sampler"])
        carries = state.get("carries", [])
        if len(carries) == len(self.carries):
            self.carries = [_carry_from_dict(c, device) for c in carries]


def act_segment_loss(model: ACTModel, batch: dict, carries: list[ACTCarry | None], slot: int, loss_name: str,
                     segment_loss_decay: float = 1.0):
    """One ACT segment on micro-batch ``slot`` (continuing its carry): (summed loss, metric sums).
    Rows are at different segments under continuous batching: each is weighted by its own (``carry.steps``)."""
    if carries[slot] is None:
        carries[slot] = model.initial_carry(batch)
    table = model.puzzle_emb
    sink = table.new_grad_sink(batch["inputs"].shape[0]) if table is not None else None
    carry, outputs = model(carry=carries[slot], batch=batch, puzzle_grad_sink=sink)
    if table is not None:
        table.record(carry.current_data["puzzle_identifiers"], sink)  # the ids this segment's rows looked up
    carries[slot] = carry
    weights = None if segment_loss_decay == 1.0 else segment_weights(carry.steps, segment_loss_decay,
                                                                     model.config.halt_max_steps)
    return act_loss(outputs, carry.current_data["labels"], carry.halted, carry.steps, loss_name, weights)


def _load_splits(cfg: RunConfig) -> tuple[PuzzleSplit, PuzzleSplit | None]:
    """The train split at ``data.path`` and the evaluation split (none when ``data.eval_split`` is '')."""
    root, name = cfg.data.path, cfg.data.eval_split
    train, available = load_split(root, cfg.data.train_split), puzzle_split_names(root)
    if name and name not in available:
        raise missing_eval_split(root, name, available)
    return train, load_split(root, name) if name else None


def _carry_to_dict(carry: ACTCarry | None) -> dict | None:
    if carry is None:
        return None
    cpu = lambda t: t.detach().cpu()  # noqa: E731  (checkpoints gather these across processes)
    return {"z_H": cpu(carry.inner_carry.z_H), "z_L": cpu(carry.inner_carry.z_L), "steps": cpu(carry.steps),
            "halted": cpu(carry.halted), "current_data": {k: cpu(v) for k, v in carry.current_data.items()},
            "prefetched": None if carry.prefetched is None else tuple(cpu(t) for t in carry.prefetched)}


def _carry_from_dict(state: dict | None, device: torch.device) -> ACTCarry | None:
    if state is None:
        return None
    move = lambda t: t.to(device)  # noqa: E731
    prefetched = state.get("prefetched")
    return ACTCarry(CoreCarry(move(state["z_H"]), move(state["z_L"])), move(state["steps"]), move(state["halted"]),
                    {k: move(v) for k, v in state["current_data"].items()},
                    None if prefetched is None else tuple(move(t) for t in prefetched))
