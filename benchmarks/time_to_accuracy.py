"""Print a run's held-out exact-accuracy curve and the training seconds to reach each threshold.

    python benchmarks/time_to_accuracy.py runs/quickstart_sudoku4 [--thresholds 0.9 0.95 0.97 0.99]

Seconds are training time only (``train_s``: inside training steps, evaluation excluded).
"""

import argparse
import json
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--thresholds", nargs="+", type=float, default=[0.9, 0.95, 0.97, 0.99])
    args = parser.parse_args()
    for run in args.runs:
        records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        evals = [r for r in records if r["kind"] == "eval"]
        print(f"{run}:")
        for r in evals:
            print(f"  step {r['step']:5d}  train {r['train_s']:6.1f} s  exact {r['exact_accuracy']:.4f}  "
                  f"cells {r['accuracy']:.4f}  halting step {r['steps']:.2f}")
        for threshold in args.thresholds:
            hit = next((r for r in evals if r["exact_accuracy"] >= threshold), None)
            when = f"{hit['train_s']:.0f} s (step {hit['step']})" if hit else "not reached"
            print(f"  exact >= {threshold:.0%}: {when}")
        best = max(evals, key=lambda r: r["exact_accuracy"]) if evals else None
        if best:
            print(f"  best {best['exact_accuracy']:.4f} at {best['train_s']:.0f} s")


if __name__ == "__main__":
    main()
