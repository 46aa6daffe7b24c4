"""Answer generation for HRM-LM: greedy or sampled decoding with a KV cache.

The prompt is encoded and reasoned over once; each decoder layer's cross-attention keys/values
are computed once from that memory; the decoder's self-attention keys/values live in a cache
preallocated to the longest answer, so each new token costs one position, not the whole prefix.
``use_cache=False`` recomputes the prefix every step (the reference for tests and benchmarks).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from hrmkit.model.seq2seq import Seq2SeqHRM


@dataclass
class SamplingConfig:
    max_new_tokens: int = 64
    """Answer tokens to produce at most (EOS included)."""
    temperature: float = 0.0
    """0 = greedy (argmax); otherwise logits are divided by it before sampling."""
    top_k: int = 0
    """Sample among the k most likely tokens only; 0 = all."""
    top_p: float = 1.0
    """Nucleus sampling: the smallest set of tokens whose probability reaches top_p; 1 = all."""
    repetition_penalty: float = 1.0
    """> 1 makes tokens already in the answer less likely (CTRL-style: divide positive logits, multiply negative)."""
    seed: int | None = None
    """Seed of the sampling generator; None draws from torch's global generator."""

    def validate(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError("max_new_tokens must be >= 1")
        if self.temperature < 0 or self.top_k < 0 or not 0 < self.top_p <= 1 or self.repetition_penalty <= 0:
            raise ValueError("need temperature >= 0, top_k >= 0, 0 < top_p <= 1 and repetition_penalty > 0")


@dataclass
class Generation:
    tokens: torch.Tensor  # [batch, new] answer tokens; pad after EOS
    lengths: torch.Tensor  # [batch] tokens up to and including EOS (or all when none came)
    step_logits: torch.Tensor | None  # [batch, new, vocab] raw logits of each step when asked for
    segments: int  # core segments run on the prompt


def apply_repetition_penalty(logits: torch.Tensor, seen: torch.Tensor, penalty: float) -> torch.Tensor:
    """Vectorised over the batch: ``seen`` [batch, vocab] bool marks tokens already produced."""
    if penalty == 1.0:
        return logits
    penalised = torch.where(logits > 0, logits / penalty, logits * penalty)
    return torch.where(seen, penalised, logits)


def pick_next(logits: torch.Tensor, sampling: SamplingConfig,
              generator: torch.Generator | list[torch.Generator] | None) -> torch.Tensor:
    """Next token per row from [batch, vocab] logits; with a list of generators, row i draws from the i-th."""
    if sampling.temperature == 0:
        return logits.argmax(-1)
    logits = logits.float() / sampling.temperature
    if sampling.top_k:
        kth = logits.topk(min(sampling.top_k, logits.shape[-1]), dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if sampling.top_p < 1.0:
        sorted_logits, order = logits.sort(-1, descending=True)
        probs = sorted_logits.softmax(-1)
        # Drop a token when the more likely ones alone already reach top_p (the first always stays).
        drop = probs.cumsum(-1) - probs >= sampling.top_p
        logits = logits.scatter(-1, order, sorted_logits.masked_fill(drop, float("-inf")))
    probs = logits.softmax(-1)
    if isinstance(generator, list):
        return torch.cat([torch.multinomial(row, 1, generator=own) for row, own in zip(probs, generator)])
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


@torch.no_grad()
def generate(model: Seq2SeqHRM, encoder_ids: torch.Tensor, encoder_mask: torch.Tensor, bos_id: int, eos_id: int,
             pad_id: int, sampling: SamplingConfig | None = None, use_cache: bool = True, halt: bool = False,
             keep_logits: bool = False, row_seeds: Sequence[int] | None = None) -> Generation:
    """Answers to a batch of encoded prompts. ``row_seeds`` (one per row, in place of ``sampling.seed``)
    gives each row a generator of its own, so what a row samples does not depend on the rows beside it."""
    sampling = sampling or SamplingConfig()
    sampling.validate()
    # The decoder sees BOS plus every token but the last: max_new_tokens positions.
    if sampling.max_new_tokens > model.config.seq_len + 1:
        raise ValueError(f"max_new_tokens {sampling.max_new_tokens} exceeds what the decoder can place "
                         f"(model.seq_len = {model.config.seq_len})")
    was_training = model.training
    model.eval()
    device, batch = encoder_ids.device, encoder_ids.shape[0]
    generator: torch.Generator | list[torch.Generator] | None = None
    if row_seeds is not None:
        if len(row_seeds) != batch:
            raise ValueError(f"{len(row_seeds)} row seeds for {batch} rows")
        generator = [torch.Generator(device=device).manual_seed(seed) for seed in row_seeds]
    elif sampling.seed is not None:
        generator = torch.Generator(device=device).manual_seed(sampling.seed)
    x, _ = model.encode(encoder_ids, encoder_mask)
    reasoned = model.reason(x, encoder_mask, halt=halt)
    memory_kv = model.memory_kv(reasoned)
    cache = model.new_cache(batch, sampling.max_new_tokens, device, x.dtype) if use_cache else None

    fed = torch.full((batch, 1), bos_id, dtype=torch.long, device=device)  # decoder input so far
    out = torch.full((batch, sampling.max_new_tokens), pad_id, dtype=torch.long, device=device)
    lengths = torch.full((batch,), sampling.max_new_tokens, dtype=torch.long, device=device)
    finished = torch.zeros(batch, dtype=torch.bool, device=device)
    seen = torch.zeros(batch, model.config.vocab_size, dtype=torch.bool, device=device)
    kept = []
    for step in range(sampling.max_new_tokens):
        if use_cache:
            logits = model.decode(fed[:, -1:], reasoned, memory_kv, cache)[:, -1]
        else:
            logits = model.decode(fed, reasoned, memory_kv)[:, -1]
        if keep_logits:
            kept.append(logits.float())
        token = pick_next(apply_repetition_penalty(logits, seen, sampling.repetition_penalty), sampling, generator)
        token = torch.where(finished, pad_id, token)
        out[:, step] = token
        newly_done = ~finished & (token == eos_id)
        lengths = torch.where(newly_done, step + 1, lengths)
        finished |= newly_done
        seen.scatter_(1, token.unsqueeze(-1), True)
        if bool(finished.all()):
            out = out[:, :step + 1]
            break
        fed = torch.cat((fed, token.unsqueeze(-1)), dim=1)
    model.train(was_training)
    return Generation(out, lengths, torch.stack(kept, 1) if keep_logits else None, reasoned.segments)


def generate_text(model: Seq2SeqHRM, tokenizer, prompts: list[str], sampling: SamplingConfig | None = None,
                  device: torch.device | str = "cpu", halt: bool = False,
                  row_seeds: Sequence[int] | None = None) -> list[str]:
    """Prompts in, decoded answers out (prompts longer than model.seq_len keep their last tokens);
    ``row_seeds`` as in :func:`generate`."""
    if not prompts:
        return []
    encoded = [tokenizer.encode(p)[-model.config.seq_len:] or [tokenizer.unk_id] for p in prompts]
    width = max(len(ids) for ids in encoded)
    ids = torch.full((len(encoded), width), tokenizer.pad_id, dtype=torch.long)
    mask = torch.zeros((len(encoded), width), dtype=torch.bool)
    for row, tokens in enumerate(encoded):
        ids[row, :len(tokens)] = torch.tensor(tokens)
        mask[row, :len(tokens)] = True
    result = generate(model, ids.to(device), mask.to(device), tokenizer.bos_id, tokenizer.eos_id, tokenizer.pad_id,
                      sampling, halt=halt, row_seeds=row_seeds)
    answers = []
    for row, length in zip(result.tokens.tolist(), result.lengths.tolist()):
        answers.append(tokenizer.decode([t for t in row[:length] if t != tokenizer.eos_id]))
    return answers
