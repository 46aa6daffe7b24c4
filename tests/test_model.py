"""The recursive core and ACT: parameter counts, gradient paths, halting, Q targets, losses."""

import math

import pytest
import torch

from hrmkit.config import PRESETS_DIR, ModelConfig, load_run_config
from hrmkit.model.act import ACTModel
from hrmkit.model.core import CoreCarry
from hrmkit.model.losses import (
    IGNORE_LABEL_ID,
    act_loss,
    log_stablemax,
    stablemax_cross_entropy,
)


def tiny(variant="hrm", **overrides) -> ModelConfig:
    values = dict(variant=variant, hidden_size=32, num_heads=2, H_layers=1, L_layers=1, H_cycles=2, L_cycles=2,
                  halt_max_steps=4, vocab_size=7, seq_len=9, num_puzzle_identifiers=3, halt_exploration_prob=0.0)
    values.update(overrides)
    return ModelConfig(**values)


def batch_for(cfg: ModelConfig, size=4, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return {"inputs": torch.randint(0, cfg.vocab_size, (size, cfg.seq_len), generator=gen, dtype=torch.int32),
            "labels": torch.randint(0, cfg.vocab_size, (size, cfg.seq_len), generator=gen),
            "puzzle_identifiers": torch.randint(0, max(cfg.num_puzzle_identifiers, 1), (size,), generator=gen, dtype=torch.int32)}


def count_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("preset,expected", [("hrm_v1", 27_275_266), ("trm_sudoku_mlp", 5_028_866), ("trm_sudoku_att", 6_828_034)])
def test_preset_parameter_counts_match_the_reference(preset, expected):
    cfg = load_run_config(preset)
    assert count_params(ACTModel(cfg.model)) == expected


def test_quickstart_model_has_the_reference_tiny_parameter_count():
    cfg = load_run_config("quickstart_sudoku4").model
    cfg.vocab_size, cfg.seq_len = 6, 16
    assert count_params(ACTModel(cfg)) == 419_586


def test_puzzle_embedding_is_a_buffer_and_prefix_positions_are_dropped_from_logits():
    cfg = tiny("hrm", puzzle_emb_ndim=40)  # ceil(40 / 32) = 2 prefix positions
    model = ACTModel(cfg)
    assert "inner.puzzle_emb.weights" in dict(model.named_buffers())
    assert "inner.puzzle_emb.weights" not in dict(model.named_parameters())
    batch = batch_for(cfg)
    carry, out = model(carry=model.initial_carry(batch), batch=batch)
    assert carry.inner_carry.z_H.shape == (4, cfg.seq_len + 2, cfg.hidden_size)
    assert out["logits"].shape == (4, cfg.seq_len, cfg.vocab_size)
    assert out["q_halt_logits"].shape == out["q_continue_logits"].shape == (4,)


@pytest.mark.parametrize("variant", ["hrm", "trm"])
def test_zero_puzzle_embedding_works_for_both_variants(variant):
    cfg = tiny(variant, puzzle_emb_ndim=0, puzzle_emb_len=16)
    model = ACTModel(cfg)
    batch = batch_for(cfg)
    _, out = model(carry=model.initial_carry(batch), batch=batch)
    assert out["logits"].shape == (4, cfg.seq_len, cfg.vocab_size)


def test_rope_turns_each_pair_of_every_head_by_its_positions_angle():
    """Written out independently: the pair (i, i + half) of a head at position p is a complex number
    turned by p * base^(-2i / head_dim); the input is laid out [batch, seq, heads, head_dim]."""
    from hrmkit.model.layers import RotaryEmbedding, apply_rotary
    batch, seq, heads, head_dim, base = 2, 7, 3, 8, 10000.0
    cos, sin = RotaryEmbedding(head_dim, seq, base)()
    x = torch.randn(batch, seq, heads, head_dim, generator=torch.Generator().manual_seed(0))
    half = head_dim // 2
    angle = torch.arange(seq)[:, None] * base ** (-torch.arange(half) * 2 / head_dim)  # [seq, half]
    turned = torch.complex(x[..., :half], x[..., half:]) * torch.polar(torch.ones(seq, half), angle)[:, None, :]
    expected = torch.cat((turned.real, turned.imag), dim=-1)
    torch.testing.assert_close(apply_rotary(x, cos, sin), expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(apply_rotary(x.bfloat16(), cos, sin).float(), expected, rtol=2e-2, atol=2e-2)


def test_grid_rope_scores_depend_only_on_the_row_and_column_offsets():
    from hrmkit.model.layers import RotaryEmbedding, apply_rotary
    prefix, width = 2, 5
    cos, sin = RotaryEmbedding(16, prefix + 26, 10000.0, width, prefix)()
    gen = torch.Generator().manual_seed(0)
    q, k = (apply_rotary(torch.randn(16, generator=gen).expand(1, prefix + 26, 1, 16), cos, sin)[0, :, 0] for _ in "qk")

    def score(cell_a, cell_b):  # (row, column) -> position
        return float(q[prefix + cell_a[0] * width + cell_a[1]] @ k[prefix + cell_b[0] * width + cell_b[1]])

    assert score((0, 0), (1, 2)) == pytest.approx(score((3, 2), (4, 4)), abs=1e-4)  # one down, two right
    assert score((0, 4), (1, 4)) == pytest.approx(score((2, 1), (3, 1)), abs=1e-4)  # the cell below
    # Flattened, the cell below is `width` positions on; on the grid it is not the cell 5 to the right.
    assert score((0, 0), (1, 0)) != pytest.approx(score((0, 0), (0, 4)), abs=1e-3)


def test_grid_rope_model_runs_and_its_config_is_validated():
    cfg = tiny("trm", pos_encodings="rope2d", grid_width=3, puzzle_emb_ndim=0)
    model = ACTModel(cfg)
    batch = batch_for(cfg)
    _, out = model(carry=model.initial_carry(batch), batch=batch)
    assert out["logits"].shape == (4, cfg.seq_len, cfg.vocab_size)
    assert "grid_width must be >= 0" in " ".join(tiny("trm", pos_encodings="rope2d", grid_width=-1).validate())
    derived = ACTModel(tiny("trm", pos_encodings="rope2d")).inner.rotary_emb  # seq_len 9: a 3x3 grid
    torch.testing.assert_close(derived.cos_cached, model.inner.rotary_emb.cos_cached)
    assert "divisible by 4" in " ".join(tiny("trm", pos_encodings="rope2d", grid_width=3, hidden_size=36, num_heads=6).validate())


def test_grid_alibi_favours_near_cells_per_head_and_leaves_off_grid_positions_alone():
    from hrmkit.model.layers import grid_distance_bias
    prefix, width = 1, 4
    bias = grid_distance_bias(3, prefix + 17, prefix, width, 16)  # a 4x4 grid, then one extra token
    cell = lambda row, column: prefix + row * width + column  # noqa: E731
    assert bias[0, cell(1, 1), cell(1, 2)] == bias[0, cell(1, 1), cell(2, 1)] == -1.0  # neighbours
    assert bias[0, cell(0, 0), cell(3, 3)] == -6.0 and bias[2, cell(0, 0), cell(3, 3)] == -1.5  # slope 2^-h
    assert (bias[:, 0] == 0).all() and (bias[:, :, -1] == 0).all()  # prefix and trailing token: no bias
    cfg = tiny("trm", pos_encodings="rope2d", grid_alibi=True, seq_len=17, grid_width=4, puzzle_emb_ndim=0)
    model = ACTModel(cfg)
    assert "inner.grid_bias" not in model.state_dict()  # rebuilt from the config, never saved
    batch = batch_for(cfg)
    _, out = model(carry=model.initial_carry(batch), batch=batch)
    _, plain = ACTModel(tiny("trm", pos_encodings="rope2d", seq_len=17, grid_width=4, puzzle_emb_ndim=0))(
        carry=model.initial_carry(batch), batch=batch)
    assert out["logits"].shape == plain["logits"].shape and not torch.allclose(out["logits"], plain["logits"])


@pytest.mark.parametrize("pos_encodings", ["learned", "rope", "rope2d"])
def test_grid_alibi_leaves_the_position_encoding_in_place(pos_encodings):
    with_bias = ACTModel(tiny("trm", pos_encodings=pos_encodings, grid_alibi=True)).inner
    without = ACTModel(tiny("trm", pos_encodings=pos_encodings)).inner
    assert hasattr(with_bias, "grid_bias") and not hasattr(without, "grid_bias")
    assert hasattr(with_bias, "embed_pos") == hasattr(without, "embed_pos") == (pos_encodings == "learned")
    assert hasattr(with_bias, "rotary_emb") == hasattr(without, "rotary_emb") == (pos_encodings != "learned")


def test_attention_takes_a_key_mask_and_a_bias_together():
    from hrmkit.model.layers import Attention
    attention = Attention(16, 2)
    hidden = torch.randn(2, 5, 16)
    key_mask = torch.tensor([[True] * 5, [True, True, True, False, False]])
    bias = torch.zeros(2, 5, 5)
    torch.testing.assert_close(attention(hidden, None, key_mask, bias), attention(hidden, None, key_mask))
    # Padding stays invisible under a bias: changing the padded tokens changes no real position.
    bias = torch.randn(2, 5, 5)
    changed = hidden.clone()
    changed[1, 3:] = torch.randn(2, 16)
    torch.testing.assert_close(attention(changed, None, key_mask, bias)[1, :3], attention(hidden, None, key_mask, bias)[1, :3])


def _count_module_calls_with_grad(model, cycles_cfg):
    calls = {"H": 0, "L": 0}

    def hook(name):
        def record(module, inputs, output):
            if output.requires_grad:
                calls[name] += 1
        return record

    if hasattr(model.inner, "H_level"):
        model.inner.H_level.register_forward_hook(hook("H"))
    model.inner.L_level.register_forward_hook(hook("L"))
    batch = batch_for(cycles_cfg)
    model.train()
    model(carry=model.initial_carry(batch), batch=batch)
    return calls


@pytest.mark.parametrize("h_cycles,l_cycles", [(1, 1), (2, 2), (4, 3)])
def test_hrm_one_step_gradient_only_last_L_and_H_updates_carry_gradient(h_cycles, l_cycles):
    cfg = tiny("hrm", H_cycles=h_cycles, L_cycles=l_cycles)
    calls = _count_module_calls_with_grad(ACTModel(cfg), cfg)
    assert calls == {"H": 1, "L": 1}  # the graph does not grow with the number of cycles


@pytest.mark.parametrize("h_cycles,l_cycles", [(1, 2), (3, 6)])
def test_trm_backpropagates_through_the_last_recursion_only(h_cycles, l_cycles):
    cfg = tiny("trm", H_cycles=h_cycles, L_cycles=l_cycles)
    calls = _count_module_calls_with_grad(ACTModel(cfg), cfg)
    assert calls == {"H": 0, "L": l_cycles + 1}  # n latent updates + one answer update


def test_carry_is_detached_and_reset_rows_start_from_init_states():
    cfg = tiny("hrm")
    model = ACTModel(cfg)
    batch = batch_for(cfg)
    carry, _ = model(carry=model.initial_carry(batch), batch=batch)
    assert not carry.inner_carry.z_H.requires_grad and not carry.inner_carry.z_L.requires_grad
    reset = torch.tensor([True, False, True, False])
    fresh = model.inner.reset_carry(reset, carry.inner_carry)
    assert torch.equal(fresh.z_H[0], model.inner.H_init.expand_as(fresh.z_H[0]))
    assert torch.equal(fresh.z_L[2], model.inner.L_init.expand_as(fresh.z_L[2]))
    assert torch.equal(fresh.z_H[1], carry.inner_carry.z_H[1])


def test_halted_rows_take_new_data_and_restart_their_step_count():
    cfg = tiny("trm", halt_max_steps=2)
    model = ACTModel(cfg).train()
    first, second = batch_for(cfg, seed=1), batch_for(cfg, seed=2)
    carry = model.initial_carry(first)
    carry, _ = model(carry=carry, batch=first)
    assert torch.equal(carry.current_data["inputs"], first["inputs"])
    carry.halted = torch.tensor([True, False, True, False])
    carry, _ = model(carry=carry, batch=second)
    assert torch.equal(carry.current_data["inputs"][0], second["inputs"][0])
    assert torch.equal(carry.current_data["inputs"][1], first["inputs"][1])
    assert carry.steps.tolist() == [1, 2, 1, 2]
    assert carry.halted[1] and carry.halted[3]  # halt_max_steps reached


def test_evaluation_never_halts_before_the_last_segment():
    cfg = tiny("hrm", halt_max_steps=3)
    model = ACTModel(cfg).eval()
    with torch.no_grad():
        model.inner.q_head.bias.copy_(torch.tensor([10.0, -10.0]))  # the Q head begs to halt
    batch = batch_for(cfg)
    carry = model.initial_carry(batch)
    halted = []
    for _ in range(3):
        carry, _ = model(carry=carry, batch=batch)
        halted.append(bool(carry.halted.all()))
    assert halted == [False, False, True]


def test_training_halts_when_q_halt_wins_and_trm_halts_on_q_halt_alone():
    for variant, bias, expect in [("hrm", [1.0, 2.0], False), ("hrm", [2.0, 1.0], True),
                                  ("trm", [1.0, 2.0], True), ("trm", [-1.0, -2.0], False)]:
        cfg = tiny(variant, halt_max_steps=8)
        model = ACTModel(cfg).train()
        with torch.no_grad():
            model.inner.q_head.weight.zero_()
            model.inner.q_head.bias.copy_(torch.tensor(bias))
        batch = batch_for(cfg)
        carry, _ = model(carry=model.initial_carry(batch), batch=batch)
        assert bool(carry.halted.all()) is expect, (variant, bias)


def test_q_continue_target_is_the_sigmoid_of_the_next_q_values_and_next_q_halt_at_the_last_step():
    # A Q head with zero weights outputs its bias at every segment: q_halt = -1, q_continue = 2.
    # No row halts early (q_halt < q_continue), so segment 2 of 2 is every row's last step.
    cfg = tiny("hrm", halt_max_steps=2)
    model = ACTModel(cfg).train()
    with torch.no_grad():
        model.inner.q_head.weight.zero_()
        model.inner.q_head.bias.copy_(torch.tensor([-1.0, 2.0]))
    batch = batch_for(cfg)
    carry, first = model(carry=model.initial_carry(batch), batch=batch)
    carry, last = model(carry=carry, batch=batch)
    assert not carry.halted.logical_not().any() and carry.steps.tolist() == [2, 2, 2, 2]
    torch.testing.assert_close(first["target_q_continue"], torch.full((4,), 1 / (1 + math.exp(-2.0))))
    torch.testing.assert_close(last["target_q_continue"], torch.full((4,), 1 / (1 + math.exp(1.0))))


def test_q_continue_target_predicts_the_q_values_of_the_segment_that_follows():
    cfg = tiny("hrm", halt_max_steps=6)
    torch.manual_seed(0)
    model = ACTModel(cfg).train()
    with torch.no_grad():
        model.inner.q_head.weight.normal_(0, 0.3)
        model.inner.q_head.bias.copy_(torch.tensor([-1.0, 1.0]))
    batch = batch_for(cfg, size=8)
    carry, out = model(carry=model.initial_carry(batch), batch=batch)
    checked = 0
    for _ in range(4):
        target, continuing = out["target_q_continue"], ~carry.halted
        carry, out = model(carry=carry, batch=batch)
        expected = torch.sigmoid(torch.maximum(out["q_halt_logits"], out["q_continue_logits"]))
        torch.testing.assert_close(target[continuing], expected[continuing])
        checked += int(continuing.sum())
    assert checked >= 8


def _second_segment_after_an_optimizer_step(reuse: bool):
    """Runs segment 1, takes an SGD step, runs segment 2. Returns segment 2's outputs and what the
    reference computes for it: one segment from the carried state with the *updated* weights."""
    cfg = tiny("hrm", halt_max_steps=4, reuse_q_target_forward=reuse)
    torch.manual_seed(0)
    model = ACTModel(cfg).train()
    with torch.no_grad():
        model.inner.q_head.bias.copy_(torch.tensor([-30.0, 30.0]))  # every row continues
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    batch = batch_for(cfg)
    carry, out = model(carry=model.initial_carry(batch), batch=batch)
    loss, _ = act_loss(out, carry.current_data["labels"], carry.halted, carry.steps, cfg.loss)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    assert not carry.halted.any()
    with torch.no_grad():
        _, reference_logits, (reference_halt, _) = model.inner(carry.inner_carry, carry.current_data)
    _, out = model(carry=carry, batch=batch)
    return out, reference_logits, reference_halt


def test_default_training_recomputes_each_segment_with_the_updated_weights():
    out, reference_logits, reference_halt = _second_segment_after_an_optimizer_step(reuse=False)
    torch.testing.assert_close(out["logits"], reference_logits)
    torch.testing.assert_close(out["q_halt_logits"], reference_halt)


def test_reusing_the_q_target_forward_is_an_approximation_after_an_optimizer_step():
    out, reference_logits, _ = _second_segment_after_an_optimizer_step(reuse=True)
    assert (out["logits"] - reference_logits).abs().max() > 1e-3


def test_reusing_the_target_forward_matches_recomputing_while_the_weights_stay_fixed():
    def trajectory(reuse: bool):
        cfg = tiny("hrm", halt_max_steps=3, halt_exploration_prob=0.5, reuse_q_target_forward=reuse)
        torch.manual_seed(0)
        model = ACTModel(cfg).train()
        batch = batch_for(cfg, size=6)
        carry = model.initial_carry(batch)
        losses = []
        for step in range(6):
            carry, out = model(carry=carry, batch=batch_for(cfg, size=6, seed=step))
            assert (carry.prefetched is not None) == reuse
            loss, _ = act_loss(out, carry.current_data["labels"], carry.halted, carry.steps, cfg.loss)
            losses.append(loss.item())
        return losses

    assert trajectory(True) == pytest.approx(trajectory(False), rel=1e-5)


def test_stablemax_matches_its_definition_and_ignores_masked_labels():
    logits = torch.tensor([[[-1.0, 0.0, 2.0]]])
    s = torch.tensor([1 / 2, 1.0, 3.0], dtype=torch.float64)
    expected = torch.log(s / s.sum())
    torch.testing.assert_close(log_stablemax(logits.double())[0, 0], expected)
    labels = torch.tensor([[2]])
    assert stablemax_cross_entropy(logits, labels).item() == pytest.approx(-math.log(3.0 / 4.5))
    assert stablemax_cross_entropy(logits, torch.tensor([[IGNORE_LABEL_ID]])).item() == 0.0
    assert stablemax_cross_entropy(logits, labels).dtype == torch.float64


def test_act_loss_counts_only_halted_rows_with_labels():
    logits = torch.zeros(3, 2, 4)
    logits[..., 1] = 5.0
    labels = torch.tensor([[1, 1], [1, 0], [IGNORE_LABEL_ID, IGNORE_LABEL_ID]])
    outputs = {"logits": logits, "q_halt_logits": torch.zeros(3), "q_continue_logits": torch.zeros(3)}
    halted = torch.tensor([True, True, True])
    _, metrics = act_loss(outputs, labels, halted, torch.tensor([2, 3, 4]), "softmax_cross_entropy")
    assert metrics["count"].item() == 2  # the row with no labels is left out
    assert metrics["exact_accuracy"].item() == 1
    assert metrics["accuracy"].item() == pytest.approx(1.5)
    assert metrics["steps"].item() == 5


def test_core_forward_matches_the_reference_call_shape():
    cfg = tiny("trm")
    model = ACTModel(cfg)
    batch = batch_for(cfg)
    carry = model.inner.empty_carry(4)
    new_carry, logits, (q_halt, q_continue) = model.inner(carry, batch)
    assert isinstance(new_carry, CoreCarry) and logits.shape == (4, 9, 7) and q_halt.shape == (4,)


def test_memory_saving_swiglu_matches_autograd_of_the_plain_formula():
    from hrmkit.model.layers import SwiGLU
    torch.manual_seed(0)
    ffn = SwiGLU(24, 4.0).double()
    ffn.recompute_min_elements = 0
    x = torch.randn(3, 5, 24, dtype=torch.float64, requires_grad=True)
    fused = ffn(x)
    grad = torch.randn_like(fused)
    fused_grads = torch.autograd.grad(fused, (x, ffn.gate_up_proj.weight, ffn.down_proj.weight), grad)
    gate, up = ffn.gate_up_proj(x).chunk(2, dim=-1)
    plain = ffn.down_proj(torch.nn.functional.silu(gate) * up)
    plain_grads = torch.autograd.grad(plain, (x, ffn.gate_up_proj.weight, ffn.down_proj.weight), grad)
    torch.testing.assert_close(fused, plain)
    for a, b in zip(fused_grads, plain_grads):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("preset", sorted(p.stem for p in PRESETS_DIR.glob("*.yaml")))
def test_every_shipped_preset_parses(preset):
    cfg = load_run_config(preset)
    assert cfg.run_name and cfg.task in ("puzzle", "seq2seq")
