"""Scoring code samples: tasks x samples -> sandboxed test programs -> verdicts -> pass@k.

Samples come from a *provider* (the references, or a model's completions made elsewhere), so this
module needs no torch. Each scored sample is appended at once to ``<out>.partial`` (one JSON line,
flushed), which is what makes a rerun with the same ``out`` skip the samples already scored;
the finished ``<out>`` JSONL and ``<out stem>.summary.json`` are written to temporary names and
renamed. Output-comparison tasks (EvalPlus) run the canonical solution in the sandbox too, and
the two runs' outputs are compared here, in the evaluator, never inside the untrusted process.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from hrmkit.code.data import CodeTask, render_prompt, solution_from_completion
from hrmkit.code.passk import PassAtKReport, pass_at_k_report
from hrmkit.code.sandbox import RunResult, Sandbox
from hrmkit.files import atomic_write_text

# (task, sample index) pairs in, (task, index, completion, solution code) out.
Provider = Callable[[list[tuple[CodeTask, int]]], Iterable[tuple[CodeTask, int, str, str]]]
Progress = Callable[[int, int, int], None]  # (samples scored, samples in all, passed so far)


class CodeEvalError(ValueError):
    """An output file that cannot be resumed, or a task that cannot be scored (one line, for the CLI)."""


# -- programs -------------------------------------------------------------------------------------
def program_under_test(task: CodeTask, solution: str) -> str:
    """setup, the solution, then the tests (or, for output comparison, the harness that records outputs)."""
    tail = output_harness(task) if task.compares_outputs else task.tests
    return "\n".join(part.rstrip("\n") for part in (task.setup, solution, tail) if part.strip()) + "\n"


# Runs inside the untrusted process: it can only report what the solution returned; the
# judgement happens in outputs_match, in the evaluator.
_HARNESS = '''
def _hrmkit_encode(value, depth=0):
    if depth > 50:
        return {"repr": "<too deep>"}
    if value is None or type(value) in (bool, int, float, str):
        return value
    if isinstance(value, int):
        return int.__int__(value)
    if isinstance(value, float):
        return float.__float__(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, list):
        return [_hrmkit_encode(item, depth + 1) for item in list.__iter__(value)]
    if isinstance(value, tuple):
        return {"tuple": [_hrmkit_encode(item, depth + 1) for item in tuple.__iter__(value)]}
    if isinstance(value, (set, frozenset)):
        return {"set": [_hrmkit_encode(item, depth + 1) for item in value]}
    if isinstance(value, dict):
        return {"dict": [[_hrmkit_encode(k, depth + 1), _hrmkit_encode(v, depth + 1)] for k, v in dict.items(value)]}
    return {"repr": type(value).__name__}


def _hrmkit_outputs(function, inputs):
    import copy, json
    outputs = []
    for arguments in inputs:
        try:
            outputs.append(_hrmkit_encode(function(*copy.deepcopy(arguments))))
        except BaseException as error:
            outputs.append({"raised": type(error).__name__})
    return json.dumps(outputs)

'''


def output_harness(task: CodeTask) -> str:
    inputs = json.dumps([list(arguments) for arguments in task.inputs])
    return _HARNESS + f"__hrmkit_result__ = _hrmkit_outputs({task.entry_point}, __import__('json').loads({inputs!r}))\n"


def decode_outputs(text: str) -> list:
    """The harness's tagged JSON back into Python values (tuples, sets, dicts with any keys)."""
    return [_decode(value) for value in json.loads(text)]


def _decode(value):
    if isinstance(value, list):
        return [_decode(item) for item in value]
    if isinstance(value, dict):
        (tag, body), = value.items()
        if tag == "tuple":
            return tuple(_decode(item) for item in body)
        if tag == "set":
            return _Set(_decode(item) for item in body)
        if tag == "dict":
            return _Pairs((_decode(k), _decode(v)) for k, v in body)
        return (tag, body)  # ("raised", name) or ("repr", type name): equal only to the same
    return value


class _Set(list):
    """A decoded set (its items may be unhashable here, e.g. lists): compared as a multiset."""


class _Pairs(list):
    """A decoded dict: compared as unordered (key, value) pairs."""


def outputs_match(expected, actual, atol: float = 0.0) -> bool:
    """EvalPlus's rule: floats within atol (1e-6 when 0) or rel 1e-7, everything else exactly, types too."""
    if isinstance(expected, float) or isinstance(actual, float):
        if isinstance(expected, bool) or isinstance(actual, bool) or not all(isinstance(v, (int, float)) for v in (expected, actual)):
            return False
        if math.isnan(expected) or math.isnan(actual):
            return math.isnan(expected) and math.isnan(actual)
        return math.isclose(actual, expected, rel_tol=1e-7, abs_tol=atol or 1e-6)
    if isinstance(expected, int) and isinstance(actual, int):  # bools too: True == 1, as in EvalPlus
        return expected == actual
    if type(expected) is not type(actual):
        return False
    if isinstance(expected, (_Set, _Pairs)):
        return len(expected) == len(actual) and _unordered_match(list(expected), list(actual), atol)
    if isinstance(expected, (list, tuple)):
        return len(expected) == len(actual) and all(outputs_match(e, a, atol) for e, a in zip(expected, actual))
    return expected == actual


