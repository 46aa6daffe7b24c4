"""The sequence-to-sequence task (HRM-LM): prompt -> answer batches from a processed corpus.

Loss: the configured token loss over the answer (labels = answer + EOS), averaged per token,
over the supervised core segments, plus 0.5 * BCE of the Q head against "the whole answer is
right" (when the core runs more than one segment) and the MoE load-balancing loss. Evaluation
reports the validation loss, teacher-forced token and sequence accuracy, and ``exact_accuracy``:
the share of prompts whose *generated* (greedy, KV-cached) answer equals the reference exactly.
The loss and token accuracy are each answer's mean over its tokens, averaged over answers (as
training weighs them), not a mean over all tokens: a short answer's tokens weigh more.
"""

from __future__ import annotations

import contextlib
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from hrmkit.config import ModelConfig, RunConfig
from hrmkit.files import DatasetError, corpus_files, missing_eval_split, puzzle_split_names
from hrmkit.lm.arithmetic import build_arithmetic_corpus
from hrmkit.lm.batches import BatchStream, eval_batches
from hrmkit.lm.corpus_format import CorpusSplit, ListSplit, load_corpus_meta
from hrmkit.lm.generate import SamplingConfig, generate
from hrmkit.lm.tokenizers import load_tokenizer
from hrmkit.model.losses import IGNORE_LABEL_ID
from hrmkit.model.seq2seq import Seq2SeqHRM
from hrmkit.train import collectives
from hrmkit.train.batch_loader import batch_loader_for
from hrmkit.train.token_losses import build_token_loss

ASSET_FILES = ("tokenizer.json", "meta.json")
FIRST_ORDINARY_ID = 4  # random data keeps clear of the special tokens 0..3


@dataclass
class Seq2SeqData:
    """What the seq2seq task reads: the corpus meta (special token ids, vocabulary, lengths), the
    splits, and the corpus folder whose tokenizer.json and meta.json a weights folder copies
    (None for examples made in memory, as benchmarks and dry runs use)."""

    meta: dict
    train: CorpusSplit | ListSplit
    eval: CorpusSplit | ListSplit | None = None
    root: Path | None = None

    @classmethod
    def from_corpus(cls, cfg: RunConfig, rank: int) -> Seq2SeqData:
        """The corpus at ``data.path``; the arithmetic corpus is built there first when missing."""
        root = Path(cfg.data.path)
        if not (root / "meta.json").exists():
            _build_or_fail(cfg, rank)
        meta = load_corpus_meta(root)
        load_tokenizer(root / "tokenizer.json")  # a corpus without a readable tokenizer fails here, not at save time
        max_len = cfg.model.seq_len or meta.get("max_seq_len") or None
        train, name = CorpusSplit(root, cfg.data.train_split, max_len), cfg.data.eval_split
        if name and not _split_exists(root, name):
            raise missing_eval_split(root, name, [file.removesuffix(".jsonl") for file in corpus_files(root)[1:]])
        return cls(meta, train, CorpusSplit(root, name, max_len) if name else None, root)


