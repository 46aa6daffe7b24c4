"""Reading a training run folder: its ``metrics.jsonl`` (records of an attempt that a resume replaced dropped),
its resolved ``config.yaml`` and the parameter count of its final weights, gathered as a ``Run``.

It stands alone because reading is where a run folder can be wrong: every problem becomes one
``ReportError`` line here, before any number is derived or drawn.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# Keys that hold per-puzzle embeddings or fixed initial states: not learned "model size".
EXCLUDED_PARAMETER_KEYS: tuple[str, ...] = ("puzzle_emb.weights", "H_init", "L_init")


class ReportError(ValueError):
    """A run folder cannot be reported on; the message is one line meant for the user."""


def load_metrics(run_dir: str | Path) -> tuple[list[dict], list[dict]]:
    """Return ``(train, eval)`` records of ``run_dir/metrics.jsonl``, each sorted by step.

    One attempt of a run logs in step order. A record for an earlier step than one already read
    starts the attempt that resumed from a checkpoint: the records from that step on came from an
    attempt whose weights were lost, so they go (the trainer drops them itself when it resumes;
    run folders written before it did still hold them). A second record of the same kind at the same
    step (the full final evaluation after an early stop) replaces the first. A torn last line (see
    ``_torn_last_line``) is skipped with a warning on stderr; an unreadable line anywhere else is an error.
    """
    metrics_path = _require_run_folder(Path(run_dir)) / "metrics.jsonl"
    if not metrics_path.is_file():
        raise ReportError(f"{metrics_path}: missing metrics file")
    latest: dict[tuple[str, int], dict] = {}
    newest_step = None
    text = _read_text(metrics_path)
    lines = text.splitlines()
    for line_number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = _parse_metrics_line(metrics_path, line_number, line)
        except ReportError as error:
            if not _torn_last_line(text, lines, line_number):
                raise
            print(f"warning: {error}: skipped, a last line cut short as it was written", file=sys.stderr)
            continue
        step = record["step"]
        if newest_step is not None and step < newest_step:
            latest = {key: kept for key, kept in latest.items() if key[1] < step}
        newest_step = step
        latest[(record["kind"], step)] = record
    if not latest:
        raise ReportError(f"{metrics_path}: no metrics recorded")
    by_step = sorted(latest.items(), key=lambda item: item[0][1])
    train = [record for (kind, _), record in by_step if kind == "train"]
    evals = [record for (kind, _), record in by_step if kind == "eval"]
    return train, evals


def _require_run_folder(run_dir: Path) -> Path:
    if not run_dir.is_dir():
        raise ReportError(f"{run_dir}: run folder not found")
    return run_dir


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ReportError(f"{path}: not UTF-8 text ({error.reason})") from None


def _torn_last_line(text: str, lines: list[str], line_number: int) -> bool:
    """Whether line ``line_number`` is the last and no newline ends it: what a training process killed
    while writing a record leaves (the newline is written last), or a live run mid-write. Such a line
    was never a whole record, so skipping it loses nothing that was logged; the trainer drops it when
    the run resumes."""
    return line_number == len(lines) and not text.endswith("\n")


def _parse_metrics_line(path: Path, line_number: int, line: str) -> dict:
    where = f"{path}:{line_number}"
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise ReportError(f"{where}: corrupt line ({error.msg})") from None
    if not isinstance(record, dict):
        raise ReportError(f"{where}: corrupt line (expected a JSON object)")
    step = record.get("step")
    if not isinstance(step, int) or isinstance(step, bool) or not isinstance(record.get("kind"), str):
        raise ReportError(f"{where}: corrupt line (needs an integer 'step' and a 'kind')")
    return record


def load_run_config(run_dir: Path) -> dict:
    """The resolved ``config.yaml`` of a run, or ``{}`` when the folder has none."""
    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        return {}
    try:
        config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ReportError(f"{config_path}: unreadable config ({first_line})") from None
    return config if isinstance(config, dict) else {}


def count_parameters(run_folder: Path) -> int | None:
    """Learned parameters of a run's final weights, or ``None`` without them."""
    # Only needed for this one number; keeps plain reports light to import.
    from hrmkit.train.checkpoint import CheckpointError, load_checkpoint_file
    from hrmkit.train.weights import is_weights_folder, tensor_sizes

    final = run_folder / "final"
    try:
        if is_weights_folder(final):
            sizes = tensor_sizes(final)  # the header alone: no tensor is read
        elif (run_folder / "final.pt").is_file():  # a run from before weights folders
            sizes = {key: value.numel() for key, value in load_checkpoint_file(run_folder / "final.pt")["model"].items()}
        else:
            return None
    except CheckpointError as error:
        raise ReportError(str(error)) from None
    except KeyError:
        raise ReportError(f"{run_folder / 'final.pt'}: unreadable checkpoint (no 'model' weights)") from None
    return sum(size for key, size in sizes.items() if not any(part in key for part in EXCLUDED_PARAMETER_KEYS))


@dataclass
class Run:
    """Everything a report needs from one run folder."""

    folder: Path
    name: str
    config: dict
    train: list[dict]
    evals: list[dict]
    parameter_count: int | None = None
    best_model: dict | None = None  # best-model/metrics.json: {"step", "metrics"} of the weights the run kept
    config_sections: dict[str, dict] = field(init=False)

    def __post_init__(self) -> None:
        self.config_sections = {
            section: self.config.get(section) if isinstance(self.config.get(section), dict) else {}
            for section in ("model", "data", "train")
        }

    def setting(self, section: str, key: str) -> Any:
        return self.config_sections[section].get(key)


def load_run(run_dir: str | Path) -> Run:
    folder = Path(run_dir)
    train, evals = load_metrics(folder)
    config = load_run_config(folder)
    return Run(
        folder=folder,
        name=str(config.get("run_name") or folder.resolve().name),
        config=config,
        train=train,
        evals=evals,
        parameter_count=count_parameters(folder),
        best_model=_best_model_record(folder),
    )


def _best_model_record(folder: Path) -> dict | None:
    """What best-model/ holds, as the trainer ranked it (ties, and a final evaluation ranked on the
    interim evaluations' examples), or None where the run kept none or the file does not read."""
    try:
        record = json.loads((folder / "best-model" / "metrics.json").read_text())
    except (OSError, ValueError):
        return None
    metrics = record.get("metrics") if isinstance(record, dict) else None
    if not isinstance(metrics, dict) or "exact_accuracy" not in metrics or "step" not in record:
        return None
    return {"step": record["step"], **metrics}
