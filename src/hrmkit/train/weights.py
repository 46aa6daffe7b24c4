"""Self-contained weights folders: what a finished run hands to ``hrm eval``, ``hrm generate`` and users.

A run writes ``final/`` and ``best-model/``, each holding

    model.safetensors   the model's tensors (EMA-averaged when EMA is on), reference parameter names
    config.yaml         the resolved run config the model is rebuilt from
    metrics.json        {"step": N, "metrics": the evaluation at that step, or null}
    tokenizer.json, meta.json   HRM-LM only: what the task needs to read and write text

safetensors holds tensors and nothing else, so loading one can run no code, and other tools
(inspectors, converters, hubs) read it without hrmkit. Training-state checkpoints
(``checkpoints/step_N.pt``: optimizer, RNG, data position) stay ``torch.save``d; see checkpoint.py.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from hrmkit.config_base import config_to_yaml, load_yaml
from hrmkit.files import atomic_write_text, staged_folder
from hrmkit.train.checkpoint import CheckpointError

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.json"


def is_weights_folder(path: str | Path) -> bool:
    return (Path(path) / WEIGHTS_FILE).is_file()


def weights_folder_of(path: str | Path) -> Path:
    """The folder a checkpoint's companions (tokenizer.json, meta.json) sit in: the folder itself, or a file's parent."""
    path = Path(path)
    return path if path.is_dir() else path.parent


def save_weights_folder(folder: Path, state_dict: dict[str, torch.Tensor], config, step: int,
                        metrics: dict | None, save_assets: Callable[[Path], None]) -> None:
    """Write the folder beside itself and swap it in whole: a reader never sees half of one."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with staged_folder(folder) as staging:
        # safetensors refuses views into a shared storage; a copy per tensor is what the file holds anyway.
        tensors = {name: tensor.detach().contiguous().clone() for name, tensor in state_dict.items()}
        save_file(tensors, str(staging / WEIGHTS_FILE), metadata={"format": "hrmkit", "step": str(step)})
        atomic_write_text(staging / CONFIG_FILE, config_to_yaml(config))
        atomic_write_text(staging / METRICS_FILE, json.dumps({"step": step, "metrics": metrics}, indent=1) + "\n")
        save_assets(staging)


def read_weights_folder(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """``(state_dict, config dict)`` from a weights folder or its ``model.safetensors``."""
    folder = weights_folder_of(path)
    weights_path, config_path = folder / WEIGHTS_FILE, folder / CONFIG_FILE
    if not weights_path.is_file():
        raise CheckpointError(f"{folder}: no {WEIGHTS_FILE}")
    if not config_path.is_file():
        raise CheckpointError(f"{folder}: {WEIGHTS_FILE} has no {CONFIG_FILE} beside it to rebuild the model from")
    try:
        state_dict = load_file(str(weights_path), device="cpu")
    except (SafetensorError, OSError) as error:
        raise CheckpointError(f"cannot read {weights_path}: {error}") from None
    return state_dict, load_yaml(config_path)


def read_metrics(folder: str | Path) -> dict | None:
    """The evaluation saved with a weights folder, or None when there is none."""
    path = Path(folder) / METRICS_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8")).get("metrics")


def tensor_sizes(path: str | Path) -> dict[str, int]:
    """Element count per tensor of a weights folder, read from the header without loading the tensors."""
    weights_path = weights_folder_of(path) / WEIGHTS_FILE
    try:
        with safe_open(str(weights_path), framework="pt") as file:
            return {name: math.prod(file.get_slice(name).get_shape()) for name in file.keys()}
    except (SafetensorError, OSError) as error:
        raise CheckpointError(f"cannot read {weights_path}: {error}") from None

