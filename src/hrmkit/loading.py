"""Load a trained model from an hrmkit weights folder or checkpoint, or a reference HRM/TRM checkpoint, as is.

A reference checkpoint (``step_<N>``, no extension) is a bare state dict with ``model.inner.``
keys (``_orig_mod.`` first when trained under torch.compile) and an ``all_config.yaml`` beside it
that names the architecture. Vocabulary, sequence length and puzzle-identifier count are not in
that file (the reference reads them from the dataset), so they come from the dataset when one is
given, else from the weights' shapes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from hrmkit.config import ModelConfig, RunConfig
from hrmkit.config_base import build_config
from hrmkit.files import puzzle_split_names, read_json
from hrmkit.model.act import ACTModel
from hrmkit.model.seq2seq import Seq2SeqHRM
from hrmkit.train import checkpoint as ckpt
from hrmkit.train.distributed import pick_device
from hrmkit.train.weights import (
    WEIGHTS_FILE,
    is_weights_folder,
    read_metrics,
    read_weights_folder,
    weights_folder_of,
)

# Reference ``arch`` keys that mean the same thing in ModelConfig.
_SHARED_ARCH_KEYS = ("hidden_size", "num_heads", "expansion", "H_layers", "L_layers", "H_cycles", "L_cycles",
                     "halt_max_steps", "halt_exploration_prob", "pos_encodings", "rope_theta", "mlp_t",
                     "puzzle_emb_ndim", "puzzle_emb_len", "rms_norm_eps", "no_ACT_continue")


def resolve_run_checkpoint(run: str | Path) -> Path:
    """What to load from a path: a weights folder or checkpoint file as given, or from a run folder
    its best model, else its final weights, else its newest complete step checkpoint (one a kill left
    damaged is skipped with a warning on stderr, as a resumed run skips it).

    Run folders written before weights folders existed hold ``best-model/best.pt`` and ``final.pt``;
    those still resolve.
    """
    run = Path(run)
    if run.is_file() or is_weights_folder(run):
        return run
    if not run.is_dir():
        raise FileNotFoundError(f"{run}: no such run folder, weights folder or checkpoint file")
    for candidate in (run / "best-model", run / "best-model" / "best.pt", run / "final", run / "final.pt"):
        if candidate.is_file() or is_weights_folder(candidate):
            return candidate
    newest, warnings = ckpt.find_resumable(run / "checkpoints")
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if newest is not None:
        return newest
    raise FileNotFoundError(f"{run}: no best-model/, final/ or complete checkpoints/step_N.pt to load")


def load_checkpoint(path: str | Path, dataset: str | Path | None = None, device: str | torch.device = "cpu"):
    """Returns ``(model, run_config)`` with the model in eval mode on ``device``.

    ``path``: a run folder (its ``best-model/``, else ``final/``, else the newest step checkpoint), a
    weights folder (``final/``, ``best-model/``) or its ``model.safetensors``, an hrmkit ``.pt`` file (read
    with its EMA, as the run evaluated it), or a reference HRM/TRM ``step_<N>`` file beside its
    ``all_config.yaml``. ``dataset``: a puzzle dataset folder the model is meant for; its splits are checked
    against the model (vocabulary, sequence length, puzzle identifiers) and a misfit raises a one-line
    error, and ``run_config.data.path`` is set to it. ``device``: a torch device or a name (``auto``,
    ``cpu``, ``cuda[:N]``, ``mps``), checked before anything is read.
    """
    if not isinstance(device, torch.device):
        device = pick_device(str(device))
    path = resolve_run_checkpoint(path)
    if path.name == WEIGHTS_FILE or is_weights_folder(path):
        weights, config = read_weights_folder(path)
        cfg = build_config(RunConfig, config)
    else:
        weights, cfg = _read_torch_checkpoint(path, dataset)
    if dataset:
        cfg.data.path = str(dataset)
        if cfg.task == "puzzle":
            _check_model_fits(cfg.model, Path(dataset))
    model = Seq2SeqHRM(cfg.model) if cfg.task == "seq2seq" else ACTModel(cfg.model)
    _load_weights(model, weights, path)
    return model.to(device).eval(), cfg


def _check_model_fits(model_config: ModelConfig, dataset: Path) -> None:
    """A puzzle model loaded for ``dataset`` must be able to read it (vocabulary, length, a puzzle-embedding
    row per identifier): a misfit is one line here, not an IndexError in the first forward."""
    from hrmkit.puzzles.format import PuzzleDatasetMetadata, model_misfit
    for split in puzzle_split_names(dataset):
        path = dataset / split / "dataset.json"
        if problem := model_misfit(model_config, PuzzleDatasetMetadata.from_json_dict(read_json(path), path)):
            raise ValueError(f"{dataset}/{split}: the model {problem}")


def _read_torch_checkpoint(path: Path, dataset: str | Path | None) -> tuple[dict, RunConfig]:
    """An hrmkit ``.pt`` (a step checkpoint, or final/best weights of older runs) or a reference state dict."""
    state = ckpt.load_checkpoint_file(path)
    if isinstance(state, dict) and state.get("format") == "hrmkit" or "model" in state and "config" in state:
        return _evaluated_weights(state), build_config(RunConfig, state["config"])
    if ckpt.is_reference_state_dict(state):  # the file is already loaded: don't read it again
        weights = ckpt.normalize_reference_keys(state)
        return weights, RunConfig(model=reference_model_config(path, weights, dataset))
    raise ckpt.CheckpointError(f"{path}: neither an hrmkit checkpoint nor a reference HRM/TRM state dict")


def _evaluated_weights(state: dict) -> dict:
    """The weights a step checkpoint's run evaluated: with ``train.ema`` the average (trainable
    parameters) over the live buffers, as the trainer's evaluations and its final/ and best-model/
    folders use; the live weights stay in the checkpoint for resuming."""
    if not state.get("ema"):
        return state["model"]
    # The model entries are the checkpoint module's (no "inner."); the average is keyed by the whole model.
    return {**state["model"], **{k.removeprefix("inner."): v for k, v in state["ema"].items()}}


def load_hrm_lm(path: Path, device: torch.device, verb: str):
    """``(model, run_config, tokenizer)`` of an HRM-LM weights folder or checkpoint, for ``verb`` (named in errors)."""
    from hrmkit.lm.tokenizers import load_tokenizer
    model, cfg = load_checkpoint(path, device=device)
    if cfg.task != "seq2seq":
        raise ValueError(f"{path} is a {cfg.task} model; {verb} needs an HRM-LM (task: seq2seq) checkpoint")
    tokenizer_path = weights_folder_of(path) / "tokenizer.json"
    if not tokenizer_path.exists():
        raise FileNotFoundError(f"{tokenizer_path}: the checkpoint has no tokenizer beside it")
    tokenizer = load_tokenizer(tokenizer_path)
    if tokenizer.vocab_size != cfg.model.vocab_size:  # another corpus's tokenizer: the answers would be noise
        raise ValueError(f"{tokenizer_path} has {tokenizer.vocab_size} tokens but the model was trained on "
                         f"{cfg.model.vocab_size}: it is not the tokenizer of this model's corpus")
    return model, cfg, tokenizer


def final_metrics(run_dir: str | Path) -> tuple[Path | None, dict | None]:
    """A finished run's final weights and the evaluation saved with them; (None, None) without them."""
    run_dir = Path(run_dir)
    if is_weights_folder(run_dir / "final"):
        return run_dir / "final", read_metrics(run_dir / "final")
    if (run_dir / "final.pt").is_file():  # a run from before weights folders
        return run_dir / "final.pt", ckpt.load_checkpoint_file(run_dir / "final.pt").get("metrics")
    return None, None