def random_data(model: ModelConfig, examples: int, seed: int) -> Seq2SeqData:
    """Random prompts of ``model.seq_len`` tokens with answers of half that length, in memory."""
    if not model.vocab_size or not model.seq_len:
        raise ValueError("random data needs model.vocab_size and model.seq_len (set them as overrides)")
    if model.vocab_size <= FIRST_ORDINARY_ID:
        raise ValueError(f"model.vocab_size must be > {FIRST_ORDINARY_ID} (pad, bos, eos, unk come first)")
    generator = torch.Generator().manual_seed(seed)
    answer = max(1, model.seq_len // 2)
    tokens = lambda length: torch.randint(FIRST_ORDINARY_ID, model.vocab_size, (length,), generator=generator).tolist()  # noqa: E731
    rows = [{"encoder_ids": tokens(model.seq_len), "decoder_input_ids": tokens(answer), "labels": tokens(answer)}
            for _ in range(examples)]
    meta = {"pad_id": 0, "bos_id": 1, "eos_id": 2, "unk_id": 3, "vocab_size": model.vocab_size,
            "max_seq_len": model.seq_len}
    return Seq2SeqData(meta, ListSplit(rows), ListSplit(rows))


class Seq2SeqTask:
    """Implements ``hrmkit.train.task.Task`` for HRM-LM on a corpus (or on ``data`` given in memory)."""

    evaluates_compiled = False  # evaluation batches take each batch's longest example, and decoding is eager

    def __init__(self, cfg: RunConfig, rank: int = 0, world_size: int = 1, data: Seq2SeqData | None = None):
        self.cfg = cfg
        self.rank, self.world_size = rank, world_size
        data = data or Seq2SeqData.from_corpus(cfg, rank)
        self.root, self.meta = data.root, data.meta
        self.train_split, self.eval_split = data.train, data.eval
        tc = cfg.train
        if tc.global_batch_size % (world_size * tc.grad_accum_steps):
            raise ValueError(f"train.global_batch_size {tc.global_batch_size} must be divisible by "
                             f"processes × grad_accum_steps = {world_size * tc.grad_accum_steps}")
        self.batches = batch_loader_for(cfg, BatchStream(self.train_split, tc.global_batch_size, self.meta["pad_id"],
                                                        seed=tc.seed, rank=rank, world_size=world_size))
        self.loss_fn = build_token_loss(cfg.model.loss, cfg.model.loss_kwargs)
        self.tokens_per_example = 0  # varies per batch: train_loss reports "tokens" instead

    # -- model -----------------------------------------------------------------------------------
    def fill_model_config(self) -> None:
        model = self.cfg.model
        vocab = int(self.meta["vocab_size"])
        if model.vocab_size and model.vocab_size != vocab:
            raise ValueError(f"model.vocab_size is {model.vocab_size} but {self.root}/meta.json says {vocab}")
        model.vocab_size = vocab
        if not model.seq_len:
            if not self.meta.get("max_seq_len"):
                raise ValueError(f"{self.root}/meta.json has no max_seq_len: set model.seq_len (--max_seq_len)")
            model.seq_len = int(self.meta["max_seq_len"])

    def build_model(self) -> Seq2SeqHRM:
        return Seq2SeqHRM(self.cfg.model)

    @property
    def steps_per_epoch(self) -> int:
        return max(1, math.ceil(len(self.train_split) / self.cfg.train.global_batch_size))

    def extra_optimizers(self, model: Seq2SeqHRM) -> list[torch.optim.Optimizer]:
        return []  # every trained tensor is a parameter of the main optimizer

    def before_step(self, model: Seq2SeqHRM, step: int) -> None:
        model.set_gate_open(step >= self.cfg.model.hrm_gate_warmup_steps)

    def save_assets(self, folder: Path) -> None:
        """tokenizer.json and meta.json beside a checkpoint, so it is self-contained."""
        folder.mkdir(parents=True, exist_ok=True)
        if self.root is None:
            return  # data made in memory has no tokenizer to keep
        for name in ASSET_FILES:
            shutil.copyfile(self.root / name, folder / name)

    # -- training --------------------------------------------------------------------------------
    def next_micro_batches(self) -> list[dict[str, torch.Tensor]]:
        batch = self.batches.next_batch()
        slots = self.cfg.train.grad_accum_steps
        return [dict(zip(batch, parts)) for parts in zip(*(v.chunk(slots) for v in batch.values()))]

    def train_loss(self, model: Seq2SeqHRM, batch: dict, slot: int):
        return seq2seq_loss(model, batch, self.loss_fn, self.cfg.model.moe.aux_loss_weight)

    # -- evaluation ------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, model: Seq2SeqHRM, device: torch.device, autocast=contextlib.nullcontext,
                 max_examples: int = 0) -> dict | None:
        if self.eval_split is None:
            return None
        was_training = model.training
        model.eval()
        batch_size = self.cfg.train.eval_batch_size or self.cfg.train.global_batch_size
        sums = {"count": 0.0, "loss": 0.0, "accuracy": 0.0, "teacher_forced_exact": 0.0, "exact_accuracy": 0.0}
        for batch, num_valid in eval_batches(self.eval_split, batch_size, self.meta["pad_id"], rank=self.rank,
                                             world_size=self.world_size, max_examples=max_examples):
            batch = {k: v[:num_valid].to(device) for k, v in batch.items()}
            if num_valid == 0:
                continue
            with autocast():
                loss, metrics = seq2seq_loss(model, batch, self.loss_fn, self.cfg.model.moe.aux_loss_weight)
                answers = generate(model, batch["encoder_ids"], batch["encoder_mask"], self.meta["bos_id"],
                                   self.meta["eos_id"], self.meta["pad_id"],
                                   SamplingConfig(max_new_tokens=batch["labels"].shape[1]))
            sums["count"] += num_valid
            sums["loss"] += float(metrics["lm_loss"])
            sums["accuracy"] += float(metrics["accuracy"])
            sums["teacher_forced_exact"] += float(metrics["exact_accuracy"])
            sums["exact_accuracy"] += float(generated_matches(answers.tokens, batch["labels"]).sum())
        model.train(was_training)
        return sums

    # -- resume ----------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"stream": self.batches.state_dict()}

    def load_state_dict(self, state: dict, device: torch.device) -> None:
        self.batches.load_state_dict(state["stream"])


