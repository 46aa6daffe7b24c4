"""Unbiased pass@k (Chen et al. 2021, "Evaluating Large Language Models Trained on Code").

For one task with ``n`` samples of which ``c`` pass, the probability that at least one of ``k``
samples drawn without replacement passes is ``1 - C(n-c, k) / C(n, k)``. The binomials
overflow floats quickly (C(200, 100) ~ 1e58), so the ratio is computed as the product
``prod_{i=n-c+1}^{n} (1 - k / i)``, as the paper's reference code does. The benchmark score is
the mean over tasks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased estimate of pass@k for one task: n samples, c of them correct."""
    if not (isinstance(n, int) and isinstance(c, int) and isinstance(k, int)):
        raise TypeError("n, c and k must be integers")
    if k < 1 or n < k or not 0 <= c <= n:
        raise ValueError(f"need 1 <= k <= n and 0 <= c <= n, got n={n} c={c} k={k}")
    if n - c < k:  # every draw of k holds a correct sample
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


@dataclass
class PassAtKReport:
    scores: dict[int, float] = field(default_factory=dict)
    """k -> mean pass@k over tasks, for each k every task has enough samples for."""
    not_reported: dict[int, str] = field(default_factory=dict)
    """k -> why it is missing."""
    per_task: dict[str, dict] = field(default_factory=dict)
    """task_id -> {"n": samples, "passed": correct, "rate": passed / n}."""


def pass_at_k_report(counts: dict[str, tuple[int, int]], ks: list[int]) -> PassAtKReport:
    """pass@k over tasks from ``{task_id: (n, c)}``; a k is reported only if every task has >= k samples."""
    report = PassAtKReport()
    for task_id, (n, c) in counts.items():
        report.per_task[task_id] = {"n": n, "passed": c, "rate": c / n if n else 0.0}
    if not counts:
        report.not_reported = {k: "no task was scored" for k in ks}
        return report
    for k in sorted(set(ks)):
        if k < 1:
            report.not_reported[k] = "k must be >= 1"
            continue
        short = [task_id for task_id, (n, _) in counts.items() if n < k]
        if short:
            fewest = min(counts[t][0] for t in short)
            report.not_reported[k] = (f"{len(short)} of {len(counts)} tasks have fewer than {k} samples "
                                      f"(as few as {fewest}, e.g. {short[0]}): sample more with --n {k}")
            continue
        report.scores[k] = sum(pass_at_k(n, c, k) for n, c in counts.values()) / len(counts)
    return report