def _load_weights(model: ACTModel | Seq2SeqHRM, weights: dict, path: Path) -> None:
    weights = {k.removeprefix("inner."): v for k, v in weights.items()}
    try:
        missing, unexpected = model.checkpoint_module.load_state_dict(weights, strict=False)
    except RuntimeError as error:  # shape mismatches
        first = next((line.strip() for line in str(error).splitlines() if "size mismatch" in line), str(error).splitlines()[0])
        raise ckpt.CheckpointError(f"{path}: weights do not fit the architecture ({first})") from None
    # RoPE tables are rebuilt, never stored (the reference does not save them either).
    missing = [k for k in missing if "rotary_emb" not in k]
    if missing or unexpected:
        raise ckpt.CheckpointError(
            f"{path}: weights do not fit the architecture (missing {missing[:3]}, unexpected {unexpected[:3]})")


def reference_model_config(path: Path, weights: dict, dataset: str | Path | None) -> ModelConfig:
    ref = ckpt.load_reference_config(path)
    arch = ref.get("arch", ref)
    values = {k: arch[k] for k in _SHARED_ARCH_KEYS if k in arch}
    values["variant"] = "trm" if "trm" in str(arch.get("name", "")).lower() or "H_level.layers.0.mlp.down_proj.weight" not in weights else "hrm"
    loss = arch.get("loss", {})
    if isinstance(loss, dict) and loss.get("loss_type") in ("stablemax_cross_entropy", "softmax_cross_entropy"):
        values["loss"] = loss["loss_type"]
    values.update(_data_shapes(ref, weights, dataset, values))
    return build_config(ModelConfig, values)


def _data_shapes(ref: dict, weights: dict, dataset, arch: dict) -> dict:
    """vocab_size / seq_len / num_puzzle_identifiers from the dataset, else from the weights."""
    meta_path = None
    for root in (dataset, ref.get("data_path"), *(ref.get("data_paths") or [])):
        if root and (Path(root) / "train" / "dataset.json").exists():
            meta_path = Path(root) / "train" / "dataset.json"
            break
    if meta_path is not None:
        meta = json.loads(meta_path.read_text())
        return {"vocab_size": meta["vocab_size"], "seq_len": meta["seq_len"],
                "num_puzzle_identifiers": meta["num_puzzle_identifiers"]}
    shapes = {"vocab_size": weights["embed_tokens.embedding_weight"].shape[0]}
    if "puzzle_emb.weights" in weights:
        shapes["num_puzzle_identifiers"] = weights["puzzle_emb.weights"].shape[0]
    probe = ModelConfig(**{k: v for k, v in arch.items() if k != "variant"}, variant=arch["variant"], vocab_size=1, seq_len=1)
    if "L_level.layers.0.mlp_t.gate_up_proj.weight" in weights:
        shapes["seq_len"] = weights["L_level.layers.0.mlp_t.gate_up_proj.weight"].shape[1] - probe.prefix_len
    elif "embed_pos.embedding_weight" in weights:
        shapes["seq_len"] = weights["embed_pos.embedding_weight"].shape[0] - probe.prefix_len
    else:
        shapes["seq_len"] = 4096  # RoPE only: any length >= the data's works; pass dataset= to be exact
    return shapes
