"""Keeping a run folder about one run when it is resumed or restarted.

A resumed run continues from its newest checkpoint at step S; whatever an earlier attempt logged
after S came from weights that no longer exist, so those metrics lines are dropped before the run
logs those steps again. ``--reset_progress`` starts a new generation of the run: what the run
folder holds so far (checkpoints, metrics, config, weights folders, TensorBoard events) moves into
``generations/<n>/`` (1 the oldest), itself a run folder that ``hrm report`` and ``hrm eval`` read,
and the run starts again at step 0 in a clean folder.
"""

from __future__ import annotations

import json
from pathlib import Path

from hrmkit.files import atomic_write_text

GENERATIONS = "generations"
# What belongs to one generation; W&B keeps its own runs apart (wandb/), so it stays.
GENERATION_ITEMS = ("checkpoints", "metrics.jsonl", "config.yaml", "final", "best-model", "final.pt", "tensorboard")


def start_new_generation(run_dir: Path) -> Path | None:
    """Move the run so far into ``generations/<n>/``; returns that folder, or None when nothing was there."""
    present = [run_dir / name for name in GENERATION_ITEMS if (run_dir / name).exists()]
    if not present:
        return None
    root = run_dir / GENERATIONS
    root.mkdir(exist_ok=True)
    number = 1 + max((int(p.name) for p in root.iterdir() if p.name.isdigit()), default=0)
    target = root / str(number)
    target.mkdir()
    for path in present:
        path.rename(target / path.name)
    return target


def drop_metrics_after(metrics_path: Path, step: int) -> int:
    """Rewrite ``metrics_path`` without the records logged after ``step``; returns how many went.
    A line that does not parse is kept as it is (``hrm report`` names it)."""
    if not metrics_path.is_file():
        return 0
    kept, dropped = [], 0
    for line in metrics_path.read_text(encoding="utf-8").splitlines():
        try:
            later = int(json.loads(line)["step"]) > step
        except (ValueError, KeyError, TypeError):
            later = False
        if later:
            dropped += 1
        else:
            kept.append(line)
    if dropped:
        atomic_write_text(metrics_path, "".join(f"{line}\n" for line in kept))
    return dropped
