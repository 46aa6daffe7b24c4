"""Print a run's held-out exact-accuracy curve and the training seconds to reach each threshold.

    python benchmarks/time_to_accuracy.py runs/quickstart_sudoku4 [--thresholds 0.9 0.95 0.97 0.99]

Seconds are training time only (``train_s``: inside training steps, evaluation excluded).
"""

import argparse
from pathlib import Path

from hrmkit.viz.run_folder import load_metrics
from hrmkit.viz.run_stats import best_eval, time_to_accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--thresholds", nargs="+", type=float, default=[0.9, 0.95, 0.97, 0.99])
    args = parser.parse_args()
    for run in args.runs:
        _, evals = load_metrics(run)
        print(f"{run}:")
        for r in evals:
            print(f"  step {r['step']:5d}  train {r['train_s']:6.1f} s  exact {r['exact_accuracy']:.4f}  "
                  f"cells {r['accuracy']:.4f}  halting step {r['steps']:.2f}")
        for threshold, hit in time_to_accuracy(evals, args.thresholds).items():
            when = f"{hit['train_s']:.0f} s (step {hit['step']})" if hit else "not reached"
            print(f"  exact >= {threshold:.0%}: {when}")
        best = best_eval(evals)
        if best:
            print(f"  best {best['exact_accuracy']:.4f} at {best['train_s']:.0f} s")


if __name__ == "__main__":
    main()
