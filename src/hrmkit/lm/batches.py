"""Batches of sequence-to-sequence examples: padding, the endless resumable training stream
(`BatchStream`, this rank's share of each global batch) and one ordered pass for evaluation."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from hrmkit.lm.corpus_format import CorpusSplit, ListSplit
from hrmkit.model.losses import IGNORE_LABEL_ID
from hrmkit.train.distributed import local_batch_size


def _round_up(length: int, multiple: int | None) -> int:
    if not multiple:
        return length
    return -(-length // multiple) * multiple


def pad_batch(
    examples: Sequence[dict[str, Sequence[int]]], pad_id: int, pad_to_multiple_of: int | None = None
) -> dict[str, torch.Tensor]:
    """Stack examples into right-padded tensors, as long as the longest in the batch.

    Returns `encoder_ids` [B, Te] and `decoder_input_ids` [B, Td] padded with `pad_id`,
    `labels` [B, Td] padded with -100, and the boolean masks `encoder_mask` [B, Te] and
    `decoder_mask` [B, Td] (True = real token). Lengths are at least 1 so every tensor has a
    time axis a model can attend over.
    """
    if not examples:
        raise ValueError("cannot pad an empty batch")
    for row, example in enumerate(examples):
        if len(example["decoder_input_ids"]) != len(example["labels"]):
            raise ValueError(
                f"example {row}: decoder_input_ids has {len(example['decoder_input_ids'])} tokens "
                f"but labels has {len(example['labels'])}; they must match"
            )
    encoder_len = _round_up(max(1, *(len(example["encoder_ids"]) for example in examples)), pad_to_multiple_of)
    decoder_len = _round_up(max(1, *(len(example["labels"]) for example in examples)), pad_to_multiple_of)
    rows = len(examples)
    encoder_ids = np.full((rows, encoder_len), pad_id, dtype=np.int64)
    decoder_input_ids = np.full((rows, decoder_len), pad_id, dtype=np.int64)
    labels = np.full((rows, decoder_len), IGNORE_LABEL_ID, dtype=np.int64)
    encoder_mask = np.zeros((rows, encoder_len), dtype=bool)
    decoder_mask = np.zeros((rows, decoder_len), dtype=bool)
    for row, example in enumerate(examples):
        encoder_length, decoder_length = len(example["encoder_ids"]), len(example["labels"])
        encoder_ids[row, :encoder_length] = example["encoder_ids"]
        decoder_input_ids[row, :decoder_length] = example["decoder_input_ids"]
        labels[row, :decoder_length] = example["labels"]
        encoder_mask[row, :encoder_length] = True
        decoder_mask[row, :decoder_length] = True
    return {
        "encoder_ids": torch.from_numpy(encoder_ids),
        "decoder_input_ids": torch.from_numpy(decoder_input_ids),
        "labels": torch.from_numpy(labels),
        "encoder_mask": torch.from_numpy(encoder_mask),
        "decoder_mask": torch.from_numpy(decoder_mask),
    }


class BatchStream:
    """Endless, resumable training batches over a split; this rank's share of each global batch.

    Epoch `e` visits the examples in a fresh permutation seeded by `seed + e` (or in order
    when `shuffle` is off). Global batches of `batch_size` are cut from it and rank r takes
    rows `[r * local, (r + 1) * local)`. An epoch's incomplete last batch is dropped, unless
    the split is smaller than one batch: then batches run on into the next epoch's order.

    `epoch` is the current epoch and `position` the number of examples of its order already
    used; `step` counts global batches taken. To prepare batches ahead in worker processes,
    wrap it in `hrmkit.train.batch_loader.BatchLoader`.
    """

    def __init__(
        self,
        split: CorpusSplit | ListSplit,
        batch_size: int,
        pad_id: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        shuffle: bool = True,
        pad_to_multiple_of: int | None = None,
    ) -> None:
        self.local_batch_size = local_batch_size(batch_size, rank, world_size)
        if len(split) == 0:
            raise ValueError(f"cannot draw training batches from an empty split ({split!r})")
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        self.split = split
        self.batch_size = batch_size
        self.pad_id = pad_id
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.shuffle = shuffle
        self.pad_to_multiple_of = pad_to_multiple_of
        self.epoch = 0
        self.position = 0
        self.step = 0
        self._order_epoch: int | None = None
        self._order_cache: np.ndarray | None = None

    def _order(self, epoch: int) -> np.ndarray:
        if self._order_epoch != epoch:
            count = len(self.split)
            if self.shuffle:
                self._order_cache = np.random.default_rng(self.seed + epoch).permutation(count)
            else:
                self._order_cache = np.arange(count)
            self._order_epoch = epoch
        return self._order_cache

    def _next_indices(self) -> np.ndarray:
        """This rank's example indices of the next global batch; moves the cursor past it."""
        count, needed = len(self.split), self.batch_size
        epoch, position = self.epoch, self.position
        parts = []
        while needed:
            take = min(needed, count - position)
            parts.append(self._order(epoch)[position : position + take])
            needed -= take
            position += take
            # Move on at the epoch's end, or where only a partial batch is left to drop.
            if position == count or (count >= self.batch_size and position + self.batch_size > count):
                epoch, position = epoch + 1, 0
        self.epoch, self.position = epoch, position
        self.step += 1
        local = slice(self.rank * self.local_batch_size, (self.rank + 1) * self.local_batch_size)
        return np.concatenate(parts)[local]

    def skip_batch(self) -> None:
        """Move past the next global batch without reading its examples."""
        self._next_indices()

    def next_batch(self) -> dict[str, torch.Tensor]:
        """This rank's padded rows of the next global batch (see `pad_batch`)."""
        examples = [self.split[int(index)] for index in self._next_indices()]
        return pad_batch(examples, self.pad_id, self.pad_to_multiple_of)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        while True:
            yield self.next_batch()

    def state_dict(self) -> dict[str, Any]:
        """A small JSON-able position in the global stream."""
        return {
            "seed": self.seed,
            "batch_size": self.batch_size,
            "shuffle": self.shuffle,
            "num_examples": len(self.split),
            "epoch": self.epoch,
            "position": self.position,
            "step": self.step,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume so the following batches equal those of an uninterrupted run.

        The rank and world size may differ from the saved run: the global stream is the same.
        """
        current = self.state_dict()
        for key in ("seed", "batch_size", "shuffle", "num_examples"):
            if state.get(key) != current[key]:
                raise ValueError(
                    f"batch stream state was saved with {key}={state.get(key)!r}, this stream has "
                    f"{key}={current[key]!r}; resuming would give different batches"
                )
        self.epoch, self.position, self.step = int(state["epoch"]), int(state["position"]), int(state["step"])


def eval_batches(
    split: CorpusSplit | ListSplit,
    batch_size: int,
    pad_id: int,
    rank: int = 0,
    world_size: int = 1,
    max_examples: int = 0,
) -> Iterator[tuple[dict[str, torch.Tensor], int]]:
    """One pass in order, each example on exactly one rank: yields (batch, num_valid).

    `batch_size` is global. Rank r takes examples r, r + world_size, r + 2 * world_size, ...
    of the first `max_examples` (0 = all), `batch_size // world_size` per batch, so global
    batch b is examples [b * batch_size, (b + 1) * batch_size) spread over the ranks. Every
    rank yields the same number of batches with the same number of rows, which collective
    operations need: a rank whose share runs out fills its rows after `num_valid` with a
    copy of a real example whose labels are all -100, so losses skip it and no row is all
    padding (an all-masked attention row gives NaN).
    """
    local_size = local_batch_size(batch_size, rank, world_size)
    total = len(split) if max_examples <= 0 else min(len(split), max_examples)
    if total == 0:
        return
    largest_share = -(-total // world_size)  # rank 0's
    for first in range(0, largest_share, local_size):
        rows = min(local_size, largest_share - first)
        indices = [rank + world_size * (first + row) for row in range(rows)]
        valid = [index for index in indices if index < total]
        examples = [split[index] for index in valid]
        filler = examples[0] if examples else split[0]
        blank_labels = {**filler, "labels": [IGNORE_LABEL_ID] * len(filler["labels"])}
        examples += [blank_labels] * (rows - len(valid))
        yield pad_batch(examples, pad_id), len(valid)
