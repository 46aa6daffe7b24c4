"""The recursive reasoning core: HRM (two modules) and TRM (one net), one segment per call.

Symbols follow the papers. x: input embedding; HRM: z_H (slow, planning) and z_L (fast);
TRM: y (the answer, stored in ``z_H``) and z (the latent, stored in ``z_L``).

A segment is split in two so callers can reuse work: ``recurse_without_grad`` runs every update
but the last ones (no graph: the 1-step gradient), ``recurse_with_grad`` runs the updates that
backpropagate. Both variants keep the reference's parameter names (``H_level``, ``L_level``,
``embed_tokens``, ``lm_head``, ``q_head``, ``puzzle_emb``, ``H_init``, ``L_init``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from hrmkit.config import ModelConfig
from hrmkit.model.layers import (
    Block,
    CastedEmbedding,
    CastedLinear,
    ReasoningModule,
    RotaryEmbedding,
    grid_distance_bias,
    trunc_normal_init_,
)
from hrmkit.model.puzzle_emb import CastedSparseEmbedding


@dataclass
class CoreCarry:
    z_H: torch.Tensor  # [batch, prefix + seq, hidden]
    z_L: torch.Tensor  # [batch, prefix + seq, hidden]


def states_follow_autocast(state_dtype: str, device_type: str) -> bool:
    """Whether ``model.state_dtype`` keeps the carry and the residual stream in autocast's dtype on
    this device type. ``auto``: on CUDA, as the reference's bf16 forward keeps them (half the bytes a
    compiled step moves through its norms and adds, and a tenth fewer saved for the backward); float32
    on the CPU, where bf16 states trained the quickstart slower and no better (BENCHMARKS section 17)."""
    return state_dtype == "autocast" or (state_dtype == "auto" and device_type == "cuda")


class RecursiveCore(nn.Module):
    def __init__(self, config: ModelConfig, token_io: bool = True):
        """``token_io=False`` leaves out the token embedding and LM head: HRM-LM feeds the core
        encoder states and reads its states through the bridge instead."""
        super().__init__()
        if config.vocab_size < 1 or config.seq_len < 1:
            raise ValueError("model.vocab_size and model.seq_len must be set (they come from the dataset)")
        if config.puzzle_emb_ndim > 0 and config.num_puzzle_identifiers < 1:
            raise ValueError("model.num_puzzle_identifiers must be set when puzzle_emb_ndim > 0")
        self.config = config
        # (H_cycles, L_cycles) that replace the config's while a depth curriculum trains shallower
        # (set_recursion_depth); None runs the config's depth, as evaluation always does.
        self.depth_override: tuple[int, int] | None = None
        hidden = config.hidden_size
        self.prefix_len = config.prefix_len
        self.grid_width = config.grid_width or math.isqrt(config.seq_len)
        self.total_len = config.seq_len + self.prefix_len
        self.embed_scale = math.sqrt(hidden)
        # Embeddings are scaled by sqrt(hidden) after lookup, so their init std is 1/sqrt(hidden).
        if token_io:
            self.embed_tokens = CastedEmbedding(config.vocab_size, hidden, 1.0 / self.embed_scale, torch.float32)
            self.lm_head = CastedLinear(hidden, config.vocab_size, bias=False)
        self.q_head = CastedLinear(hidden, 2, bias=True)
        if config.puzzle_emb_ndim > 0:
            self.puzzle_emb = CastedSparseEmbedding(config.num_puzzle_identifiers, config.puzzle_emb_ndim, 0.0, torch.float32)
        if config.pos_encodings in ("rope", "rope2d") and not config.mlp_t:
            grid_width = self.grid_width if config.pos_encodings == "rope2d" else 0
            self.rotary_emb = RotaryEmbedding(hidden // config.num_heads, self.total_len, config.rope_theta,
                                              grid_width, self.prefix_len)
        elif config.pos_encodings == "learned":
            self.embed_pos = CastedEmbedding(self.total_len, hidden, 1.0 / self.embed_scale, torch.float32)
        if config.grid_alibi and not config.mlp_t:
            grid_cells = config.seq_len // self.grid_width * self.grid_width
            self.register_buffer("grid_bias", grid_distance_bias(config.num_heads, self.total_len, self.prefix_len,
                                                                 self.grid_width, grid_cells), persistent=False)

        def module(num_layers: int) -> ReasoningModule:
            return ReasoningModule([
                Block(hidden, config.num_heads, config.expansion, config.rms_norm_eps, config.mlp_t, self.total_len)
                for _ in range(num_layers)])

        if config.variant == "hrm":
            self.H_level = module(config.H_layers)
        self.L_level = module(config.L_layers)
        self.register_buffer("H_init", trunc_normal_init_(torch.empty(hidden), std=1.0))
        self.register_buffer("L_init", trunc_normal_init_(torch.empty(hidden), std=1.0))
        with torch.no_grad():
            # Start by predicting "continue" strongly, so early training does not halt at random.
            self.q_head.weight.zero_()
            self.q_head.bias.fill_(-5.0)

    def state_dtype(self, device: torch.device) -> torch.dtype:
        """The dtype of the carry and the residual stream here and now (see `states_follow_autocast`);
        norms compute in float32 whatever it is."""
        if torch.is_autocast_enabled(device.type) and states_follow_autocast(self.config.state_dtype, device.type):
            return torch.get_autocast_dtype(device.type)
        return torch.float32

    # -- carry ---------------------------------------------------------------------------------
    def empty_carry(self, batch_size: int, seq_len: int | None = None) -> CoreCarry:
        """Initial states for ``seq_len`` tokens (default: the configured length) plus the prefix,
        in the state dtype."""
        shape = (batch_size, (seq_len or self.config.seq_len) + self.prefix_len, self.config.hidden_size)
        dtype = self.state_dtype(self.H_init.device)
        return CoreCarry(self.H_init.to(dtype).expand(shape).clone(), self.L_init.to(dtype).expand(shape).clone())

    def reset_carry(self, reset: torch.Tensor, carry: CoreCarry) -> CoreCarry:
        """Rows flagged in ``reset`` start again from the fixed initial states; the carry comes back in
        the state dtype (a carry saved by a run with other settings continues in this one's)."""
        flag, dtype = reset.view(-1, 1, 1), self.state_dtype(reset.device)
        return CoreCarry(torch.where(flag, self.H_init.to(dtype), carry.z_H.to(dtype)),
                         torch.where(flag, self.L_init.to(dtype), carry.z_L.to(dtype)))

    # -- one segment -----------------------------------------------------------------------------
    def input_embeddings(self, inputs: torch.Tensor, puzzle_identifiers: torch.Tensor,
                         puzzle_grad_sink: torch.Tensor | None = None) -> torch.Tensor:
        # Looked up in float32 and rounded to the state dtype before any arithmetic, as the reference
        # casts its tables to its forward dtype: the same values, and the sums below round alike.
        dtype = self.state_dtype(inputs.device)
        embedding = self.embed_tokens(inputs.long()).to(dtype)  # [batch, seq, hidden]
        if hasattr(self, "puzzle_emb"):
            puzzle = self.puzzle_emb(puzzle_identifiers, puzzle_grad_sink).to(dtype)  # [batch, ndim]
            puzzle = F.pad(puzzle, (0, self.prefix_len * self.config.hidden_size - puzzle.shape[-1]))  # whole positions
            embedding = torch.cat((puzzle.view(-1, self.prefix_len, self.config.hidden_size), embedding), dim=-2)
        if hasattr(self, "embed_pos"):
            # Scale by 1/sqrt(2) so the sum of two unit-variance embeddings keeps unit variance.
            embedding = 0.707106781 * (embedding + self.embed_pos.embedding_weight.to(dtype))
        return self.embed_scale * embedding

    def _cos_sin(self):
        return self.rotary_emb() if hasattr(self, "rotary_emb") else None

    def _bias(self):
        return getattr(self, "grid_bias", None)

    def cycles(self) -> tuple[int, int]:
        """(H_cycles, L_cycles) this segment runs: the config's, unless a depth curriculum set others."""
        return self.depth_override or (self.config.H_cycles, self.config.L_cycles)

    @torch.no_grad()
    def recurse_without_grad(self, z_H: torch.Tensor, z_L: torch.Tensor, x: torch.Tensor, key_mask=None):
        """Every update of a segment except those ``recurse_with_grad`` runs (no graph is kept).
        ``key_mask`` [batch, seq] bool marks real tokens when rows are padded (HRM-LM)."""
        cfg, cos_sin, bias = self.config, self._cos_sin(), self._bias()
        H_cycles, L_cycles = self.cycles()
        if cfg.variant == "hrm":
            for h_step in range(H_cycles):
                last_h = h_step == H_cycles - 1
                for l_step in range(L_cycles - 1 if last_h else L_cycles):
                    z_L = self.L_level(z_L, z_H + x, cos_sin, key_mask, bias)
                if not last_h:
                    z_H = self.H_level(z_H, z_L, cos_sin, key_mask, bias)
        else:
            for _ in range(H_cycles - 1):
                for _ in range(L_cycles):
                    z_L = self.L_level(z_L, z_H + x, cos_sin, key_mask, bias)  # latent update: z <- net(z + y + x)
                z_H = self.L_level(z_H, z_L, cos_sin, key_mask, bias)  # answer update: y <- net(y + z)
        return z_H, z_L

    def recurse_with_grad(self, z_H: torch.Tensor, z_L: torch.Tensor, x: torch.Tensor, key_mask=None):
        """HRM: the last L and the last H update (1-step gradient). TRM: the whole last recursion."""
        cfg, cos_sin, bias = self.config, self._cos_sin(), self._bias()
        if cfg.variant == "hrm":
            z_L = self.L_level(z_L, z_H + x, cos_sin, key_mask, bias)
            return self.H_level(z_H, z_L, cos_sin, key_mask, bias), z_L
        for _ in range(self.cycles()[1]):
            z_L = self.L_level(z_L, z_H + x, cos_sin, key_mask, bias)
        return self.L_level(z_H, z_L, cos_sin, key_mask, bias), z_L

    def q_logits(self, z_H: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q = self.q_head(z_H[:, 0]).float()  # the Q head reads position 0
        return q[..., 0], q[..., 1]

    def token_logits(self, z_H: torch.Tensor) -> torch.Tensor:
        return self.lm_head(z_H)[:, self.prefix_len:]  # drop the puzzle-embedding prefix

    def forward(self, carry: CoreCarry, batch: dict):
        """One full segment, as the reference's inner model: (new carry, logits, (q_halt, q_continue))."""
        x = self.input_embeddings(batch["inputs"], batch["puzzle_identifiers"])
        z_H, z_L = self.recurse_without_grad(carry.z_H, carry.z_L, x)
        z_H, z_L = self.recurse_with_grad(z_H, z_L, x)
        return CoreCarry(z_H.detach(), z_L.detach()), self.token_logits(z_H), self.q_logits(z_H)


def set_recursion_depth(model: nn.Module, depth: tuple[int, int] | None) -> None:
    """Run every recursive core inside ``model`` at (H_cycles, L_cycles) ``depth``; None: the config's."""
    for module in model.modules():
        if isinstance(module, RecursiveCore):
            module.depth_override = tuple(depth) if depth is not None else None
