"""Building blocks shared by HRM and TRM, with the reference's parameter names.

Parameter names (``qkv_proj``, ``gate_up_proj``, ``embedding_weight`` ...) match the reference
implementation so that its checkpoints load without renaming.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def trunc_normal_init_(tensor: torch.Tensor, std: float = 1.0, lower: float = -2.0, upper: float = 2.0) -> torch.Tensor:
    """Truncated normal whose *resulting* standard deviation is ``std`` (JAX-style LeCun init).

    torch's ``trunc_normal_`` takes the std of the untruncated normal; truncation at ±2σ shrinks
    it by ~12 %, so the reference (and we) scale the pre-truncation std back up.
    """
    with torch.no_grad():
        if std == 0:
            return tensor.zero_()
        sqrt2 = math.sqrt(2.0)
        cdf_lower, cdf_upper = math.erf(lower / sqrt2), math.erf(upper / sqrt2)
        mass = (cdf_upper - cdf_lower) / 2
        density = (2 * math.pi) ** -0.5
        pdf_lower, pdf_upper = density * math.exp(-0.5 * lower**2), density * math.exp(-0.5 * upper**2)
        truncated_var = 1 - (upper * pdf_upper - lower * pdf_lower) / mass - ((pdf_upper - pdf_lower) / mass) ** 2
        scaled_std = std / math.sqrt(truncated_var)
        tensor.uniform_(cdf_lower, cdf_upper).erfinv_().mul_(sqrt2 * scaled_std)
        return tensor.clip_(lower * scaled_std, upper * scaled_std)


def rms_norm(hidden: torch.Tensor, eps: float) -> torch.Tensor:
    """RMSNorm without a learnable scale, computed in float32 for stability."""
    dtype = hidden.dtype
    hidden = hidden.float()
    hidden = hidden * torch.rsqrt(hidden.square().mean(-1, keepdim=True) + eps)
    return hidden.to(dtype)


def find_multiple(value: int, multiple: int) -> int:
    return -(value // -multiple) * multiple


class CastedLinear(nn.Module):
    """Linear layer with fp32 master weights cast to the activation dtype (LeCun-normal init)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = False):
        super().__init__()
        self.weight = nn.Parameter(trunc_normal_init_(torch.empty(out_features, in_features), std=in_features**-0.5))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias.to(x.dtype)
        return F.linear(x, self.weight.to(x.dtype), bias)


class CastedEmbedding(nn.Module):
    def __init__(self, num_embeddings: int, embedding_dim: int, init_std: float, cast_to: torch.dtype):
        super().__init__()
        self.cast_to = cast_to
        self.embedding_weight = nn.Parameter(trunc_normal_init_(torch.empty(num_embeddings, embedding_dim), std=init_std))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return F.embedding(ids, self.embedding_weight.to(self.cast_to))


