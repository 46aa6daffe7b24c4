"""The README's tour, run as written, one command after another in a scratch folder.

Only what would take minutes is cut down, as the README's tour says: training steps, dataset sizes,
augmentations, code tasks and benchmark batches (``cut_down``). The few commands that need what a
test machine cannot have (files from a model hub, GPUs, a URL) are listed in ``NOT_RUN`` with the
reason; a command in neither place runs, so a new README command is tested from the day it appears.
"""

import contextlib
import glob
import json
import os
import re
import shlex
import time
from pathlib import Path

import pytest
from cli_helpers import MBPP_DIR, hrm_here, torchrun

README = Path(__file__).resolve().parent.parent / "README.md"

NOT_RUN = {
    "hrm prepare sudoku --from-csv": "needs the Sudoku-Extreme CSV files, which come from a dataset hub",
    "hrm eval --checkpoint checkpoints/HRM-sudoku": "needs a reference checkpoint, which comes from a model hub",
    "hrm convert --checkpoint checkpoints/HRM-sudoku": "needs a reference checkpoint, which comes from a model hub",
    "torchrun --nproc_per_node 8": "needs 8 GPUs",
    "torchrun --nnodes 2": "needs 2 machines",
    "hrm data download-slice": "fetches from a web server",
    "hrm report runs/run_a runs/run_b": "stands for two runs of the reader's own",
}
TRAIN_STEPS_DIVISOR, MIN_TRAIN_STEPS = 200, 2
SIZE_CAPS = {"--train": 64, "--test": 16, "--train-bases": 8, "--test-bases": 4, "--num-aug": 2}


def tour() -> list[tuple[str, str]]:
    """``(kind, text)`` in README order: ``("shell", command line)`` or ``("python", block)``."""
    steps = []
    for language, block in re.findall(r"```(bash|python)\n(.*?)```", README.read_text(), re.S):
        if language == "python":
            steps.append(("python", block))
            continue
        for line in block.replace("\\\n", " ").splitlines():
            for command in line.split("&&"):
                words = shlex.split(command, comments=True)
                if words[:1] == ["hrm"] or (words[:1] == ["torchrun"] and "hrmkit" in words):
                    steps.append(("shell", " ".join(shlex.quote(w) for w in words)))
    return steps


def cut_down(words: list[str]) -> list[str]:
    """The same command at test size: see the module docstring."""
    words = list(words)
    for index, word in enumerate(words[:-1]):
        if word in SIZE_CAPS:
            words[index + 1] = str(min(int(words[index + 1]), SIZE_CAPS[word]))
    verb = words[words.index("hrmkit") + 1] if words[0] == "torchrun" else words[1]
    if verb in ("train", "quickstart") and "--dry_run" not in words:
        steps = [i for i, w in enumerate(words) if w.startswith("train.steps=")]
        for i in steps:
            words[i] = f"train.steps={max(MIN_TRAIN_STEPS, int(words[i].split('=')[1]) // TRAIN_STEPS_DIVISOR)}"
        words += [] if steps else [f"train.steps={MIN_TRAIN_STEPS}"]
        words += ["train.progress=false", "train.eval_interval=0"]
    if words[1:3] == ["eval", "code"]:
        words += ["--limit", "3"] if "--limit" not in words else []
        words = [str(min(int(w), 3)) if words[i - 1] == "--limit" else w for i, w in enumerate(words)]
        words = [("32" if words[i - 1] == "--max-new-tokens" else w) for i, w in enumerate(words)]
    if verb == "bench":
        words = [("2" if words[i - 1] == "--batch" else w) for i, w in enumerate(words)]
        words = [("8,16" if words[i - 1] == "--new-tokens" else w) for i, w in enumerate(words)]
        words += ["--steps", "1", "--warmup", "0"]
    return words


def expand_glob(word: str) -> list[str]:
    """What the shell makes of ``word``: its matches in the working folder, sorted, when it is a pattern that matches."""
    matches = sorted(glob.glob(word)) if any(c in word for c in "*?[") else []
    return matches or [word]


def not_run_reason(command: str) -> str | None:
    return next((why for prefix, why in NOT_RUN.items() if command.startswith(prefix)), None)


def write_the_readers_files(folder: Path) -> None:
    """The inputs the tour takes to be the reader's own: raw text, a SQuAD-style file, documents, MBPP."""
    (folder / "raw").mkdir()
    with (folder / "raw" / "part-0.jsonl").open("w") as file:
        for i in range(300):
            file.write(json.dumps({"text": f"Document {i}: the river flows past the mill, turning wheel {i % 7}."}) + "\n")
    with (folder / "squad.jsonl").open("w") as file:
        for i in range(40):
            file.write(json.dumps({"question": f"Which wheel turns in document {i}?", "context": f"Wheel {i % 7} turns.",
                                   "answers": {"text": [f"wheel {i % 7}"], "answer_start": [0]}}) + "\n")
    with (folder / "docs.jsonl").open("w") as file:
        for i in range(20):
            file.write(json.dumps({"text": " ".join(f"word{j}" for j in range(i, i + 400))}) + "\n")
    if MBPP_DIR.is_dir():  # the README names it as ../shared/data/mbpp, beside the checkout
        (folder.parent / "shared" / "data").mkdir(parents=True)
        (folder.parent / "shared" / "data" / "mbpp").symlink_to(MBPP_DIR)


def test_not_run_names_only_commands_the_readme_has():
    commands = [text for kind, text in tour() if kind == "shell"]
    assert all(any(c.startswith(prefix) for c in commands) for prefix in NOT_RUN), "a NOT_RUN entry names no README command"


def test_cut_down_shrinks_only_what_it_says():
    words = shlex.split("hrm prepare sudoku --size 4 --train 2000 --test 500 --out data/sudoku4")
    assert cut_down(words) == shlex.split("hrm prepare sudoku --size 4 --train 64 --test 16 --out data/sudoku4")
    train = cut_down(shlex.split("hrm train --config q run_name=a train.steps=1200"))
    assert train[:6] == shlex.split("hrm train --config q run_name=a train.steps=6")


@pytest.mark.cli
def test_the_readme_tour_runs_as_written(tmp_path, monkeypatch):
    work = tmp_path / "checkout"
    work.mkdir()
    write_the_readers_files(work)
    monkeypatch.chdir(work)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    timings = []
    for kind, text in tour():
        started = time.perf_counter()
        if kind == "python":
            with contextlib.redirect_stdout(open(os.devnull, "w")):
                exec(compile(text, "README.md (python block)", "exec"), {})
        elif not_run_reason(text) is None:
            if "mbpp" in text and not MBPP_DIR.is_dir():  # MBPP's commands and those using what they made
                continue
            words = cut_down([match for word in shlex.split(text) for match in expand_glob(word)])
            if words[0] == "torchrun":
                result = torchrun(*words[words.index("hrmkit") + 1:], check=False)
            else:
                result = hrm_here(*words[1:], check=False)
            assert result.returncode == 0, f"README command failed: {text}\n(run as: {shlex.join(words)})\n{result.stderr[-2000:]}"
        timings.append((time.perf_counter() - started, text[:90]))
    print("\n".join(f"{seconds:6.1f} s  {command}" for seconds, command in sorted(timings, reverse=True)[:12]))