def seq2seq_loss(model: Seq2SeqHRM, batch: dict, loss_fn, aux_loss_weight: float):
    """(loss summed over rows, metric sums over rows): the trainer divides by the global batch.
    ``lm_loss`` is each row's mean answer-token loss, averaged over the supervised segments."""
    outputs = model(batch)
    labels = batch["labels"]
    valid = labels != IGNORE_LABEL_ID
    rows = labels.shape[0]
    logits_per_segment = outputs["segment_logits"]
    lm_loss = sum(loss_fn(logits, labels).sum() for logits in logits_per_segment) / len(logits_per_segment)
    with torch.no_grad():
        last = logits_per_segment[-1]
        correct = valid & (last.argmax(-1) == labels)
        per_row = valid.sum(-1).clamp_min(1)
        seq_correct = correct.sum(-1) == valid.sum(-1)
    total = lm_loss + aux_loss_weight * outputs["balance_loss"] * rows
    processed = batch["encoder_mask"].sum() + batch["decoder_mask"].sum()  # prompt and answer tokens (for tokens/s)
    metrics = {"count": torch.tensor(rows), "tokens": processed, "lm_loss": lm_loss.detach(),
               "accuracy": (correct.sum(-1) / per_row).sum(), "exact_accuracy": seq_correct.sum()}
    q_halts = [q for q in outputs["segment_q_halt"] if q is not None]
    if q_halts and model.config.halt_max_steps > 1:
        # Each supervised segment's Q head learns whether the answer is right at that segment.
        q_loss = 0.0
        for logits, q_halt in zip(logits_per_segment, outputs["segment_q_halt"]):
            right = ((valid & (logits.detach().argmax(-1) == labels)).sum(-1) == valid.sum(-1)).float()
            q_loss = q_loss + F.binary_cross_entropy_with_logits(q_halt.float(), right, reduction="sum")
        q_loss = q_loss / len(q_halts)
        total = total + 0.5 * q_loss
        metrics["q_halt_loss"] = q_loss.detach()
    if aux_loss_weight and model.config.moe.num_experts:
        metrics["balance_loss"] = outputs["balance_loss"].detach() * rows
    return total, metrics


def generated_matches(generated: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """[batch] bool: the generated answer (up to its EOS) equals the labels (answer + EOS)."""
    width = max(generated.shape[1], labels.shape[1])
    generated = F.pad(generated, (0, width - generated.shape[1]), value=IGNORE_LABEL_ID)
    padded_labels = F.pad(labels, (0, width - labels.shape[1]), value=IGNORE_LABEL_ID)
    valid = padded_labels != IGNORE_LABEL_ID
    return ((generated == padded_labels) | ~valid).all(-1)


def _split_exists(root: Path, split: str) -> bool:
    return (root / f"{split}.jsonl").exists()


def _build_or_fail(cfg: RunConfig, rank: int) -> None:
    """Build the arithmetic corpus at data.path when it is set to be built there (a new or empty folder);
    any other folder without meta.json is refused, named for what it is, and left as it is."""
    data = cfg.data
    root = Path(data.path)
    instead = ("set data.path to a corpus (hrm prepare arithmetic --out DIR, hrm data prepare-language)"
               + (", or to a new folder for data.build=arithmetic to build one in" if data.build == "arithmetic" else ""))
    puzzle_splits = puzzle_split_names(root)
    if puzzle_splits:
        raise DatasetError(root, f"is a puzzle dataset ({', '.join(f'{split}/dataset.json' for split in puzzle_splits)}), "
                                 f"not an HRM-LM corpus (meta.json, train.jsonl), which task: seq2seq reads; {instead}")
    if data.build != "arithmetic":
        raise DatasetError(data.path, "has no meta.json: build a corpus first (hrm prepare arithmetic, hrm prepare "
                                      "mbpp, hrm data prepare-language; a shipped preset that names a corpus shows "
                                      "the command in its header)")
    empty_folder = root.is_dir() and not any(root.iterdir())
    if root.exists() and not empty_folder:
        raise DatasetError(root, f"is not an HRM-LM corpus (no meta.json), and data.build=arithmetic builds one only "
                                 f"in a new or empty folder; {instead}")
    collectives.barrier()  # every process has looked at the folder before rank 0 fills it
    if rank == 0:
        build_arithmetic_corpus(data.path, digits=data.arithmetic_digits, train=data.arithmetic_train,
                                val=data.arithmetic_val, test=data.arithmetic_val, seed=cfg.train.seed,
                                overwrite=empty_folder)
    collectives.barrier()  # the other processes read what rank 0 just wrote
