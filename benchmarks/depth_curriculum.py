"""Time to held-out exact accuracy with and without the 2026 training recipes, one run at a time.

    python benchmarks/depth_curriculum.py --data data/sudoku6 --seeds 0 1 --out runs/recipes

Each recipe trains the ``sudoku6`` preset (1,600 steps, evaluation every 100) with its overrides and
one seed; a run stops once an evaluation reaches ``--stop-at`` (or at ``--max-steps``), since only the
time to each threshold is wanted. Prints, per run, the step and training seconds (``train_s``:
inside training steps only) at which held-out exact first reached 95 % and 99 %.
"""

import argparse
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from hrmkit.viz.run_folder import load_metrics
from hrmkit.viz.run_stats import time_to_accuracy

RECIPES = {
    "reference": [],
    "depth": ["train.depth_schedule=[[0.3,1,1],[0.6,2,2]]"],
    "decay": ["train.segment_loss_decay=0.7"],
    "depth+decay": ["train.depth_schedule=[[0.3,1,1],[0.6,2,2]]", "train.segment_loss_decay=0.7"],
}


def newest_eval(metrics: Path) -> dict | None:
    if not metrics.is_file():
        return None
    evals = [r for r in map(json.loads, metrics.read_text().splitlines()) if r.get("kind") == "eval"]
    return evals[-1] if evals else None


def run_until(command: list[str], metrics: Path, stop_at: float, max_steps: int) -> None:
    # A background shell starts its children with SIGINT ignored; restore it so the run stops cleanly.
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    while process.poll() is None:
        time.sleep(2)
        last = newest_eval(metrics)
        if last and (last["exact_accuracy"] >= stop_at or last["step"] >= max_steps):
            process.send_signal(signal.SIGINT)
            process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data/sudoku6")
    parser.add_argument("--config", default="sudoku6")
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--stop-at", type=float, default=0.99)
    parser.add_argument("--max-steps", type=int, default=1600)
    parser.add_argument("--out", type=Path, default=Path("runs/recipes"))
    parser.add_argument("overrides", nargs="*", help="more config overrides for every run (e.g. train.steps=200 to try it)")
    args = parser.parse_args()
    rows = []
    for seed in args.seeds:
        for recipe in args.recipes:
            name = f"{recipe}-seed{seed}"
            command = [sys.executable, "-m", "hrmkit", "train", "--config", args.config, f"data.path={args.data}",
                       f"runs_dir={args.out}", f"run_name={name}", f"train.seed={seed}", "train.progress=false",
                       *RECIPES[recipe], *args.overrides]
            started = time.perf_counter()
            run_until(command, args.out / name / "metrics.jsonl", args.stop_at, args.max_steps)
            _, evals = load_metrics(args.out / name)
            reached = time_to_accuracy(evals, [0.95, 0.99])
            rows.append((recipe, seed, reached[0.95], reached[0.99], evals[-1], time.perf_counter() - started))
            print(f"{name}: " + ", ".join(f"{t:.0%} " + (f"at step {hit['step']}, {hit['train_s']:.0f} s" if hit else "not reached")
                                          for t, hit in reached.items()) + f" ({time.perf_counter() - started:.0f} s wall)", flush=True)
    print("\n| recipe | seed | 95 %: step, train s | 99 %: step, train s | last evaluation |")
    print("|---|---|---|---|---|")
    for recipe, seed, at95, at99, last, _ in rows:
        def cell(hit):
            return f"{hit['step']}, {hit['train_s']:.0f} s" if hit else "not reached"
        print(f"| {recipe} | {seed} | {cell(at95)} | {cell(at99)} | {last['exact_accuracy']:.1%} at step {last['step']} |")


if __name__ == "__main__":
    main()
