"""HRM-LM: prompt in, answer out.

    prompt tokens -> encoder (transformer blocks, optional MoE FFN)          x  [batch, Te, hidden]
      -> recursive core (HRM or TRM) reasoning over x, ``halt_max_steps`` segments   z_H
      -> gated bridge: memory = norm(x + open * sigmoid(gate) * proj(z_H))
      -> causal decoder: self-attention (KV cache) + cross-attention to *every* memory state

The gate starts half open; ``set_gate_open(False)`` (the trainer does it for the first
``hrm_gate_warmup_steps`` steps) shuts it, so the decoder first learns to read the encoder and
the core's contribution is let in after. With ``core: none`` there is no core and no bridge:
a plain encoder-decoder of the same parts, the baseline the core is measured against.

Segments: the core carry is detached between segments (as ACT). With ``deep_supervision`` the
decoder is scored after every segment; otherwise only the last segment builds a graph. A Q head
on the first core position learns whether the answer is already right (sigmoid(q_halt) > 0.5),
which generation may use to stop reasoning early.

Blocks are post-norm with RMSNorm and SwiGLU, as the core's; the model imports nothing from
data/ or train/.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from hrmkit.config import ModelConfig
from hrmkit.model.core import RecursiveCore
from hrmkit.model.layers import (
    Attention,
    CastedEmbedding,
    CastedLinear,
    RotaryEmbedding,
    SwiGLU,
    apply_rotary,
    rms_norm,
)
from hrmkit.model.moe import MoEFeedForward


class EncoderBlock(nn.Module):
    """Non-causal post-norm block over the prompt; its FFN is a SwiGLU or a mixture of experts."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.norm_eps = config.rms_norm_eps
        self.self_attn = Attention(config.hidden_size, config.num_heads)
        moe = config.moe
        self.mlp = (MoEFeedForward(config.hidden_size, moe.num_experts, moe.top_k, moe.capacity_factor,
                                   moe.ff_multiplier, moe.dropout)
                    if moe.num_experts else SwiGLU(config.hidden_size, config.expansion))

    def forward(self, hidden, cos_sin, key_mask) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = rms_norm(hidden + self.self_attn(hidden, cos_sin, key_mask), self.norm_eps)
        if isinstance(self.mlp, MoEFeedForward):
            update, balance = self.mlp(hidden, key_mask)
        else:
            update, balance = self.mlp(hidden), hidden.new_zeros((), dtype=torch.float32)
        return rms_norm(hidden + update, self.norm_eps), balance


@dataclass
class KVCache:
    """Self-attention keys/values of the tokens decoded so far, preallocated to ``max_len``."""

    keys: list[torch.Tensor]  # per layer [batch, heads, max_len, head_dim]
    values: list[torch.Tensor]
    length: int = 0