def _unordered_match(expected: list, actual: list, atol: float) -> bool:
    remaining = list(actual)
    for item in expected:
        for index, candidate in enumerate(remaining):
            if outputs_match(item, candidate, atol):
                del remaining[index]
                break
        else:
            return False
    return True


# -- scoring one sample ---------------------------------------------------------------------------
@dataclass
class ScoredSample:
    task_id: str
    sample: int
    completion: str
    code: str
    passed: bool
    verdict: str
    seconds: float
    detail: str = ""

    def record(self, run_key: str) -> dict:
        return {"task_id": self.task_id, "sample": self.sample, "completion": self.completion, "code": self.code,
                "passed": self.passed, "verdict": self.verdict, "seconds": round(self.seconds, 4),
                "detail": self.detail, "run_key": run_key}


def score_solution(task: CodeTask, solution: str, sandbox: Sandbox, expected: list | None = None) -> RunResult:
    """Run the solution against the task; for output comparison, judge the outputs here."""
    result = sandbox.run(program_under_test(task, solution))
    if not task.compares_outputs or not result.passed:
        return result
    if expected is None:
        raise CodeEvalError(f"{task.task_id}: no canonical outputs to compare with")
    try:
        actual = decode_outputs(result.result or "")
    except (ValueError, TypeError, AttributeError):
        return RunResult("error", result.seconds, result.returncode, result.stdout, "unreadable outputs")
    if len(actual) != len(expected):
        return RunResult("failed", result.seconds, result.returncode, result.stdout, "wrong number of outputs")
    for number, (want, got) in enumerate(zip(expected, actual)):
        if not outputs_match(want, got, task.atol):
            return RunResult("failed", result.seconds, result.returncode, result.stdout,
                             f"output {number} differs from the canonical solution's")
    return result


def canonical_outputs(tasks: list[CodeTask], sandbox: Sandbox, workers: int) -> dict[str, list]:
    """Outputs of each output-comparison task's canonical solution, computed in the sandbox."""
    wanted = [task for task in tasks if task.compares_outputs]
    if not wanted:
        return {}
    with ThreadPoolExecutor(max(1, workers)) as pool:
        runs = dict(zip((t.task_id for t in wanted), pool.map(lambda t: sandbox.run(program_under_test(t, t.reference)), wanted)))
    outputs = {}
    for task_id, run in runs.items():
        if not run.passed:
            raise CodeEvalError(f"{task_id}: the canonical solution did not run to its end in the sandbox "
                                f"({run.verdict}: {run.detail or 'no detail'}); raise --timeout or --memory-mb")
        outputs[task_id] = decode_outputs(run.result or "[]")
    return outputs


# -- providers ------------------------------------------------------------------------------------
def reference_provider(pending: list[tuple[CodeTask, int]]) -> Iterator[tuple[CodeTask, int, str, str]]:
    for task, index in pending:
        yield task, index, task.reference, task.reference


