"""Programs per second scoring the 500 MBPP test references, per sandbox backend, beside a naive harness.

The naive harness is what an evaluator without a sandbox does: write the program to a file and
run ``python file.py`` in its own process, passed = exit code 0. Backends and the naive harness
run in the same process, interleaved round by round, with the same number of workers; the
figure reported per backend is the median over rounds, and the ratio is its time over the naive
harness's (the target for bwrap is <= 1.5).

    python benchmarks/sandbox_throughput.py --mbpp-path ../shared/data/mbpp/mbpp.jsonl --workers 2 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from hrmkit.code.data import load_mbpp
from hrmkit.code.evaluate import program_under_test
from hrmkit.code.sandbox import SandboxLimits
from hrmkit.code.sandbox_choice import _build, unavailable_reason

DEFAULT_MBPP = Path(__file__).resolve().parents[2] / "shared" / "data" / "mbpp" / "mbpp.jsonl"


def naive_run(program: str, timeout: float) -> bool:
    with tempfile.TemporaryDirectory(prefix="naive-") as folder:
        path = Path(folder) / "program.py"
        path.write_text(program)
        try:
            return subprocess.run([sys.executable, str(path)], cwd=folder, capture_output=True, timeout=timeout).returncode == 0
        except subprocess.TimeoutExpired:
            return False


def timed(run, programs: list[str], workers: int) -> tuple[float, int]:
    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        passed = sum(pool.map(run, programs))
    return time.perf_counter() - started, passed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mbpp-path", default=str(DEFAULT_MBPP))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--backends", nargs="+", default=["bwrap", "subprocess", "docker"])
    parser.add_argument("--json", default=None, help="also write the figures here")
    args = parser.parse_args(argv)

    tasks = load_mbpp(args.mbpp_path, "test")
    programs = [program_under_test(task, task.reference) for task in tasks]
    limits = SandboxLimits(timeout_s=args.timeout)
    runners = {"naive (no sandbox)": lambda program: naive_run(program, args.timeout)}
    for name in args.backends:
        reason = unavailable_reason(name)
        if reason is not None:
            print(f"{name}: skipped ({reason})", file=sys.stderr)
            continue
        box = _build(name, limits, True, None, None)
        runners[name] = lambda program, box=box: box.run(program).passed

    for run in runners.values():  # warm the page cache and the probes
        timed(run, programs[:20], args.workers)
    times: dict[str, list[float]] = {name: [] for name in runners}
    passed: dict[str, int] = {}
    for _ in range(args.rounds):
        for name, run in runners.items():
            seconds, passed[name] = timed(run, programs, args.workers)
            times[name].append(seconds)

    naive = statistics.median(times["naive (no sandbox)"])
    rows = []
    print(f"{len(programs)} MBPP test references, {args.workers} workers, median of {args.rounds} rounds, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    print(f"{'harness':22s} {'programs/s':>10s} {'seconds':>8s} {'passed':>7s} {'time vs naive':>14s}")
    for name, values in times.items():
        seconds = statistics.median(values)
        rows.append({"harness": name, "programs_per_s": len(programs) / seconds, "seconds": seconds,
                     "passed": passed[name], "ratio_to_naive": seconds / naive, "rounds": values})
        print(f"{name:22s} {len(programs) / seconds:10.1f} {seconds:8.2f} {passed[name]:7d} {seconds / naive:13.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
