"""``hrm bench train``: time the real training step of a config on synthetic batches.

The step is the trainer's own (ACT segment, loss, backward, clipping, optimizer), fed random
tokens of the config's shape, so no dataset is needed. Figures: samples/s, tokens/s, ms/step,
achieved GFLOP/s (FLOPs counted by torch's FlopCounterMode over one step), peak memory.
"""

from __future__ import annotations

import functools
import json
import platform
import resource
import statistics
import tempfile
import time
from dataclasses import replace

import torch
from torch.utils.flop_counter import FlopCounterMode

from .config import RunConfig
from .model.act import ACTModel
from .tasks.puzzle import act_segment_loss


class SyntheticPuzzleTask:
    """A puzzle task whose batches are random tokens of the configured shape (for benchmarks)."""

    def __init__(self, cfg: RunConfig, rank: int = 0, world_size: int = 1, reuse_target_forward: bool = True):
        self.cfg = cfg
        # False drops HRM's prefetched no-grad segment each step, to time the reference's full second forward.
        self.reuse_target_forward = reuse_target_forward
        self.generator = torch.Generator().manual_seed(cfg.train.seed)
        self.carries = [None] * cfg.train.grad_accum_steps
        self.local_batch = cfg.train.global_batch_size // world_size

    def fill_model_config(self) -> None:
        if not self.cfg.model.vocab_size or not self.cfg.model.seq_len:
            raise ValueError("benchmarks need model.vocab_size and model.seq_len (set them as overrides)")
        self.cfg.model.num_puzzle_identifiers = max(self.cfg.model.num_puzzle_identifiers, 1)

    def build_model(self):
        return ACTModel(self.cfg.model)

    @property
    def tokens_per_example(self) -> int:
        return self.cfg.model.seq_len

    def next_micro_batches(self):
        m = self.cfg.model
        shape = (self.local_batch // len(self.carries), m.seq_len)
        return [{"inputs": torch.randint(1, m.vocab_size, shape, generator=self.generator, dtype=torch.int32),
                 "labels": torch.randint(1, m.vocab_size, shape, generator=self.generator),
                 "puzzle_identifiers": torch.randint(0, m.num_puzzle_identifiers, shape[:1], generator=self.generator,
                                                     dtype=torch.int32)} for _ in self.carries]

    def train_loss(self, model, batch, slot):
        if not self.reuse_target_forward and self.carries[slot] is not None:
            self.carries[slot].prefetched = None
        return act_segment_loss(model, batch, self.carries, slot, self.cfg.model.loss)

    def evaluate(self, *args, **kwargs):
        return None

    def state_dict(self):
        return {}


def bench_train(cfg: RunConfig, steps: int = 5, warmup: int = 2, reuse_target_forward: bool = True) -> dict:
    from .train.trainer import Trainer
    name = cfg.run_name
    task = functools.partial(SyntheticPuzzleTask, reuse_target_forward=reuse_target_forward)
    with tempfile.TemporaryDirectory() as runs_dir:
        cfg = replace(cfg, runs_dir=runs_dir, run_name="bench")
        trainer = Trainer(cfg, task, log=lambda *_: None)
        for _ in range(warmup):
            trainer._train_step()
        with FlopCounterMode(display=False) as counter:
            trainer._train_step()
        flops_per_step = counter.get_total_flops()
        if trainer.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        times = []
        for _ in range(steps):
            started = time.perf_counter()
            trainer._train_step()
            if trainer.device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - started)
    seconds = statistics.median(times)
    batch, seq = cfg.train.global_batch_size, cfg.model.seq_len
    result = {
        "config": name, "variant": cfg.model.variant, "device": str(trainer.device),
        "precision": cfg.train.precision, "threads": torch.get_num_threads(), "batch": batch,
        "parameters": sum(p.numel() for p in trainer.model.parameters()),
        "ms_per_step": 1000 * seconds, "samples_per_s": batch / seconds, "tokens_per_s": batch * seq / seconds,
        "gflop_per_step": flops_per_step / 1e9, "gflop_per_s": flops_per_step / 1e9 / seconds,
        "peak_memory_gib": _peak_memory_gib(trainer.device), "steps_timed": steps,
        "reuse_target_forward": reuse_target_forward,
        "cpu": platform.processor() or platform.machine(), "torch": torch.__version__,
    }
    return result


def _peak_memory_gib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux reports KiB


def format_result(result: dict) -> str:
    return (f"{result['config']} [{result['variant']}, {result['parameters']:,} params] on {result['device']} "
            f"{result['precision']} x{result['threads']} threads, batch {result['batch']}: "
            f"{result['ms_per_step']:.0f} ms/step, {result['samples_per_s']:.1f} samples/s, "
            f"{result['tokens_per_s']:.0f} tokens/s, {result['gflop_per_s']:.1f} GFLOP/s, "
            f"peak memory {result['peak_memory_gib']:.2f} GiB")


def to_json(result: dict) -> str:
    return json.dumps(result, indent=2)


def bench_generate(cfg: RunConfig, new_tokens: list[int], batch: int = 1, prompt_len: int = 32,
                   repeats: int = 3) -> list[dict]:
    """Decoding speed of an (untrained) HRM-LM of ``cfg``'s shape, with and without the KV cache,
    measured side by side: the cache's speed-up is the ratio of the two columns."""
    from .generate import SamplingConfig, generate
    from .model.seq2seq import Seq2SeqHRM
    from .train.distributed import pick_device
    longest = max(new_tokens)
    model_cfg = replace(cfg.model, seq_len=max(cfg.model.seq_len, longest, prompt_len))
    if not model_cfg.vocab_size:
        raise ValueError("benchmarks need model.vocab_size (set it as an override)")
    device = pick_device(cfg.train.device)
    torch.manual_seed(cfg.train.seed)
    model = Seq2SeqHRM(model_cfg).to(device).eval()
    ids = torch.randint(4, model_cfg.vocab_size, (batch, prompt_len), device=device)
    mask = torch.ones_like(ids, dtype=torch.bool)
    for use_cache in (True, False):  # warm up: first calls pay for allocations and thread start-up
        generate(model, ids, mask, bos_id=1, eos_id=-1, pad_id=0, sampling=SamplingConfig(max_new_tokens=8),
                 use_cache=use_cache)
    results = []
    for count in new_tokens:
        sampling = SamplingConfig(max_new_tokens=count)
        row = {"config": cfg.run_name, "device": str(device), "threads": torch.get_num_threads(), "batch": batch,
               "prompt_tokens": prompt_len, "new_tokens": count,
               "parameters": sum(p.numel() for p in model.parameters())}
        for use_cache in (True, False):
            times = []
            for _ in range(repeats):
                started = time.perf_counter()
                # eos_id -1 never occurs: every run decodes exactly ``count`` tokens.
                generate(model, ids, mask, bos_id=1, eos_id=-1, pad_id=0, sampling=sampling, use_cache=use_cache)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - started)
            key = "cached" if use_cache else "uncached"
            row[f"{key}_tokens_per_s"] = batch * count / statistics.median(times)
        row["speedup"] = row["cached_tokens_per_s"] / row["uncached_tokens_per_s"]
        results.append(row)
    return results


def format_generate_result(row: dict) -> str:
    return (f"{row['config']} [{row['parameters']:,} params] on {row['device']} x{row['threads']} threads, batch "
            f"{row['batch']}, {row['new_tokens']} new tokens: cached {row['cached_tokens_per_s']:.0f} tokens/s, "
            f"uncached {row['uncached_tokens_per_s']:.0f} tokens/s, speed-up {row['speedup']:.1f}x")