def sample_seed(seed: int, task_id: str, index: int) -> int:
    """The sampling seed of sample ``index`` of a task: fixed by the run's seed, the task and the sample
    alone, so a resumed run, another --batch-size or a larger --n draws what one uninterrupted run draws."""
    digest = hashlib.sha256(f"{seed}|{task_id}|{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1  # torch seeds are < 2**64; keep them positive


def model_provider(complete: Callable[[list[str], list[int]], list[str]], prompt_format: str,
                   shots: list[CodeTask] | None, batch_size: int, seed: int = 0) -> Provider:
    """Samples from ``complete(prompts, seeds)`` (one sampling seed per prompt, see ``sample_seed``),
    sanitised into solutions."""
    def provide(pending: list[tuple[CodeTask, int]]):
        for start in range(0, len(pending), batch_size):
            chunk = pending[start:start + batch_size]
            prompts = [render_prompt(task, prompt_format, shots) for task, _ in chunk]
            completions = complete(prompts, [sample_seed(seed, task.task_id, index) for task, index in chunk])
            for (task, index), prompt, completion in zip(chunk, prompts, completions):
                yield task, index, completion, solution_from_completion(task, prompt_format, prompt, completion)
    return provide


# -- results file (resume) ------------------------------------------------------------------------
def run_key(settings: dict) -> str:
    """Samples are only reused by a run with the same settings (n may grow: samples are i.i.d.)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def summary_path_of(results: str | Path) -> Path:
    """Where the summary (pass@k, per-task rates, settings) of a per-sample results JSONL goes."""
    results = Path(results)
    return results.with_name(results.stem + ".summary.json")


class ResultsFile:
    def __init__(self, path: str | Path, key: str):
        self.path = Path(path)
        self.partial = self.path.with_name(self.path.name + ".partial")
        self.key = key

    @property
    def summary_path(self) -> Path:
        return summary_path_of(self.path)

    def load(self) -> dict[tuple[str, int], dict]:
        records: dict[tuple[str, int], dict] = {}
        for source in (self.path, self.partial):
            if not source.exists():
                continue
            for number, line in enumerate(source.read_text(encoding="utf-8").splitlines(), 1):
                try:
                    record = json.loads(line)
                    identity = (str(record["task_id"]), int(record["sample"]))
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut short by an interruption: that sample is scored again
                if record.get("run_key") != self.key:
                    raise CodeEvalError(f"{source} holds samples from a run with other settings (line {number}); "
                                        "pass another --out, or delete the file to start over")
                records[identity] = record
        return records

    def append(self, record: dict) -> None:
        with open(self.partial, "a", encoding="utf-8") as file:
            file.write(json.dumps(record, ensure_ascii=False) + "\n")
            file.flush()

    def finish(self, records: list[dict], summary: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
        atomic_write_text(self.summary_path, json.dumps(summary, indent=2) + "\n")
        self.partial.unlink(missing_ok=True)


# -- the driver -----------------------------------------------------------------------------------
@dataclass
class CodeEvalResult:
    report: PassAtKReport
    verdicts: Counter
    samples: int
    scored_now: int
    seconds: float
    out: Path
    summary: Path
    failed_tasks: list[str] = field(default_factory=list)
    """Tasks with no passing sample (all of them listed: for references this should be empty)."""


def evaluate_code(tasks: list[CodeTask], sandbox: Sandbox, provider: Provider, *, n: int, ks: list[int],
                  out: str | Path, settings: dict, workers: int = 2, progress: Progress | None = None) -> CodeEvalResult:
    """Score n samples per task (resuming from ``out``), then pass@k over the first n samples of each task."""
    if n < 1:
        raise CodeEvalError(f"--n must be >= 1, got {n}")
    started = time.perf_counter()
    key = run_key(settings)
    results = ResultsFile(out, key)
    results.path.parent.mkdir(parents=True, exist_ok=True)
    done = results.load()
    pending = [(task, index) for task in tasks for index in range(n) if (task.task_id, index) not in done]
    total = len(tasks) * n
    counted = {(t.task_id, i) for t in tasks for i in range(n)}
    state = {"scored": total - len(pending), "passed": sum(1 for k, r in done.items() if k in counted and r["passed"])}
    if progress:
        progress(state["scored"], total, state["passed"])
    needing = list({task.task_id: task for task, _ in pending}.values())
    expected = canonical_outputs(needing, sandbox, workers)

    def record(future: Future) -> None:
        scored: ScoredSample = future.result()
        entry = scored.record(key)
        results.append(entry)
        done[(scored.task_id, scored.sample)] = entry
        state["scored"] += 1
        state["passed"] += int(scored.passed)
        if progress:
            progress(state["scored"], total, state["passed"])

    def score(task: CodeTask, index: int, completion: str, code: str) -> ScoredSample:
        run = score_solution(task, code, sandbox, expected.get(task.task_id))
        return ScoredSample(task.task_id, index, completion, code, run.passed, run.verdict, run.seconds,
                            "" if run.passed else run.detail)

    with ThreadPoolExecutor(max(1, workers)) as pool:
        running: set[Future] = set()
        try:
            for task, index, completion, code in provider(pending):
                running.add(pool.submit(score, task, index, completion, code))
                if len(running) >= 4 * max(1, workers):  # keep the sandbox busy, the queue short
                    finished, running = wait(running, return_when=FIRST_COMPLETED)
                    for future in finished:
                        record(future)
        except BaseException:  # interrupted while sampling: keep what is being scored, for the rerun
            for future in wait(running).done:
                if future.exception() is None:
                    record(future)
            raise
        while running:
            finished, running = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                record(future)

    return _finish(tasks, n, ks, done, results, settings, sandbox, len(pending), time.perf_counter() - started)


def _finish(tasks, n, ks, done, results: ResultsFile, settings, sandbox, scored_now, seconds) -> CodeEvalResult:
    order = {task.task_id: position for position, task in enumerate(tasks)}
    counts, verdicts = {}, Counter()
    for task in tasks:
        mine = [done[(task.task_id, i)] for i in range(n) if (task.task_id, i) in done]
        counts[task.task_id] = (len(mine), sum(1 for r in mine if r["passed"]))
        verdicts.update(r["verdict"] for r in mine)
    report = pass_at_k_report(counts, ks)
    records = sorted(done.values(), key=lambda r: (order.get(r["task_id"], len(order)), str(r["task_id"]), r["sample"]))
    summary = {"settings": settings, "sandbox": sandbox.name, "n": n, "tasks": len(tasks),
               "pass_at_k": {f"pass@{k}": v for k, v in report.scores.items()},
               "not_reported": {f"pass@{k}": why for k, why in report.not_reported.items()},
               "verdicts": dict(verdicts), "per_task": report.per_task, "seconds": round(seconds, 2)}
    results.finish(records, summary)
    failed = [task_id for task_id, (_, c) in counts.items() if c == 0]
    return CodeEvalResult(report, verdicts, sum(c[0] for c in counts.values()), scored_now, seconds,
                          results.path, results.summary_path, failed)
