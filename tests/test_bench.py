"""`hrm bench`: each kind runs on a tiny config and writes its figures as JSON.

Speeds are never asserted beyond > 0. What a fixed config determines is pinned to values derived
here by hand from the shapes: parameter counts, FLOPs per step (torch's FlopCounterMode credits a
matmul of [M, K] x [K, N] with 2*M*N*K and counts nothing else), tokens per example, batch sizes.
"""

import json

import pytest
import torch
import torch.nn.functional as F
from cli_helpers import hrm
from torch.utils.flop_counter import FlopCounterMode

TINY_PUZZLE = ["model.hidden_size=32", "model.L_layers=1", "model.vocab_size=6", "model.seq_len=16",
               "model.halt_max_steps=2"]
TINY_LM = ["model.hidden_size=32", "model.num_heads=2", "model.encoder_layers=1", "model.decoder_layers=1",
           "model.H_layers=1", "model.L_layers=1", "model.vocab_size=20", "model.seq_len=12"]
BATCH = 4


def swiglu_inner(hidden: int, expansion: float) -> int:
    """SwiGLU width: round(expansion * hidden * 2/3) rounded up to a multiple of 256."""
    return -(round(expansion * hidden * 2 / 3) // -256) * 256


def mm(m: int, k: int, n: int) -> int:
    return 2 * m * k * n


# -- quickstart_sudoku4 + TINY_PUZZLE: TRM, hidden D=32, one layer with the token-mixing MLP over L=16
# positions (no puzzle prefix, no attention), expansion 4, H_cycles T=2, L_cycles n=3, vocab V=6.
P_D, P_L, P_V, P_T, P_N, P_SEGMENTS = 32, 16, 6, 2, 3, 2
P_I_TOKENS, P_I_CHANNELS = swiglu_inner(P_L, 4), swiglu_inner(P_D, 4)  # 256 and 256
P_PARAMETERS = (P_V * P_D  # embed_tokens
                + P_V * P_D  # lm_head
                + 2 * P_D + 2  # q_head (weight and bias)
                + 3 * P_L * P_I_TOKENS  # mlp_t: gate_up [2I, L] + down [L, I]
                + 3 * P_D * P_I_CHANNELS)  # mlp: gate_up [2I, D] + down [D, I]
assert P_PARAMETERS == 37_314
# One pass of the net on [B, L, D]: mlp_t on the transposed [B*D, L] rows, then mlp on [B*L, D] rows.
P_NET = (mm(BATCH * P_D, P_L, 2 * P_I_TOKENS) + mm(BATCH * P_D, P_I_TOKENS, P_L)
         + mm(BATCH * P_L, P_D, 2 * P_I_CHANNELS) + mm(BATCH * P_L, P_I_CHANNELS, P_D))
P_HEADS = mm(BATCH * P_L, P_D, P_V) + mm(BATCH, P_D, 2)  # lm_head on every position, q_head on position 0
P_NETS_PER_SEGMENT = P_T * (P_N + 1)  # T recursions of n latent updates and one answer update
# eval: every example runs all halt_max_steps segments, forward only.
P_EVAL_FLOPS = P_SEGMENTS * (P_NETS_PER_SEGMENT * P_NET + P_HEADS)
# train: one segment forward; backward through the last recursion (n + 1 nets) and both heads, where each
# matmul costs twice its forward (grad of input and of weight: the embedding feeds every net input).
P_TRAIN_FLOPS = (P_NETS_PER_SEGMENT * P_NET + P_HEADS) + 2 * ((P_N + 1) * P_NET + P_HEADS)
assert (P_EVAL_FLOPS, P_TRAIN_FLOPS) == (100_713_472, 100_738_560)

# -- arithmetic + TINY_LM: HRM-LM, hidden D=32, 2 heads, expansion 2, one encoder, H, L and decoder block,
# H_cycles 2, L_cycles 2, halt_max_steps 1 (so no Q loss), prompts of Te=12 tokens, answers of Td=6.
A_D, A_HEADS, A_V, A_TE, A_TD, A_H_CYCLES, A_L_CYCLES = 32, 2, 20, 12, 6, 2, 2
A_I = swiglu_inner(A_D, 2)  # 256
A_BLOCK_PARAMS = 4 * A_D * A_D + 3 * A_D * A_I  # qkv [3D, D] + o [D, D]; SwiGLU
A_PARAMETERS = (A_V * A_D  # embed_tokens
                + A_BLOCK_PARAMS  # encoder block
                + 2 * A_BLOCK_PARAMS + 2 * A_D + 2  # core: H block, L block, q_head
                + A_D * A_D + A_D  # bridge_proj, bridge_gate
                + 4 * A_D * A_D + 4 * A_D * A_D + 3 * A_D * A_I  # decoder: self-attn, cross-attn (q, kv, o), SwiGLU
                + A_V * A_D)  # lm_head
assert A_PARAMETERS == 121_186


def a_block(rows: int) -> int:
    """Projections and SwiGLU of one post-norm block over `rows` token states (attention products apart)."""
    return mm(rows, A_D, 3 * A_D) + mm(rows, A_D, A_D) + mm(rows, A_D, 2 * A_I) + mm(rows, A_I, A_D)


A_ENC_ROWS, A_DEC_ROWS = BATCH * A_TE, BATCH * A_TD
A_CORE_BLOCKS = A_H_CYCLES * A_L_CYCLES + A_H_CYCLES  # 4 L updates + 2 H updates in the one segment
A_CORE_GRAD_BLOCKS = 2  # HRM's 1-step gradient: the last L and the last H update
A_BRIDGE = mm(A_ENC_ROWS, A_D, A_D)
A_DECODER = (mm(A_DEC_ROWS, A_D, 3 * A_D) + mm(A_DEC_ROWS, A_D, A_D)  # causal self-attention projections
             + mm(A_DEC_ROWS, A_D, A_D) + mm(A_ENC_ROWS, A_D, 2 * A_D) + mm(A_DEC_ROWS, A_D, A_D)  # cross: q, kv of memory, o
             + mm(A_DEC_ROWS, A_D, 2 * A_I) + mm(A_DEC_ROWS, A_I, A_D))
A_LM_HEAD = mm(A_DEC_ROWS, A_D, A_V)
A_Q_HEAD = mm(BATCH, A_D, 2)
A_FORWARD = a_block(A_ENC_ROWS) + A_CORE_BLOCKS * a_block(A_ENC_ROWS) + A_Q_HEAD + A_BRIDGE + A_DECODER + A_LM_HEAD
# Backward: twice the forward of what the graph holds (no Q head: its loss needs more than one segment).
A_GRAPH = a_block(A_ENC_ROWS) + A_CORE_GRAD_BLOCKS * a_block(A_ENC_ROWS) + A_BRIDGE + A_DECODER + A_LM_HEAD
A_EVAL_MATMUL_FLOPS, A_TRAIN_MATMUL_FLOPS = A_FORWARD, A_FORWARD + 2 * A_GRAPH
assert (A_EVAL_MATMUL_FLOPS, A_TRAIN_MATMUL_FLOPS) == (21_068_288, 41_183_744)


def counted_attention_flops(q_len: int, k_len: int, backward: bool, **sdpa_kwargs) -> int:
    """What FlopCounterMode credits to one CPU SDPA call of the bench's shapes (forward, or forward + backward).

    On the CPU torch runs its flash-attention kernel, for which FlopCounterMode has no formula: it credits
    0 (torch 2.13). A torch that takes the math path instead counts the two products, Q K^T and P V, as
    4*B*h*Tq*Tk*hd (backward: twice that). Only those two outcomes are accepted."""
    head_dim = A_D // A_HEADS
    q = torch.randn(BATCH, A_HEADS, q_len, head_dim, requires_grad=backward)
    k = torch.randn(BATCH, A_HEADS, k_len, head_dim, requires_grad=backward)
    v = torch.randn(BATCH, A_HEADS, k_len, head_dim, requires_grad=backward)
    with FlopCounterMode(display=False) as counter:
        out = F.scaled_dot_product_attention(q, k, v, **sdpa_kwargs)
        if backward:
            out.sum().backward()
    products = 4 * BATCH * A_HEADS * q_len * k_len * head_dim
    flops = counter.get_total_flops()
    assert flops in (0, products * (3 if backward else 1)), flops
    return flops


def arithmetic_attention_flops(backward: bool) -> int:
    mask = torch.ones(BATCH, 1, 1, A_TE, dtype=torch.bool)
    encoder_like = counted_attention_flops(A_TE, A_TE, backward, attn_mask=mask)  # encoder and core blocks
    causal = counted_attention_flops(A_TD, A_TD, backward, is_causal=True)
    cross = counted_attention_flops(A_TD, A_TE, backward, attn_mask=mask)
    if not backward:  # eval: all forward
        return (1 + A_CORE_BLOCKS) * encoder_like + causal + cross
    forward_only = counted_attention_flops(A_TE, A_TE, False, attn_mask=mask)
    # train: encoder and the core's graph blocks forward+backward, the core's no-grad blocks forward only
    return ((1 + A_CORE_GRAD_BLOCKS) * encoder_like + (A_CORE_BLOCKS - A_CORE_GRAD_BLOCKS) * forward_only
            + causal + cross)


def expected_figures(what: str, config: str) -> dict:
    if config == "quickstart_sudoku4":
        flops = P_TRAIN_FLOPS if what == "train" else P_EVAL_FLOPS
        return {"parameters": P_PARAMETERS, "flops": flops, "tokens_per_example": P_L, "variant": "trm", "task": "puzzle"}
    matmuls = A_TRAIN_MATMUL_FLOPS if what == "train" else A_EVAL_MATMUL_FLOPS
    return {"parameters": A_PARAMETERS, "flops": matmuls + arithmetic_attention_flops(backward=what == "train"),
            "tokens_per_example": A_TE + A_TD, "variant": "hrm", "task": "seq2seq"}


@pytest.mark.cli
def test_bench_train_and_eval_report_figures_for_both_task_families(tmp_path):
    for what, config, overrides in (("train", "quickstart_sudoku4", TINY_PUZZLE), ("eval", "quickstart_sudoku4", TINY_PUZZLE),
                                    ("train", "arithmetic", TINY_LM), ("eval", "arithmetic", TINY_LM)):
        out = tmp_path / f"{what}-{config}.json"
        result = hrm("bench", what, "--config", config, "--batch", str(BATCH), "--steps", "2", "--warmup", "1",
                     "--json", str(out), *overrides)
        assert f"{what} {config}" in result.stdout and "samples/s" in result.stdout
        step_is = {("train", "quickstart_sudoku4"): "one ACT segment of the batch, forward and backward",
                   ("eval", "quickstart_sudoku4"): "all 2 ACT segments of the batch, forward",  # TINY_PUZZLE's halt_max_steps
                   ("train", "arithmetic"): "encoder, core and decoder, forward and backward",
                   ("eval", "arithmetic"): "a teacher-forced forward"}[(what, config)]
        assert f"ms/step (a step: {step_is})" in result.stdout  # eval times every segment, training one
        assert "GiB of the process (RSS)" in result.stdout  # on the CPU: the whole process, imports included
        figures = json.loads(out.read_text())
        expected = expected_figures(what, config)
        assert figures["what"] == what and figures["batch"] == BATCH and figures["steps_timed"] == 2
        assert (figures["task"], figures["variant"]) == (expected["task"], expected["variant"])
        assert figures["parameters"] == expected["parameters"], (what, config)
        assert f"{expected['parameters']:,} params" in result.stdout
        assert figures["gflop_per_step"] == pytest.approx(expected["flops"] / 1e9, rel=1e-12), (what, config)
        # Speeds: only > 0 (never timed). Figures derived from the same median time must agree exactly.
        assert figures["samples_per_s"] > 0 and figures["tokens_per_s"] > 0 and figures["gflop_per_s"] > 0
        assert figures["tokens_per_s"] == pytest.approx(figures["samples_per_s"] * expected["tokens_per_example"],
                                                        rel=1e-9), (what, config, "tokens per example")
        assert figures["ms_per_step"] * figures["samples_per_s"] == pytest.approx(1000 * BATCH, rel=1e-9)
        assert figures["gflop_per_s"] * figures["ms_per_step"] == pytest.approx(1000 * figures["gflop_per_step"], rel=1e-9)
        assert figures["mfu"] is None  # only on a GPU whose peak is known


@pytest.mark.cli
def test_bench_generate_times_cached_and_uncached_decoding(tmp_path):
    out = tmp_path / "generate.json"
    result = hrm("bench", "generate", "--config", "arithmetic", "--new-tokens", "4,8", "--steps", "1",
                 "--json", str(out), *TINY_LM)
    assert result.stdout.count("speed-up") == 2
    rows = json.loads(out.read_text())
    assert [row["new_tokens"] for row in rows] == [4, 8]
    # The model's seq_len grows to the prompt (32 tokens); with RoPE that changes no parameter.
    for row in rows:
        assert (row["batch"], row["prompt_tokens"], row["parameters"]) == (1, 32, A_PARAMETERS), row
        assert row["cached_tokens_per_s"] > 0 and row["uncached_tokens_per_s"] > 0
        assert row["speedup"] == pytest.approx(row["cached_tokens_per_s"] / row["uncached_tokens_per_s"], rel=1e-9)


def test_bench_generate_decodes_in_the_precision_it_names(monkeypatch):
    """hrm generate runs a model in its run's precision; bench generate timed fp32 whatever --precision said."""
    import torch.nn.functional as F

    from hrmkit.bench import bench_generate
    from hrmkit.config import load_run_config

    linear, produced = F.linear, set()

    def recording_linear(*args, **kwargs):
        out = linear(*args, **kwargs)
        produced.add(out.dtype)
        return out

    monkeypatch.setattr(F, "linear", recording_linear)
    for precision, dtype in (("bf16", torch.bfloat16), ("fp32", torch.float32)):
        produced.clear()
        cfg = load_run_config("arithmetic", {"model": {"vocab_size": 32, "hidden_size": 32, "num_heads": 2},
                                             "train": {"precision": precision, "device": "cpu"}})
        rows = bench_generate(cfg, [2], repeats=1)
        assert rows[0]["precision"] == precision and produced == {dtype}


@pytest.mark.cli
def test_bench_eval_of_a_puzzle_config_times_the_compiled_model_when_asked(tmp_path):
    """A compiling run evaluates its compiled model: bench eval --compile true timed the eager one and said
    'compile: false'. The FLOPs are the same operations either way."""
    out = tmp_path / "eval.json"
    result = hrm("bench", "eval", "--config", "quickstart_sudoku4", "--batch", str(BATCH), "--steps", "1",
                 "--warmup", "1", "--compile", "true", "--json", str(out), *TINY_PUZZLE)
    figures = json.loads(out.read_text())
    assert figures["compile"] is True and " compiled " in result.stdout
    assert figures["gflop_per_step"] == pytest.approx(expected_figures("eval", "quickstart_sudoku4")["flops"] / 1e9,
                                                      rel=1e-12)
