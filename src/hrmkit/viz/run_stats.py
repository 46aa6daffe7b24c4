"""Numbers derived from a run's metrics records: time to each exact-accuracy threshold, the best
eval, median throughput and wall time.

It stands alone because the report and the benchmark scripts both read these numbers, and
none of them needs a file or a plot.
"""

from __future__ import annotations

import statistics
from typing import Sequence

ACCURACY_THRESHOLDS: tuple[float, ...] = (0.9, 0.95, 0.97, 0.99)


def time_to_accuracy(
    evals: list[dict], thresholds: Sequence[float] = ACCURACY_THRESHOLDS
) -> dict[float, dict | None]:
    """For each threshold, the first eval (by step) whose exact accuracy reaches it, else None."""
    ordered = sorted(evals, key=lambda record: record["step"])
    return {
        threshold: next(
            (record for record in ordered if record.get("exact_accuracy", 0.0) >= threshold), None
        )
        for threshold in thresholds
    }


def best_eval(evals: list[dict]) -> dict | None:
    """The eval with the highest exact accuracy; the earliest one wins a tie."""
    scored = [record for record in evals if "exact_accuracy" in record]
    return max(scored, key=lambda record: (record["exact_accuracy"], -record["step"]), default=None)


def median_samples_per_s(train: list[dict]) -> float | None:
    rates = [record["samples_per_s"] for record in train if "samples_per_s" in record]
    return statistics.median(rates) if rates else None


def wall_time_s(evals: list[dict]) -> float | None:
    """Wall time of the run up to its last eval (includes eval and start-up time)."""
    timed = [record for record in evals if "elapsed_s" in record]
    return timed[-1]["elapsed_s"] if timed else None