class CausalSelfAttention(nn.Module):
    def __init__(self, hidden_size: int, num_heads: int):
        super().__init__()
        self.num_heads, self.head_dim = num_heads, hidden_size // num_heads
        self.qkv_proj = CastedLinear(hidden_size, 3 * hidden_size, bias=False)
        self.o_proj = CastedLinear(hidden_size, hidden_size, bias=False)

    def forward(self, hidden, cos_sin, cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        batch, seq, _ = hidden.shape
        start = cache.length if cache is not None else 0
        qkv = self.qkv_proj(hidden).view(batch, seq, 3, self.num_heads, self.head_dim)
        query, key, value = qkv.unbind(2)  # [batch, seq, heads, head_dim]
        if cos_sin is not None:
            cos, sin = (t[start:start + seq] for t in cos_sin)
            query, key = apply_rotary(query, cos, sin), apply_rotary(key, cos, sin)
        query, key, value = (t.transpose(1, 2) for t in (query, key, value))  # [batch, heads, seq, head_dim]
        if cache is None:
            out = F.scaled_dot_product_attention(query, key, value, is_causal=True)
        else:
            cache.keys[layer][:, :, start:start + seq] = key
            cache.values[layer][:, :, start:start + seq] = value
            key, value = cache.keys[layer][:, :, :start + seq], cache.values[layer][:, :, :start + seq]
            # New token i (at start + i) sees every cached token and the new ones up to itself.
            mask = None if seq == 1 else (torch.arange(start + seq, device=hidden.device)
                                          <= start + torch.arange(seq, device=hidden.device).unsqueeze(-1))
            out = F.scaled_dot_product_attention(query, key, value, attn_mask=mask)
        return self.o_proj(out.transpose(1, 2).reshape(batch, seq, -1))


class CrossAttention(nn.Module):
    """Decoder queries over the memory; the memory's keys/values are computed once per prompt."""

    def __init__(self, hidden_size: int, num_heads: int):
        super().__init__()
        self.num_heads, self.head_dim = num_heads, hidden_size // num_heads
        self.q_proj = CastedLinear(hidden_size, hidden_size, bias=False)
        self.kv_proj = CastedLinear(hidden_size, 2 * hidden_size, bias=False)
        self.o_proj = CastedLinear(hidden_size, hidden_size, bias=False)

    def memory_kv(self, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch, length, _ = memory.shape
        kv = self.kv_proj(memory).view(batch, length, 2, self.num_heads, self.head_dim)
        key, value = kv.permute(2, 0, 3, 1, 4).unbind(0)
        return key, value

    def forward(self, hidden, memory_kv, memory_mask) -> torch.Tensor:
        batch, seq, _ = hidden.shape
        query = self.q_proj(hidden).view(batch, seq, self.num_heads, self.head_dim).transpose(1, 2)
        key, value = memory_kv
        out = F.scaled_dot_product_attention(query, key.to(query.dtype), value.to(query.dtype),
                                             attn_mask=memory_mask[:, None, None, :])
        return self.o_proj(out.transpose(1, 2).reshape(batch, seq, -1))


class DecoderBlock(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.norm_eps = config.rms_norm_eps
        self.self_attn = CausalSelfAttention(config.hidden_size, config.num_heads)
        self.cross_attn = CrossAttention(config.hidden_size, config.num_heads)
        self.mlp = SwiGLU(config.hidden_size, config.expansion)

    def forward(self, hidden, cos_sin, memory_kv, memory_mask, cache=None, layer=0):
        hidden = rms_norm(hidden + self.self_attn(hidden, cos_sin, cache, layer), self.norm_eps)
        hidden = rms_norm(hidden + self.cross_attn(hidden, memory_kv, memory_mask), self.norm_eps)
        return rms_norm(hidden + self.mlp(hidden), self.norm_eps)


@dataclass
class Reasoned:
    """What the decoder reads for one prompt batch: the memory and its mask, plus the Q logits."""

    memory: torch.Tensor  # [batch, Te, hidden]
    memory_mask: torch.Tensor  # [batch, Te] bool
    q_halt_logits: torch.Tensor | None  # [batch] from the last segment run (None without a core)
    segments: int


class Seq2SeqHRM(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        if config.vocab_size < 1 or config.seq_len < 1:
            raise ValueError("model.vocab_size and model.seq_len must be set (they come from the corpus meta.json)")
        if config.mlp_t or config.puzzle_emb_ndim:
            raise ValueError("HRM-LM takes variable-length prompts: set model.mlp_t=false and model.puzzle_emb_ndim=0")
        if config.pos_encodings in ("learned", "rope2d") or config.grid_alibi:
            raise ValueError("HRM-LM supports pos_encodings rope or none, and no grid_alibi")
        self.config = config
        hidden = config.hidden_size
        self.embed_scale = math.sqrt(hidden)
        self.embed_tokens = CastedEmbedding(config.vocab_size, hidden, 1.0 / self.embed_scale, torch.float32)
        if config.pos_encodings == "rope":
            self.rotary_emb = RotaryEmbedding(hidden // config.num_heads, config.seq_len + 1, config.rope_theta)
        self.encoder = nn.ModuleList(EncoderBlock(config) for _ in range(config.encoder_layers))
        if config.core == "recursive":
            self.core = RecursiveCore(config, token_io=False)
            self.bridge_proj = CastedLinear(hidden, hidden, bias=False)
            self.bridge_gate = nn.Parameter(torch.zeros(hidden))  # sigmoid(0) = half open
        self.register_buffer("gate_open", torch.ones(()), persistent=False)
        self.decoder = nn.ModuleList(DecoderBlock(config) for _ in range(config.decoder_layers))
        self.lm_head = CastedLinear(hidden, config.vocab_size, bias=False)

    @property
    def puzzle_emb(self):  # the trainer's sparse-embedding optimizer looks for this
        return None

    @property
    def checkpoint_module(self) -> nn.Module:
        return self

    def set_gate_open(self, is_open: bool) -> None:
        self.gate_open.fill_(1.0 if is_open else 0.0)

    def _cos_sin(self):
        return self.rotary_emb() if hasattr(self, "rotary_emb") else None

    def _check_length(self, ids: torch.Tensor, what: str) -> None:
        if ids.shape[1] > self.config.seq_len:
            raise ValueError(f"{what} has {ids.shape[1]} tokens, more than model.seq_len {self.config.seq_len}")

    # -- prompt side ---------------------------------------------------------------------------
    def encode(self, encoder_ids: torch.Tensor, encoder_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(token states [batch, Te, hidden], summed MoE load-balancing loss)."""
        self._check_length(encoder_ids, "the prompt")
        hidden = self.embed_scale * self.embed_tokens(encoder_ids.long())
        balance = hidden.new_zeros((), dtype=torch.float32)
        for block in self.encoder:
            hidden, block_balance = block(hidden, self._cos_sin(), encoder_mask)
            balance = balance + block_balance
        return hidden, balance

    def reason(self, x: torch.Tensor, mask: torch.Tensor, segments: int | None = None, with_grad: bool = True,
               halt: bool = False) -> Reasoned:
        """Run the core for ``segments`` (default halt_max_steps) segments; only the last keeps a graph.
        ``halt``: rows stop (their state frozen) once sigmoid(q_halt) > 0.5, all stop when all have."""
        if not hasattr(self, "core"):
            return Reasoned(x, mask, None, 0)
        segments = segments or self.config.halt_max_steps
        carry = self.core.empty_carry(x.shape[0], x.shape[1])
        z_H, z_L = carry.z_H.to(x.dtype), carry.z_L.to(x.dtype)
        halted = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
        q_halt = None
        for segment in range(segments):
            last = segment == segments - 1
            with torch.set_grad_enabled(with_grad and last and torch.is_grad_enabled()):
                new_H, new_L = self.core.recurse_without_grad(z_H, z_L, x, mask)
                new_H, new_L = self.core.recurse_with_grad(new_H, new_L, x, mask)
            frozen = halted.view(-1, 1, 1)
            z_H, z_L = torch.where(frozen, z_H, new_H), torch.where(frozen, z_L, new_L)
            q_halt = self.core.q_logits(z_H)[0]
            if not last:
                z_H, z_L = z_H.detach(), z_L.detach()
            if halt:
                halted = halted | (q_halt > 0)
                if bool(halted.all()):
                    return Reasoned(self.bridge(x, z_H), mask, q_halt, segment + 1)
        return Reasoned(self.bridge(x, z_H), mask, q_halt, segments)

    def bridge(self, x: torch.Tensor, z_H: torch.Tensor) -> torch.Tensor:
        gate = self.gate_open * torch.sigmoid(self.bridge_gate)
        return rms_norm(x + gate.to(x.dtype) * self.bridge_proj(z_H), self.config.rms_norm_eps)

    # -- answer side ---------------------------------------------------------------------------
    def memory_kv(self, reasoned: Reasoned) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [block.cross_attn.memory_kv(reasoned.memory) for block in self.decoder]

    def decode(self, decoder_ids: torch.Tensor, reasoned: Reasoned, memory_kv=None,
               cache: KVCache | None = None) -> torch.Tensor:
        """Logits [batch, Td, vocab] for ``decoder_ids``; with a cache, ``decoder_ids`` are the new
        tokens only and the cache grows by their length."""
        start = cache.length if cache is not None else 0
        if start + decoder_ids.shape[1] > self.config.seq_len + 1:
            raise ValueError(f"decoding past model.seq_len + 1 = {self.config.seq_len + 1} positions")
        memory_kv = memory_kv if memory_kv is not None else self.memory_kv(reasoned)
        hidden = self.embed_scale * self.embed_tokens(decoder_ids.long())
        for layer, block in enumerate(self.decoder):
            hidden = block(hidden, self._cos_sin(), memory_kv[layer], reasoned.memory_mask, cache, layer)
        if cache is not None:
            cache.length += decoder_ids.shape[1]
        return self.lm_head(hidden)

    def new_cache(self, batch_size: int, max_len: int, device, dtype) -> KVCache:
        shape = (batch_size, self.config.num_heads, max_len, self.config.hidden_size // self.config.num_heads)
        layers = len(self.decoder)
        return KVCache([torch.zeros(shape, device=device, dtype=dtype) for _ in range(layers)],
                       [torch.zeros(shape, device=device, dtype=dtype) for _ in range(layers)])

    # -- training ------------------------------------------------------------------------------
    def forward(self, batch: dict) -> dict:
        """Teacher-forced pass. Returns ``segment_logits`` (one [batch, Td, vocab] per supervised
        segment, the last one last), ``segment_q_halt`` (matching, or None) and ``balance_loss`` (summed over
        the encoder's MoE layers: their number for perfectly even routing)."""
        x, balance = self.encode(batch["encoder_ids"], batch["encoder_mask"])
        mask = batch["encoder_mask"]
        if not hasattr(self, "core") or not self.config.deep_supervision:
            reasoned = self.reason(x, mask)
            return {"segment_logits": [self.decode(batch["decoder_input_ids"], reasoned)],
                    "segment_q_halt": [reasoned.q_halt_logits], "balance_loss": balance}
        logits, q_halts = [], []
        carry = self.core.empty_carry(x.shape[0], x.shape[1])
        z_H, z_L = carry.z_H.to(x.dtype), carry.z_L.to(x.dtype)
        for _ in range(self.config.halt_max_steps):
            z_H, z_L = self.core.recurse_without_grad(z_H, z_L, x, mask)
            z_H, z_L = self.core.recurse_with_grad(z_H, z_L, x, mask)
            reasoned = Reasoned(self.bridge(x, z_H), mask, self.core.q_logits(z_H)[0], len(logits) + 1)
            logits.append(self.decode(batch["decoder_input_ids"], reasoned))
            q_halts.append(reasoned.q_halt_logits)
            z_H, z_L = z_H.detach(), z_L.detach()
        return {"segment_logits": logits, "segment_q_halt": q_halts, "balance_loss": balance}
