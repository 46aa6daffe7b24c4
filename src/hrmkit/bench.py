"""``hrm bench {train,eval,generate}``: time a config on synthetic batches (figures, not assertions).

train: the trainer's own step (puzzles: an ACT segment; HRM-LM: encoder, core, decoder), loss,
backward, clipping, optimizer. eval: the evaluation forward (puzzles: all halt_max_steps segments;
HRM-LM: a teacher-forced pass). generate: HRM-LM decoding with and without the KV cache. Batches are
random tokens of the config's shape, so no dataset is needed. Figures: samples/s, tokens/s, ms/step,
achieved GFLOP/s (FLOPs counted by torch's FlopCounterMode), model FLOPs utilisation on a GPU whose
peak is known, peak memory (CUDA tensors on a GPU, the process's RSS on the CPU). Each result says what
its step is: a puzzle training step is one ACT segment, an evaluation step all of them.
"""

from __future__ import annotations

import functools
import json
import platform
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace

import torch
from torch.utils.flop_counter import FlopCounterMode

from hrmkit.config import RunConfig
from hrmkit.lm.batches import eval_batches as corpus_eval_batches
from hrmkit.lm.task import Seq2SeqTask, random_data
from hrmkit.puzzles.batches import eval_batches as puzzle_eval_batches
from hrmkit.puzzles.batches import random_split
from hrmkit.puzzles.task import PuzzleTask
from hrmkit.train.speed_settings import autocast_for, resolve_speed_settings, synchronize
from hrmkit.train.task import Task


def synthetic_task(cfg: RunConfig) -> Callable[..., Task]:
    """A task factory for the trainer: the family's real Task class on random data of the config's shape."""
    rows = 2 * max(cfg.train.global_batch_size, cfg.train.eval_batch_size)
    if cfg.task == "seq2seq":
        data = random_data(cfg.model, rows, cfg.train.seed)
        return functools.partial(Seq2SeqTask, data=data)
    m = cfg.model
    split = random_split(m.vocab_size, m.seq_len, m.num_puzzle_identifiers, rows, cfg.train.seed)
    return functools.partial(PuzzleTask, splits=(split, split))