def grid_coordinates(total_len: int, prefix: int, grid_width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(row, column) of each position of a row-major grid that starts after `prefix` positions.
    Positions past the grid (e.g. routing's trailing vehicle token) continue as further rows;
    prefix positions count back from -1."""
    positions = torch.arange(total_len) - prefix
    return torch.div(positions, grid_width, rounding_mode="floor"), torch.remainder(positions, grid_width)


class RotaryEmbedding(nn.Module):
    """cos/sin tables for RoPE; not persistent, so checkpoints never carry them (as the reference).

    With `grid_width` (rope2d), half of each head's rotary pairs turn with the grid row and half
    with the column, so attention sees both offsets of a cell pair instead of one flattened
    distance, in which a cell's lower neighbour is as far as a cell `grid_width` steps along its row.
    """

    def __init__(self, head_dim: int, max_positions: int, base: float, grid_width: int = 0, prefix: int = 0):
        super().__init__()
        if grid_width:
            if head_dim % 4:
                raise ValueError(f"rope2d needs a head size divisible by 4, got {head_dim}")
            inv_freq = _inverse_frequencies(head_dim // 2, base)  # per axis
            rows, columns = grid_coordinates(max_positions, prefix, grid_width)
            angles = torch.cat((torch.outer(rows.float(), inv_freq), torch.outer(columns.float(), inv_freq)), dim=-1)
        else:
            angles = torch.outer(torch.arange(max_positions, dtype=torch.float32), _inverse_frequencies(head_dim, base))
        angles = torch.cat((angles, angles), dim=-1)  # [positions, head_dim]
        self.register_buffer("cos_cached", angles.cos(), persistent=False)
        self.register_buffer("sin_cached", angles.sin(), persistent=False)

    def forward(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.cos_cached, self.sin_cached


def _inverse_frequencies(rotary_dim: int, base: float) -> torch.Tensor:
    return 1.0 / (base ** (torch.arange(0, rotary_dim, 2, dtype=torch.float32) / rotary_dim))


def grid_distance_bias(num_heads: int, total_len: int, prefix: int, grid_width: int, grid_cells: int) -> torch.Tensor:
    """[heads, total_len, total_len] attention-score bias of -slope_h * (grid distance): ALiBi on a
    grid. Head h has slope 2^-h, so the first head favours a cell's neighbours and the last looks
    almost anywhere. The distance is Manhattan over `grid_coordinates`; pairs with a position off
    the grid's `grid_cells` cells get 0."""
    rows, columns = grid_coordinates(total_len, prefix, grid_width)
    distance = (rows[:, None] - rows[None, :]).abs() + (columns[:, None] - columns[None, :]).abs()
    positions = torch.arange(total_len) - prefix
    on_grid = (positions >= 0) & (positions < grid_cells)
    distance = distance.where(on_grid[:, None] & on_grid[None, :], 0).float()
    slopes = 2.0 ** -torch.arange(num_heads, dtype=torch.float32)
    return -slopes[:, None, None] * distance


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x: [batch, seq, heads, head_dim], as the QKV projection lays it out; cos/sin: [seq, head_dim].
    Rotating before the heads move in front of the sequence (and slicing, not chunking, the halves)
    lets the compiler fuse the rotation's backward into one kernel per tensor."""
    dtype = x.dtype
    x = x.float()
    cos, sin = cos.unsqueeze(-2), sin.unsqueeze(-2)  # broadcast over heads
    return (x * cos + _rotate_half(x) * sin).to(dtype)


class Attention(nn.Module):
    """Non-causal multi-head attention through torch SDPA (any device, no flash-attn)."""

    def __init__(self, hidden_size: int, num_heads: int):
        super().__init__()
        if hidden_size % num_heads:
            raise ValueError(f"hidden_size {hidden_size} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = hidden_size // num_heads
        self.qkv_proj = CastedLinear(hidden_size, 3 * hidden_size, bias=False)
        self.o_proj = CastedLinear(hidden_size, hidden_size, bias=False)

    def forward(self, hidden: torch.Tensor, cos_sin: tuple[torch.Tensor, torch.Tensor] | None,
                key_mask: torch.Tensor | None = None, bias: torch.Tensor | None = None) -> torch.Tensor:
        """``key_mask`` [batch, seq] bool: False marks padding that no position may attend to.
        ``bias`` [heads, seq, seq]: added to the attention scores (see `grid_distance_bias`)."""
        batch, seq, _ = hidden.shape
        qkv = self.qkv_proj(hidden).view(batch, seq, 3, self.num_heads, self.head_dim)
        query, key, value = qkv.unbind(2)  # each [batch, seq, heads, head_dim]
        if cos_sin is not None:
            cos, sin = cos_sin
            query, key = apply_rotary(query, cos[:seq], sin[:seq]), apply_rotary(key, cos[:seq], sin[:seq])
        query, key, value = (t.transpose(1, 2) for t in (query, key, value))  # [batch, heads, seq, head_dim]
        mask = None if key_mask is None else key_mask[:, None, None, :]
        if bias is not None:
            bias = bias.to(query.dtype)
            mask = bias if mask is None else bias.masked_fill(~mask, float("-inf"))
        out = F.scaled_dot_product_attention(query, key, value, attn_mask=mask)
        return self.o_proj(out.transpose(1, 2).reshape(batch, seq, -1))


class _GatedDown(torch.autograd.Function):
    """``(silu(gate) * up) @ down.T`` that keeps only ``gate_up`` for backward.

    Autograd would keep silu(gate) and the product too: for the recursion's stack of SwiGLUs that
    is about half of all saved activations. Recomputing both in backward costs two elementwise
    passes, no matmul.
    """

    @staticmethod
    def forward(ctx, gate_up: torch.Tensor, down: torch.Tensor) -> torch.Tensor:
        gate, up = gate_up.chunk(2, dim=-1)
        ctx.save_for_backward(gate_up, down)
        return F.linear(F.silu(gate) * up, down)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        gate_up, down = ctx.saved_tensors
        gate, up = gate_up.chunk(2, dim=-1)
        silu = F.silu(gate)
        grad_hidden = grad_out @ down  # [..., inter]
        hidden = (silu * up).reshape(-1, up.shape[-1])
        grad_down = grad_out.reshape(-1, grad_out.shape[-1]).T @ hidden
        grad_gate = torch.ops.aten.silu_backward(grad_hidden * up, gate)  # one fused kernel
        return torch.cat((grad_gate, grad_hidden * silu), dim=-1), grad_down


class SwiGLU(nn.Module):
    """SwiGLU FFN; inner width is round(expansion * hidden * 2/3) rounded up to a multiple of 256."""

    def __init__(self, hidden_size: int, expansion: float):
        super().__init__()
        inter = find_multiple(round(expansion * hidden_size * 2 / 3), 256)
        self.gate_up_proj = CastedLinear(hidden_size, inter * 2, bias=False)
        self.down_proj = CastedLinear(inter, hidden_size, bias=False)

    # Below this many gate_up elements the recompute costs more time than the memory it saves
    # (measured on CPU: 7 % slower for the quickstart's tiny activations, 10 % faster for TRM Sudoku).
    recompute_min_elements = 6 << 20

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate_up = self.gate_up_proj(x)
        down = self.down_proj.weight.to(gate_up.dtype)
        if torch.is_grad_enabled() and gate_up.numel() >= self.recompute_min_elements:
            return _GatedDown.apply(gate_up, down)
        gate, up = gate_up.chunk(2, dim=-1)
        return F.linear(F.silu(gate) * up, down)


class Block(nn.Module):
    """Post-norm transformer block. With ``mlp_t`` a token-mixing SwiGLU over the sequence axis
    replaces attention (TRM's variant for small fixed grids such as Sudoku)."""

    def __init__(self, hidden_size: int, num_heads: int, expansion: float, norm_eps: float,
                 mlp_t: bool = False, total_seq_len: int = 0):
        super().__init__()
        self.norm_eps = norm_eps
        if mlp_t:
            self.mlp_t = SwiGLU(total_seq_len, expansion)
        else:
            self.self_attn = Attention(hidden_size, num_heads)
        self.mlp = SwiGLU(hidden_size, expansion)

    def forward(self, hidden: torch.Tensor, cos_sin=None, key_mask: torch.Tensor | None = None,
                bias: torch.Tensor | None = None) -> torch.Tensor:
        if hasattr(self, "mlp_t"):
            mixed = hidden.transpose(1, 2)  # [batch, hidden, seq]: mix across positions
            hidden = rms_norm(mixed + self.mlp_t(mixed), self.norm_eps).transpose(1, 2)
        else:
            hidden = rms_norm(hidden + self.self_attn(hidden, cos_sin, key_mask, bias), self.norm_eps)
        return rms_norm(hidden + self.mlp(hidden), self.norm_eps)


class ReasoningModule(nn.Module):
    """A stack of blocks whose input is the state plus the injected signal (injection by addition)."""

    def __init__(self, layers: list[Block]):
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, hidden: torch.Tensor, injection: torch.Tensor, cos_sin=None, key_mask=None, bias=None) -> torch.Tensor:
        hidden = hidden + injection
        for layer in self.layers:
            hidden = layer(hidden, cos_sin, key_mask, bias)
        return hidden
