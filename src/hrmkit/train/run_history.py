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
import os
from pathlib import Path

from hrmkit.files import atomic_write_text
from hrmkit.train.weights import METRICS_FILE

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; two runs of one name are then the user's to avoid
    fcntl = None

GENERATIONS = "generations"
LOCK_FILE = ".lock"  # held (flock) by the process training the run; the system lets go when it ends, kill -9 too
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


class RunFolderBusy(ValueError):
    """Another process is training this run; the message is one line."""


# Run folders this process holds: the open lock file and how many trainers in this process hold it
# (one process may build several trainers of one run, one after another: only other processes are kept out).
_held: dict[Path, list] = {}


def claim_run_folder(run_dir: Path) -> Path:
    """Hold the run folder for this process until `release_run_folder`, or raise RunFolderBusy when
    another process holds it: two runs writing one folder interleave their metrics, checkpoints and
    weights folders. Returns the key to release it with."""
    run_dir.mkdir(parents=True, exist_ok=True)
    key = run_dir.resolve()
    if key in _held:
        _held[key][1] += 1
        return key
    handle = open(run_dir / LOCK_FILE, "a+")
    if fcntl is not None:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip()
            handle.close()
            raise RunFolderBusy(f"{run_dir} is being trained by another process"
                                f"{f' (pid {holder})' if holder else ''}; wait for it to end, or pick another "
                                "run_name") from None
        handle.truncate(0)
        handle.write(str(os.getpid()))
        handle.flush()
    _held[key] = [handle, 1]
    return key


def release_run_folder(key: Path) -> None:
    entry = _held.get(key)
    if entry is None:
        return
    entry[1] -= 1
    if entry[1] == 0:
        entry[0].close()
        del _held[key]


def interrupted_reset(run_dir: Path) -> Path | None:
    """The newest generation when ``--reset_progress`` moved the run there and stopped before the new
    generation's first checkpoint: the run folder then holds nothing of a run (``config.yaml`` aside,
    written just before that checkpoint) but ``generations/``. None otherwise."""
    root = run_dir / GENERATIONS
    if not root.is_dir() or any((run_dir / name).exists() for name in GENERATION_ITEMS if name != "config.yaml"):
        return None
    numbered = [path for path in root.iterdir() if path.name.isdigit()]
    return max(numbered, key=lambda path: int(path.name)) if numbered else None


def drop_metrics_after(metrics_path: Path, step: int, log=print, evaluation_redone: bool = False) -> int:
    """Rewrite ``metrics_path`` without the records logged after ``step``; returns how many went.
    ``evaluation_redone``: the run resumes to redo its final evaluation at ``step``, so an evaluation
    logged at ``step`` (by the attempt that stopped before writing ``final/``) goes too.

    A line that does not parse is kept as it is (``hrm report`` names it: what cannot be read is not
    destroyed), except a torn last line: one that no newline ends, which is what a process killed while
    writing a record leaves (each record ends in a newline, written last). It goes, with a warning
    through ``log``, else the next record would be appended onto it and both lost. The file is
    rewritten, atomically, whenever it changes, so it always ends in a newline for the next record.
    """
    if not metrics_path.is_file():
        return 0
    text = metrics_path.read_text(encoding="utf-8")
    lines = text.splitlines()
    if lines and not text.endswith("\n") and _logged_step(lines[-1]) is None:
        log(f"warning: {metrics_path}:{len(lines)}: dropped a torn last line (a record the attempt that stopped "
            "was writing when it ended)")
        lines.pop()
    kept = [line for line in lines if (logged := _logged_step(line)) is None or logged < step
            or (logged == step and not (evaluation_redone and _logged_kind(line) == "eval"))]
    rewritten = "".join(f"{line}\n" for line in kept)
    if rewritten != text:
        atomic_write_text(metrics_path, rewritten)
    return len(lines) - len(kept)


def stale_best_model(run_dir: Path, step: int) -> int | None:
    """The step of ``best-model/`` when it was saved after ``step``: by an attempt that stopped before
    its next checkpoint, from weights the resumed run no longer has. None otherwise."""
    try:
        saved = json.loads((run_dir / "best-model" / METRICS_FILE).read_text(encoding="utf-8")).get("step")
    except (OSError, ValueError, AttributeError):
        return None
    return saved if isinstance(saved, int) and saved > step else None


def _logged_kind(line: str) -> str | None:
    try:
        return json.loads(line).get("kind")
    except (ValueError, AttributeError):
        return None


def _logged_step(line: str) -> int | None:
    """The step a metrics line records, or None when it does not parse."""
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return None

