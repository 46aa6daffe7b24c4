"""Reference HRM/TRM checkpoints load as they are and compute what the reference code computes.

The fixtures under ``tests/fixtures/reference/`` were written by the REAL reference model classes
(sapientinc/HRM ``hrm_act_v1`` and TRM ``recursive_reasoning/trm.py``, wrapped in their
``ACTLossHead``) by ``tests/fixtures/make_reference_fixtures.py``, which documents each file; this
module never imports the reference code. Per tiny config (``hrm``, ``trm_att``, ``trm_mlp``) there is
a plain float32 checkpoint (``model.inner.*`` keys) and a ``_compiled`` one as a bf16 GPU run saves
it (``_orig_mod.model.inner.*`` keys, bfloat16 ``H_init``/``L_init``), each with the reference's
eval-mode outputs for every ACT segment on a fixed batch. ``paper_state_dicts.json`` holds the
reference's state-dict keys, shapes, dtypes and parameter counts for the paper configs.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import hrmkit
from hrmkit.cli import main
from hrmkit.config import load_run_config
from hrmkit.model.act import ACTModel
from hrmkit.puzzles.format import PuzzleDatasetMetadata, write_dataset
from hrmkit.train import checkpoint as ckpt

FIXTURES = Path(__file__).parent / "fixtures" / "reference"
TINY = ("hrm", "trm_att", "trm_mlp")
FOLDERS = [name + suffix for name in TINY for suffix in ("", "_compiled")]
OUTPUT_KEYS = ("logits", "q_halt_logits", "q_continue_logits")
# The fixtures hold float32 outputs of the reference, computed on one CPU (AMD EPYC), where hrmkit
# matches them bit for bit. Another CPU's float32 kernels (an Intel Xeon's) sum in another order and
# differ by up to 6e-5 after a few segments; a wrong weight or key differs by orders of magnitude more.
TOLERANCE = dict(rtol=1e-3, atol=2e-4)


def _checkpoint(folder: Path) -> Path:
    steps = sorted(folder.glob("step_*"))
    assert len(steps) == 1, f"{folder}: expected one step_<N> file, found {steps}"
    return steps[0]


def _expected(folder: Path) -> dict:
    return torch.load(folder / "expected.pt", weights_only=True)


def _run_segments(model, batch: dict, count: int) -> dict:
    """Eval-mode ACT segments, stacked like the fixture: {key: [segment, batch, ...]}."""
    out = {k: [] for k in (*OUTPUT_KEYS, "steps", "halted")}
    with torch.no_grad():
        carry = model.initial_carry(batch)
        for _ in range(count):
            carry, outputs = model(carry=carry, batch=batch)
            for k in OUTPUT_KEYS:
                out[k].append(outputs[k].float())
            out["steps"].append(carry.steps)
            out["halted"].append(carry.halted)
    return {k: torch.stack(v) for k, v in out.items()}


def _assert_segments_match(ours: dict, reference: dict, where: str) -> None:
    for segment in range(reference["logits"].shape[0]):
        for key in OUTPUT_KEYS:
            torch.testing.assert_close(ours[key][segment], reference[key][segment], **TOLERANCE,
                                       msg=lambda m: f"{where}: segment {segment + 1} {key} differs from the reference: {m}")
        assert torch.equal(ours["steps"][segment], reference["steps"][segment].to(ours["steps"].dtype)), (where, segment)
        assert torch.equal(ours["halted"][segment], reference["halted"][segment]), (where, segment)


@pytest.mark.parametrize("folder", FOLDERS)
def test_reference_checkpoint_reproduces_reference_outputs_segment_by_segment(folder):
    path = _checkpoint(FIXTURES / folder)
    compiled = folder.endswith("_compiled")
    raw = torch.load(path, map_location="cpu", weights_only=True)
    prefix = "_orig_mod.model.inner." if compiled else "model.inner."
    assert all(key.startswith(prefix) for key in raw), "the fixture is not in the form it claims"
    assert raw[prefix + "H_init"].dtype == (torch.bfloat16 if compiled else torch.float32)

    model, cfg = hrmkit.load_checkpoint(path)  # what `hrm eval/info/convert --checkpoint` call
    assert cfg.model.variant == folder.split("_")[0]
    assert cfg.model.halts_on_q_halt_alone == (cfg.model.variant == "trm")  # TRM's no_ACT_continue, HRM's Q-learning
    assert not model.training
    if compiled:  # bf16 init states load as the exact bf16 values
        assert torch.equal(model.inner.H_init, raw[prefix + "H_init"].float())
        assert torch.equal(model.inner.L_init, raw[prefix + "L_init"].float())

    expected = _expected(FIXTURES / folder)
    segments = expected["segments"]["logits"].shape[0]
    assert segments == cfg.model.halt_max_steps + 1  # every segment, then the one after the reset
    ours = _run_segments(model, expected["batch"], segments)
    _assert_segments_match(ours, expected["segments"], folder)


def _dataset_from_batch(root: Path, batch: dict, num_puzzle_identifiers: int, vocab_size: int) -> Path:
    """A one-set puzzle dataset whose test split is the fixture batch, one puzzle per row."""
    rows, seq_len = batch["inputs"].shape
    arrays = {"inputs": batch["inputs"].numpy().astype(np.int32), "labels": batch["labels"].numpy().astype(np.int32),
              "puzzle_identifiers": batch["puzzle_identifiers"].numpy().astype(np.int32),
              "puzzle_indices": np.arange(rows + 1, dtype=np.int32), "group_indices": np.arange(rows + 1, dtype=np.int32)}
    meta = PuzzleDatasetMetadata(pad_id=0, ignore_label_id=0, blank_identifier_id=0, vocab_size=vocab_size, seq_len=seq_len,
                                 num_puzzle_identifiers=num_puzzle_identifiers, total_groups=rows, mean_puzzle_examples=1.0,
                                 sets=["all"])
    write_dataset(root, {"train": {"all": arrays}, "test": {"all": arrays}}, {"train": meta, "test": meta},
                  ["<blank>"] + [f"puzzle{i}" for i in range(1, num_puzzle_identifiers)])
    return root


@pytest.mark.cli
@pytest.mark.parametrize("folder", FOLDERS)
def test_hrm_eval_of_a_reference_checkpoint_predicts_what_the_reference_predicts(tmp_path, folder, capsys):
    """`hrm eval --checkpoint step_N --data D`: shapes from the dataset, all segments run, the last one's
    argmax and q_halt are the reference's; the halting step follows the reference's training-time rule."""
    path = _checkpoint(FIXTURES / folder)
    expected = _expected(FIXTURES / folder)
    reference = expected["segments"]
    halt_max_steps = reference["logits"].shape[0] - 1
    identifiers = next(v for k, v in torch.load(path, weights_only=True).items() if k.endswith("puzzle_emb.weights")).shape[0]
    data = _dataset_from_batch(tmp_path / "data", expected["batch"], identifiers, vocab_size=reference["logits"].shape[-1])
    assert main(["eval", "--checkpoint", str(path), "--data", str(data), "--batch-size", "8",  # 4 rows + 4 padding
                 "--out", str(tmp_path / "eval")]) == 0
    assert "exact accuracy" in capsys.readouterr().out
    predictions = np.load(tmp_path / "eval" / "predictions.npz")

    last = halt_max_steps - 1
    np.testing.assert_array_equal(predictions["predictions"], reference["logits"][last].argmax(-1).numpy())
    np.testing.assert_allclose(predictions["q_halt"], torch.sigmoid(reference["q_halt_logits"][last]).numpy(), **TOLERANCE)
    # Reference halting rule: HRM halts when q_halt > q_continue, TRM (no_ACT_continue) when q_halt > 0.
    q_halt, q_continue = reference["q_halt_logits"][:halt_max_steps], reference["q_continue_logits"][:halt_max_steps]
    wants = q_halt > 0 if folder.startswith("trm") else q_halt > q_continue
    wants[-1] = True
    np.testing.assert_array_equal(predictions["halt_step"], (wants.int().argmax(0) + 1).numpy())
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["count"] == expected["batch"]["inputs"].shape[0]


def _copy_fixture(tmp_path: Path, folder: str) -> Path:
    copy = tmp_path / folder
    shutil.copytree(FIXTURES / folder, copy)
    return _checkpoint(copy)


@pytest.mark.cli
def test_convert_writes_a_weights_folder_that_reproduces_the_reference(tmp_path, capsys):
    path = _copy_fixture(tmp_path, "hrm_compiled")
    out = tmp_path / "converted"
    assert main(["convert", "--checkpoint", str(path), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["config.yaml", "metrics.json", "model.safetensors"]
    loaded, cfg = hrmkit.load_checkpoint(out)
    assert cfg.model.variant == "hrm" and cfg.model.hidden_size == 32
    expected = _expected(path.parent)
    _assert_segments_match(_run_segments(loaded, expected["batch"], 4), expected["segments"], "converted hrm_compiled")
    assert main(["convert", "--checkpoint", str(path), "--out", str(out)]) == 2
    assert "exists" in capsys.readouterr().err


@pytest.mark.cli
def test_weights_that_do_not_fit_fail_with_one_line(tmp_path, capsys):
    path = _copy_fixture(tmp_path, "trm_att")
    config_path = path.parent / "all_config.yaml"
    config = yaml.safe_load(config_path.read_text())
    config["arch"]["hidden_size"] = 64
    config_path.write_text(yaml.safe_dump(config))
    assert main(["info", "--checkpoint", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and "do not fit" in err


@pytest.mark.cli
def test_a_key_the_model_does_not_have_fails_with_one_line_naming_it(tmp_path, capsys):
    path = _copy_fixture(tmp_path, "hrm")
    state = torch.load(path, weights_only=True)
    state["model.inner.H_level.layers.0.mlp.gate_proj.weight"] = state.pop("model.inner.H_level.layers.0.mlp.gate_up_proj.weight")
    torch.save(state, path)
    with pytest.raises(ckpt.CheckpointError, match="gate_up_proj"):
        hrmkit.load_checkpoint(path)
    assert main(["info", "--checkpoint", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and "H_level.layers.0.mlp.gate_proj.weight" in err


def test_a_reference_checkpoint_without_its_config_says_where_it_looked(tmp_path):
    path = _copy_fixture(tmp_path, "trm_mlp")
    (path.parent / "all_config.yaml").unlink()
    with pytest.raises(ckpt.CheckpointError, match="all_config.yaml"):
        hrmkit.load_checkpoint(path)


# -- the paper configs: hrmkit's presets have the reference's state dict -----------------------------
PAPER = json.loads((FIXTURES / "paper_state_dicts.json").read_text())
# Reference arch keys that hrmkit's presets carry under the same name.
ARCH_KEYS = ("hidden_size", "num_heads", "expansion", "H_layers", "L_layers", "H_cycles", "L_cycles", "halt_max_steps",
             "halt_exploration_prob", "pos_encodings", "puzzle_emb_ndim", "puzzle_emb_len", "mlp_t", "no_ACT_continue")


@pytest.mark.cli
@pytest.mark.parametrize("preset", ["hrm_v1", "trm_sudoku_att", "trm_sudoku_mlp"])
def test_paper_preset_has_the_reference_state_dict_and_parameter_count(preset, capsys):
    reference = PAPER[preset]
    cfg = load_run_config(preset)
    for key in ARCH_KEYS:
        if key in reference["arch"] and not (key == "H_layers" and cfg.model.variant == "trm"):  # TRM ignores H_layers
            assert getattr(cfg.model, key) == reference["arch"][key], key
    for key, value in PAPER["data"].items():
        assert getattr(cfg.model, key) == value, key

    with torch.device("meta"):  # shapes only: no memory, no init time
        model = ACTModel(cfg.model)
    ours = model.checkpoint_module.state_dict()
    # hrmkit's own mapping of reference keys (what its loader applies), then the loader's "inner." strip.
    theirs = {k.removeprefix("inner."): v for k, v in ckpt.normalize_reference_keys(reference["state_dict"]).items()}
    missing, extra = sorted(set(theirs) - set(ours)), sorted(set(ours) - set(theirs))
    assert not missing and not extra, f"keys only in the reference: {missing}; only in hrmkit: {extra}"
    for key, entry in theirs.items():
        assert list(ours[key].shape) == entry["shape"], key
        if key in ("H_init", "L_init"):  # reference: forward_dtype (bf16) buffers; hrmkit: float32, bf16 loads exactly
            assert (entry["dtype"], ours[key].dtype) == ("bfloat16", torch.float32), key
        else:
            assert str(ours[key].dtype) == "torch." + entry["dtype"], key
    parameters = {name for name, _ in model.checkpoint_module.named_parameters()}
    assert parameters == {k for k, entry in theirs.items() if entry["kind"] == "parameter"}  # puzzle_emb.weights: a buffer
    assert sum(p.numel() for p in model.parameters()) == reference["parameters"]

    assert main(["info", "--config", preset]) == 0  # `hrm info --config`, as a user reads it
    assert f"parameters: {reference['parameters']:,} " in capsys.readouterr().out


@pytest.mark.cli
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
