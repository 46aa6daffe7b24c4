"""Checkpoints written the reference way load as they are, through the public API and the CLI."""

import pytest
import torch
import yaml

import hrmkit
from hrmkit.cli import main
from hrmkit.config import ModelConfig
from hrmkit.model.act import ACTModel


def _reference_arch(cfg: ModelConfig) -> dict:
    name = "hrm.hrm_act_v1@HierarchicalReasoningModel_ACTV1" if cfg.variant == "hrm" \
        else "recursive_reasoning.trm@TinyRecursiveReasoningModel_ACTV1"
    arch = {k: getattr(cfg, k) for k in ("hidden_size", "num_heads", "expansion", "H_layers", "L_layers", "H_cycles",
                                         "L_cycles", "halt_max_steps", "halt_exploration_prob", "pos_encodings",
                                         "puzzle_emb_ndim", "mlp_t", "puzzle_emb_len")}
    arch.update(name=name, forward_dtype="bfloat16", loss={"name": "losses@ACTLossHead", "loss_type": cfg.loss})
    return arch


def _write_reference_checkpoint(folder, model: ACTModel, compiled: bool):
    """As the reference trainer saves: a bare state dict of the loss-head-wrapped model, bf16 init buffers."""
    prefix = "_orig_mod.model.inner." if compiled else "model.inner."
    state = {}
    for key, value in model.inner.state_dict().items():
        if key in ("H_init", "L_init"):
            value = value.to(torch.bfloat16)
        state[prefix + key] = value
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(state, folder / "step_1234")
    (folder / "all_config.yaml").write_text(yaml.safe_dump({"arch": _reference_arch(model.config), "lr": 1e-4,
                                                            "global_batch_size": 768, "data_path": "nowhere"}))
    return folder / "step_1234"


@pytest.mark.parametrize("variant,compiled,extra", [
    ("hrm", False, dict(puzzle_emb_ndim=48, num_puzzle_identifiers=5)),
    ("hrm", True, dict()),
    ("trm", False, dict(mlp_t=True, pos_encodings="none", puzzle_emb_ndim=32, puzzle_emb_len=2, num_puzzle_identifiers=5)),
    ("trm", True, dict(pos_encodings="learned")),
])
def test_reference_state_dicts_load_and_give_identical_outputs(tmp_path, variant, compiled, extra):
    values = dict(variant=variant, hidden_size=32, num_heads=2, H_layers=1, L_layers=2, H_cycles=2, L_cycles=2,
                  halt_max_steps=3, vocab_size=8, seq_len=10, num_puzzle_identifiers=1, pos_encodings="rope")
    values.update(extra)
    torch.manual_seed(0)
    original = ACTModel(ModelConfig(**values)).eval()
    with torch.no_grad():  # real checkpoints hold bf16 init states: make ours bf16-exact to compare
        original.inner.H_init.copy_(original.inner.H_init.to(torch.bfloat16).float())
        original.inner.L_init.copy_(original.inner.L_init.to(torch.bfloat16).float())
        if hasattr(original.inner, "puzzle_emb"):
            original.inner.puzzle_emb.weights.normal_()
    path = _write_reference_checkpoint(tmp_path / "ckpt", original, compiled)

    loaded, cfg = hrmkit.load_checkpoint(path)
    assert cfg.model.variant == variant and cfg.model.vocab_size == 8
    gen = torch.Generator().manual_seed(1)
    batch = {"inputs": torch.randint(0, 8, (3, 10), generator=gen, dtype=torch.int32),
             "labels": torch.zeros(3, 10, dtype=torch.long),
             "puzzle_identifiers": torch.tensor([0, 0, 0], dtype=torch.int32) if "num_puzzle_identifiers" not in extra
             else torch.tensor([1, 4, 2], dtype=torch.int32)}
    with torch.no_grad():
        carry_a, carry_b = original.initial_carry(batch), loaded.initial_carry(batch)
        for _ in range(3):
            carry_a, out_a = original(carry=carry_a, batch=batch)
            carry_b, out_b = loaded(carry=carry_b, batch=batch)
            for key in ("logits", "q_halt_logits", "q_continue_logits"):
                assert torch.equal(out_a[key], out_b[key]), key


def test_convert_writes_an_hrmkit_checkpoint_that_loads(tmp_path, capsys):
    torch.manual_seed(0)
    model = ACTModel(ModelConfig(variant="hrm", hidden_size=32, num_heads=2, H_layers=1, L_layers=1,
                                 vocab_size=8, seq_len=10))
    path = _write_reference_checkpoint(tmp_path / "ref", model, compiled=False)
    assert main(["convert", "--checkpoint", str(path), "--out", str(tmp_path / "converted.pt")]) == 0
    loaded, cfg = hrmkit.load_checkpoint(tmp_path / "converted.pt")
    assert cfg.model.hidden_size == 32
    assert torch.equal(loaded.inner.L_level.layers[0].mlp.down_proj.weight, model.inner.L_level.layers[0].mlp.down_proj.weight)
    assert main(["convert", "--checkpoint", str(path), "--out", str(tmp_path / "converted.pt")]) == 2
    assert "exists" in capsys.readouterr().err


def test_weights_that_do_not_fit_fail_with_one_line(tmp_path, capsys):
    model = ACTModel(ModelConfig(variant="hrm", hidden_size=32, num_heads=2, H_layers=1, L_layers=1, vocab_size=8, seq_len=10))
    path = _write_reference_checkpoint(tmp_path / "ref", model, compiled=False)
    config = yaml.safe_load((tmp_path / "ref" / "all_config.yaml").read_text())
    config["arch"]["hidden_size"] = 64
    (tmp_path / "ref" / "all_config.yaml").write_text(yaml.safe_dump(config))
    assert main(["info", "--checkpoint", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err


def test_hrm_eval_scores_a_reference_checkpoint_on_a_dataset(tmp_path, sudoku4, capsys):
    model = ACTModel(ModelConfig(variant="trm", hidden_size=32, num_heads=2, L_layers=1, mlp_t=True, pos_encodings="none",
                                 halt_max_steps=2, vocab_size=6, seq_len=16))
    path = _write_reference_checkpoint(tmp_path / "ref", model, compiled=True)
    assert main(["eval", "--checkpoint", str(path), "--data", str(sudoku4), "--out", str(tmp_path / "eval")]) == 0
    assert "exact accuracy" in capsys.readouterr().out
    import json
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["count"] == 64 and 0.0 <= metrics["exact_accuracy"] <= 1.0


def test_cli_prepare_builds_a_dataset_that_info_describes(tmp_path, capsys):
    out = tmp_path / "s6"
    assert main(["prepare", "sudoku", "--size", "6", "--train", "20", "--test", "5", "--num-aug", "2",
                 "--disjoint-solutions", "--out", str(out)]) == 0
    assert main(["info", "--data", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "train: 60 examples, 60 puzzles, 20 groups" in printed
    assert "solution grid occurs in train: 0 of 5" in printed
    assert main(["prepare", "sudoku", "--size", "6", "--train", "20", "--test", "5", "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