def _tokens_per_example(cfg: RunConfig) -> int:
    """Prompt and answer tokens of a random HRM-LM example; a puzzle's cells."""
    return cfg.model.seq_len + max(1, cfg.model.seq_len // 2) if cfg.task == "seq2seq" else cfg.model.seq_len


def bench_train(cfg: RunConfig, steps: int = 5, warmup: int = 2) -> dict:
    from hrmkit.train.trainer import Trainer
    name = cfg.run_name
    task = synthetic_task(cfg)
    with tempfile.TemporaryDirectory() as runs_dir:
        cfg = replace(cfg, runs_dir=runs_dir, run_name="bench")
        trainer = Trainer(cfg, task, log=lambda *_: None)
        for _ in range(warmup):
            trainer._train_step()
        with FlopCounterMode(display=False) as counter:
            trainer._train_step()
        flops_per_step = counter.get_total_flops()
        synchronize(trainer.device)
        if trainer.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        times = []
        for _ in range(steps):
            started = time.perf_counter()
            trainer._train_step()
            synchronize(trainer.device)
            times.append(time.perf_counter() - started)
    seconds = statistics.median(times)
    batch = cfg.train.global_batch_size
    return _result(cfg, name, "train", trainer.model, trainer.device, batch, seconds, flops_per_step,
                   _tokens_per_example(cfg), steps, reuse_q_target_forward=cfg.model.reuse_q_target_forward,
                   step_is="one ACT segment of the batch, forward and backward" if cfg.task != "seq2seq"
                   else "encoder, core and decoder, forward and backward")


def bench_eval(cfg: RunConfig, steps: int = 5, warmup: int = 1) -> dict:
    """The evaluation forward on random batches of train.eval_batch_size (or the global batch)."""
    from hrmkit.train.distributed import pick_device
    device = pick_device(cfg.train.device)
    resolve_speed_settings(cfg, device)
    if cfg.train.threads > 0:
        torch.set_num_threads(cfg.train.threads)
    task = synthetic_task(cfg)(cfg)
    task.fill_model_config()
    torch.manual_seed(cfg.train.seed)
    model = task.build_model().to(device).eval()
    batch_size = cfg.train.eval_batch_size or cfg.train.global_batch_size
    if cfg.task == "seq2seq":
        batch, _ = next(corpus_eval_batches(task.eval_split, batch_size, task.meta["pad_id"]))
        batch = {k: v.to(device) for k, v in batch.items()}
        timed = model

        def forward(module):
            return module(batch)
    else:
        _, batch, _ = next(puzzle_eval_batches(task.eval_split, batch_size))
        batch = {k: v.to(device) for k, v in batch.items()}
        # A puzzle run's evaluations, and hrm eval on CUDA, run the compiled model when training compiles.
        timed = torch.compile(model) if cfg.train.compile else model

        def forward(module):  # every example runs all halt_max_steps segments, as evaluation does
            carry = model.initial_carry(batch)
            for _ in range(cfg.model.halt_max_steps):
                carry, outputs = module(carry=carry, batch=batch)
            return outputs
    with torch.no_grad(), autocast_for(cfg.train.precision, device):
        with FlopCounterMode(display=False) as counter:  # on the eager model: the same operations
            forward(model)
        for _ in range(warmup):
            forward(timed)
        synchronize(device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        times = []
        for _ in range(steps):
            started = time.perf_counter()
            forward(timed)
            synchronize(device)
            times.append(time.perf_counter() - started)
    return _result(cfg, cfg.run_name, "eval", model, device, batch_size, statistics.median(times),
                   counter.get_total_flops(), _tokens_per_example(cfg), steps,
                   compile=timed is not model,  # HRM-LM evaluates eager
                   step_is=f"all {cfg.model.halt_max_steps} ACT segments of the batch, forward"
                   if cfg.task != "seq2seq" else "a teacher-forced forward")


# Dense peak FLOP/s of GPUs whose model FLOPs utilisation we report, by name fragment and precision
# (vendor datasheets; fp32 means TF32 tensor cores, which torch uses for fp32 matmuls when allowed).
GPU_PEAK_FLOPS = {"H100": {"bf16": 989e12, "fp16": 989e12, "fp32": 495e12},
                  "H200": {"bf16": 989e12, "fp16": 989e12, "fp32": 495e12},
                  "A100": {"bf16": 312e12, "fp16": 312e12, "fp32": 156e12}}


def _model_flops_utilisation(device: torch.device, precision: str, flops_per_s: float) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for fragment, peaks in GPU_PEAK_FLOPS.items():
        if fragment in name:
            return flops_per_s / peaks[precision]
    return None


def _result(cfg: RunConfig, name: str, what: str, model, device: torch.device, batch: int, seconds: float,
            flops: float, tokens_per_example: int, steps: int, **extra) -> dict:
    return {
        "what": what, "config": name, "task": cfg.task, "variant": cfg.model.variant, "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine(),
        "precision": cfg.train.precision, "state_dtype": cfg.model.state_dtype, "threads": torch.get_num_threads(), "batch": batch,
        "parameters": sum(p.numel() for p in model.parameters()),
        "ms_per_step": 1000 * seconds, "samples_per_s": batch / seconds, "tokens_per_s": batch * tokens_per_example / seconds,
        "gflop_per_step": flops / 1e9, "gflop_per_s": flops / 1e9 / seconds,
        "mfu": _model_flops_utilisation(device, cfg.train.precision, flops / seconds),
        "peak_memory_gib": _peak_memory_gib(device), "peak_memory_of": _peak_memory_of(device),
        "steps_timed": steps, "compile": cfg.train.compile,
        "torch": torch.__version__, **extra,
    }


def _peak_memory_gib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux reports KiB


def _peak_memory_of(device: torch.device) -> str:
    """What peak_memory_gib measures: torch's CUDA tensors, or on the CPU the whole process (libraries
    and the interpreter included, about a quarter GiB before any model)."""
    return "CUDA tensors" if device.type == "cuda" else "the process (RSS)"


def format_result(result: dict) -> str:
    mfu = f", MFU {result['mfu']:.1%}" if result.get("mfu") is not None else ""
    return (f"{result['what']} {result['config']} [{result['variant']}, {result['parameters']:,} params] on "
            f"{result['device']} {result['precision']} {'compiled' if result['compile'] is True else 'eager'} "
            f"x{result['threads']} threads, batch {result['batch']}: "
            f"{result['ms_per_step']:.0f} ms/step (a step: {result['step_is']}), {result['samples_per_s']:.1f} samples/s, "
            f"{result['tokens_per_s']:.0f} tokens/s, {result['gflop_per_s']:.1f} GFLOP/s{mfu}, "
            f"peak memory {result['peak_memory_gib']:.2f} GiB of {result['peak_memory_of']}")


def to_json(result: dict) -> str:
    return json.dumps(result, indent=2)


def bench_generate(cfg: RunConfig, new_tokens: list[int], batch: int = 1, prompt_len: int = 32,
                   repeats: int = 3) -> list[dict]:
    """Decoding speed of an (untrained) HRM-LM of ``cfg``'s shape, with and without the KV cache,
    measured side by side: the cache's speed-up is the ratio of the two columns."""
    from hrmkit.lm.generate import SamplingConfig, generate
    from hrmkit.model.seq2seq import Seq2SeqHRM
    from hrmkit.train.distributed import pick_device
    if cfg.task != "seq2seq":
        raise ValueError(f"bench generate times HRM-LM decoding: {cfg.run_name} is a {cfg.task} config, "
                         "give an HRM-LM one (task: seq2seq), e.g. --config arithmetic")
    if not cfg.model.vocab_size:
        raise ValueError("benchmarks need model.vocab_size (set it as an override)")
    device = pick_device(cfg.train.device)
    resolve_speed_settings(cfg, device)  # the precision and state dtype hrm generate runs such a model in
    model_cfg = replace(cfg.model, seq_len=max(cfg.model.seq_len, max(new_tokens), prompt_len))
    autocast = functools.partial(autocast_for, cfg.train.precision, device)
    torch.manual_seed(cfg.train.seed)
    model = Seq2SeqHRM(model_cfg).to(device).eval()
    ids = torch.randint(4, model_cfg.vocab_size, (batch, prompt_len), device=device)
    mask = torch.ones_like(ids, dtype=torch.bool)
    for use_cache in (True, False):  # warm up: first calls pay for allocations and thread start-up
        with autocast():
            generate(model, ids, mask, bos_id=1, eos_id=-1, pad_id=0, sampling=SamplingConfig(max_new_tokens=8),
                     use_cache=use_cache)
    results = []
    for count in new_tokens:
        sampling = SamplingConfig(max_new_tokens=count)
        row = {"config": cfg.run_name, "device": str(device), "precision": cfg.train.precision,
               "threads": torch.get_num_threads(), "batch": batch, "prompt_tokens": prompt_len, "new_tokens": count,
               "parameters": sum(p.numel() for p in model.parameters())}
        for use_cache in (True, False):
            times = []
            for _ in range(repeats):
                started = time.perf_counter()
                # eos_id -1 never occurs: every run decodes exactly ``count`` tokens.
                with autocast():
                    generate(model, ids, mask, bos_id=1, eos_id=-1, pad_id=0, sampling=sampling,
                             use_cache=use_cache)
                synchronize(device)
                times.append(time.perf_counter() - started)
            key = "cached" if use_cache else "uncached"
            row[f"{key}_tokens_per_s"] = batch * count / statistics.median(times)
        row["speedup"] = row["cached_tokens_per_s"] / row["uncached_tokens_per_s"]
        results.append(row)
    return results


def format_generate_result(row: dict) -> str:
    return (f"{row['config']} [{row['parameters']:,} params] on {row['device']} {row['precision']} "
            f"x{row['threads']} threads, batch "
            f"{row['batch']}, {row['new_tokens']} new tokens: cached {row['cached_tokens_per_s']:.0f} tokens/s, "
            f"uncached {row['uncached_tokens_per_s']:.0f} tokens/s, speed-up {row['speedup']:.1f}x")
