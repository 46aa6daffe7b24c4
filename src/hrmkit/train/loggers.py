"""Where the trainer's scalars go besides ``metrics.jsonl`` (which stays the source of truth).

``train.logger`` picks one: ``none``, ``tensorboard`` (event files in ``<run>/tensorboard/``) or
``wandb`` (a Weights & Biases run, offline unless ``WANDB_MODE`` says otherwise, its files in
``<run>/wandb/``). Every logger is the same small object: ``log(scalars, step)`` and ``close()``.
A metrics line ``{"step": 6, "kind": "train", "lm_loss": 0.4, ...}`` becomes the scalars
``{"train/lm_loss": 0.4, ...}`` at step 6 (:func:`record_scalars`).

The packages are optional extras: :func:`check_logger_available` turns a missing one into a
one-line :class:`~hrmkit.config_base.ConfigError` before training starts.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any, Protocol

from hrmkit.config_base import ConfigError
from hrmkit.files import atomic_write_text

_PACKAGE = {"tensorboard": "tensorboard", "wandb": "wandb"}
TENSORBOARD_DIR = "tensorboard"
WANDB_ID_FILE = "wandb_run_id.txt"  # in the run folder: a resumed training run resumes this W&B run
WANDB_DEFAULT_PROJECT = "hrmkit"  # WANDB_PROJECT overrides it
_NOT_SCALARS = ("step", "kind")


class MetricsLogger(Protocol):
    def log(self, scalars: dict[str, float], step: int) -> None: ...

    def close(self, failed: bool = False) -> None: ...


def record_scalars(record: dict[str, Any]) -> dict[str, float]:
    """The numbers of one metrics.jsonl line, named ``<kind>/<key>`` (step and kind themselves left out)."""
    kind = record.get("kind", "metrics")
    return {f"{kind}/{key}": float(value) for key, value in record.items()
            if key not in _NOT_SCALARS and isinstance(value, (int, float)) and not isinstance(value, bool)}


def check_logger_available(name: str) -> None:
    """Raise a one-line ConfigError when ``name``'s package is not installed (nothing for ``none``)."""
    package = _PACKAGE.get(name)
    if package is None:
        return
    try:
        importlib.import_module(package)
    except ImportError:
        raise ConfigError(f"train.logger: {name} needs the {package} package: pip install 'hrmkit[{name}]'") from None


def open_logger(name: str, run_dir: Path, run_name: str, config: dict[str, Any], start_step: int) -> MetricsLogger:
    """The logger ``train.logger`` names, writing under ``run_dir``, for a run at optimizer step ``start_step``.

    A run resumed from a checkpoint (``start_step`` > 0) continues where it was: TensorBoard hides
    what an interrupted attempt logged after that step, and W&B continues the run whose id is stored
    in the run folder. A run starting at step 0 (new, or ``--reset_progress``) starts a new W&B run.
    """
    check_logger_available(name)
    if name == "tensorboard":
        return TensorBoardLogger(run_dir / TENSORBOARD_DIR, start_step)
    if name == "wandb":
        return WandbLogger(run_dir, run_name, config, resuming=start_step > 0)
    return NullLogger()


class NullLogger:
    def log(self, scalars: dict[str, float], step: int) -> None:
        pass

    def close(self, failed: bool = False) -> None:
        pass


class TensorBoardLogger:
    def __init__(self, folder: Path, start_step: int):
        from torch.utils.tensorboard import SummaryWriter
        # TensorBoard hides events at or after purge_step from the folder's earlier event files:
        # what an interrupted attempt logged past the checkpoint this run resumed from.
        self.writer = SummaryWriter(log_dir=str(folder), purge_step=start_step + 1)

    def log(self, scalars: dict[str, float], step: int) -> None:
        for tag, value in scalars.items():
            self.writer.add_scalar(tag, value, step)
        self.writer.flush()

    def close(self, failed: bool = False) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class WandbLogger:
    def __init__(self, run_dir: Path, run_name: str, config: dict[str, Any], resuming: bool):
        import wandb
        id_file = run_dir / WANDB_ID_FILE
        run_id = id_file.read_text().strip() if resuming and id_file.is_file() else ""
        # An explicit mode would override the user's WANDB_MODE: pass one only when it is unset.
        mode = None if os.environ.get("WANDB_MODE") else "offline"
        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT") or WANDB_DEFAULT_PROJECT, name=run_name,
                              id=run_id or None, resume="allow", dir=str(run_dir), config=config, mode=mode)
        if self.run.id != run_id:
            atomic_write_text(id_file, self.run.id + "\n")

    def log(self, scalars: dict[str, float], step: int) -> None:
        self.run.log(dict(scalars), step=step)

    def close(self, failed: bool = False) -> None:
        if self.run is not None:
            self.run.finish(exit_code=1 if failed else 0)
            self.run = None
