"""``hrm eval`` (puzzles; ``hrm eval code`` is code_eval.py) and ``hrm generate`` (HRM-LM)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from hrmkit.cli.common import UsageError


def cmd_eval(args) -> int:
    import numpy as np

    from hrmkit.files import atomic_write_text, output_folder, refuse_file, write_atomically
    from hrmkit.loading import load_checkpoint, resolve_run_checkpoint
    from hrmkit.puzzles.arc_vote import evaluate_arc_predictions
    from hrmkit.puzzles.check import path_scores
    from hrmkit.puzzles.evaluate import evaluate_puzzles
    from hrmkit.puzzles.format import load_split
    from hrmkit.puzzles.kind import PATH_KINDS, puzzle_kind
    from hrmkit.train.distributed import pick_device
    from hrmkit.train.speed_settings import compiled_for_evaluation, evaluation_precision
    from hrmkit.train.task import metric_means
    from hrmkit.train.weights import weights_folder_of
    if args.tta < 1:
        raise UsageError(f"--tta must be at least 1, got {args.tta}")
    if args.select == "verified" and args.tta == 1 and len(args.checkpoint) == 1:
        raise UsageError("--select verified chooses among several guesses: add --tta K (K > 1) or more --checkpoint")
    split = load_split(args.data, args.split)
    kind = puzzle_kind(args.data, split)
    guess_kind = _kind_for_guesses(args, kind) if args.tta > 1 or len(args.checkpoint) > 1 else None
    device = pick_device(args.device)
    checkpoints = [resolve_run_checkpoint(path) for path in args.checkpoint]
    models_and_configs = [load_checkpoint(path, dataset=args.data, device=device) for path in checkpoints]
    models = [compiled_for_evaluation(model, device, config.train.compile, args.compile)
              for model, config in models_and_configs]
    # By default the first checkpoint's run's own precision, so the figures are those its evaluations logged.
    first_config = models_and_configs[0][1]
    precision, autocast = evaluation_precision(first_config.train.precision, device, args.precision)
    model, checkpoint = models[0], checkpoints[0]  # the plain figures are the first checkpoint's
    # Named after the dataset too: evaluating the same weights on another dataset keeps the first's results.
    out = refuse_file(args.out or weights_folder_of(checkpoint) / f"eval-{Path(args.data).resolve().name}-{args.split}")
    started = time.perf_counter()
    sums = evaluate_puzzles(model, split, args.batch_size, device, autocast, keep_predictions=True)
    predictions = sums.pop("predictions")
    metrics = metric_means(sums)
    if kind in PATH_KINDS:  # several optimal paths may exist: exact match alone undercounts
        metrics.update(path_scores(split, predictions["predictions"]))
    metrics["precision"], metrics["compiled"] = precision, model is not models_and_configs[0][0]
    output_folder(out)
    # An earlier evaluation's figures go before any new file lands beside them: a stop between this
    # evaluation's writes then leaves no metrics.json describing other predictions. metrics.json comes last.
    for earlier in ("metrics.json", "submission.json"):
        (out / earlier).unlink(missing_ok=True)
    # ARC's score undoes the augmentations, votes across variants and writes submission.json; it needs the
    # test tasks, which the HRM reference's ARC builder does not write.
    arc_test_tasks = Path(args.data) / "test_puzzles.json"
    if args.split == "test" and kind == "arc" and arc_test_tasks.is_file():
        metrics.update(evaluate_arc_predictions(args.data, predictions, out, pass_ks=args.pass_k, split=args.split))
    metrics["seconds"] = time.perf_counter() - started
    if guess_kind is not None:
        from hrmkit.puzzles.guesses import vote_over_guesses
        guesses = vote_over_guesses(models, split, guess_kind, args.tta, args.batch_size, device, select=args.select,
                                    autocast=autocast)
        metrics["test_time_guesses"], metrics["single_model_exact"] = guesses["curve"], guesses["single_model_exact"]
        # The answers behind the largest guess count's figures, beside the first checkpoint's single guess.
        predictions["voted"] = guesses["predictions"]
        if "verified_predictions" in guesses:
            predictions["verified"] = guesses["verified_predictions"]
    picked_here = _picked_on(checkpoint, args.data, args.split)
    metrics["evaluated"] = {"checkpoints": [str(path) for path in checkpoints], "data": str(args.data),
                            "split": args.split, "tta": args.tta, "select": args.select,
                            "checkpoint_picked_on_this_split": picked_here is not None}
    write_atomically(out / "predictions.npz", lambda file: np.savez_compressed(file, **predictions))
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2))
    print(f"exact accuracy {metrics['exact_accuracy']:.2%}  token accuracy {metrics['accuracy']:.2%} (mean per example)  "
          f"mean halting step {metrics['steps']:.2f}  ({int(metrics['count'])} examples, {precision}"
          f"{', compiled' if metrics['compiled'] else ''}, "
          f"{metrics['seconds']:.1f} s)")
    if picked_here is not None:
        print(f"note: {checkpoint} (step {picked_here}) is the best of the run's evaluations on this {args.split} split, "
              f"so the data it is scored on picked it and the figure reads high; the final weights were not "
              f"picked: --checkpoint {Path(checkpoint).parent / 'final'}")
    if args.split == "test" and kind == "arc" and not arc_test_tasks.is_file():
        print(f"note: no {arc_test_tasks}, so no ARC vote: each augmented test row was scored alone")
    if kind == "maze":
        print(f"valid paths {metrics['valid_path']:.2%}  shortest paths {metrics['optimal_path']:.2%}  "
              f"(copying the input would score {metrics['copy_exact']:.2%} exact)")
    elif kind == "routing":
        print(f"legal routes {metrics['valid_path']:.2%}  cost-optimal routes {metrics['optimal_path']:.2%}  "
              f"(copying the input would score {metrics['copy_exact']:.2%} exact)")
    for k in args.pass_k if any(key.startswith("arc_pass@") for key in metrics) else ():
        print(f"ARC pass@{k}: {metrics[f'arc_pass@{k}']:.2%} of tasks (all test pairs right), "
              f"{metrics[f'arc_pass@{k}_fractional']:.2%} as Kaggle scores it (each task's share of its test pairs "
              f"right, averaged over tasks)")
    if (out / "submission.json").exists():
        print(f"Kaggle submission (two attempts per test pair): {out / 'submission.json'}")
    if len(models) > 1:
        print("each checkpoint alone: " + ", ".join(f"{path} {exact:.2%}" for path, exact in zip(checkpoints, metrics["single_model_exact"])))
    for point in metrics.get("test_time_guesses", []):
        print(f"{point['guesses']} guess{'es' if point['guesses'] > 1 else ''} per puzzle: exact accuracy {point['exact_accuracy']:.2%} "
              f"({point['forward_passes_per_puzzle']} forward passes per puzzle, {point['seconds']:.1f} s so far)"
              + (f"; verified selection {point['verified_exact_accuracy']:.2%}" if "verified_exact_accuracy" in point else ""))
    print(f"predictions and metrics in {out}")
    return 0



def _kind_for_guesses(args, kind: str | None) -> str:
    """The dataset's family, whose symmetries --tta and several --checkpoint vote over; checked before any
    model runs."""
    from hrmkit.puzzles.symmetries import KINDS
    if kind not in KINDS:
        raise UsageError(f"--tta and several --checkpoint need a {', '.join(KINDS)} dataset; {args.data} holds "
                         f"{kind or 'another kind'}" + (" (ARC votes over its built augmentations already)" if kind == "arc" else ""))
    return kind


def cmd_generate(args) -> int:
    from hrmkit.lm.generate import SamplingConfig, generate_text
    from hrmkit.loading import load_hrm_lm, resolve_run_checkpoint
    from hrmkit.train.distributed import pick_device
    from hrmkit.train.speed_settings import evaluation_precision
    if bool(args.checkpoint) == bool(args.run_name):
        raise UsageError("give exactly one of --checkpoint and --run_name")
    path = resolve_run_checkpoint(args.checkpoint or Path(args.save_dir) / args.run_name)
    prompts = list(args.prompt or [])
    if args.prompts_file:
        prompts += [line.rstrip("\n") for line in Path(args.prompts_file).read_text().splitlines() if line.strip()]
    if not prompts:
        raise UsageError("no prompt: pass --prompt TEXT (repeatable) or --prompts-file FILE")
    device = pick_device(args.device)
    model, cfg, tokenizer = load_hrm_lm(path, device, "hrm generate")
    _, autocast = evaluation_precision(cfg.train.precision, device)  # as the run's evaluations generated
    # Default: as long an answer as the decoder can place (0 or less is refused by SamplingConfig).
    max_new_tokens = model.config.seq_len + 1 if args.max_new_tokens is None else args.max_new_tokens
    sampling = SamplingConfig(max_new_tokens=max_new_tokens, temperature=args.temperature, top_k=args.top_k,
                              top_p=args.top_p, repetition_penalty=args.repetition_penalty, seed=args.seed)
    _say_what_the_model_reads(prompts, tokenizer, model.config.seq_len)
    started = time.perf_counter()
    with autocast():
        answers = generate_text(model, tokenizer, prompts, sampling, device, halt=args.halt)
    for prompt, answer in zip(prompts, answers):
        print(json.dumps({"prompt": prompt, "answer": answer}, ensure_ascii=False) if args.jsonl else f"{prompt} -> {answer}")
    count = f"{len(prompts)} prompt{'s' if len(prompts) > 1 else ''}"
    print(f"({count}, {time.perf_counter() - started:.2f} s, {path})", file=sys.stderr)
    return 0



def _picked_on(checkpoint: Path, data: str, split: str) -> int | None:
    """The step of a best-model/ folder whose run picked it, among other weights, by evaluations of this
    dataset's ``split`` (the same folder name, as eval-<name>-<split> names results), else None. Weights
    that are also the run's final ones (the same step) were picked by nothing."""
    import yaml
    folder = Path(checkpoint)
    if folder.name != "best-model" or not folder.is_dir():
        return None
    try:
        config = yaml.safe_load((folder / "config.yaml").read_text())
        step = int(json.loads((folder / "metrics.json").read_text())["step"])
        trained_on, evaluated_split = config["data"]["path"], config["data"].get("eval_split", "test")
    except (OSError, ValueError, KeyError, TypeError, yaml.YAMLError):
        return None
    try:
        final_step = int(json.loads((folder.parent / "final" / "metrics.json").read_text())["step"])
    except (OSError, ValueError, KeyError, TypeError):
        final_step = None  # an unfinished run: whatever it kept was picked
    same_data = Path(str(trained_on)).resolve().name == Path(data).resolve().name
    return step if same_data and evaluated_split == split and step != final_step else None


def _say_what_the_model_reads(prompts: list[str], tokenizer, seq_len: int) -> None:
    """A note for each prompt the model does not read as written: one longer than its encoder takes
    (it reads the last seq_len tokens) or with characters its tokenizer does not know (read as <unk>)."""
    for number, prompt in enumerate(prompts, 1):
        ids = tokenizer.encode(prompt)
        if len(ids) > seq_len:
            print(f"note: prompt {number} is {len(ids)} tokens; the model reads its last {seq_len} (model.seq_len)",
                  file=sys.stderr)
        if tokenizer.unk_id in ids:
            print(f"note: prompt {number} has characters the tokenizer does not know; they read as <unk>",
                  file=sys.stderr)


def add_parsers(verbs) -> None:
    evaluate = verbs.add_parser("eval", help="evaluate a checkpoint (hrmkit or reference) on a dataset; code tasks: hrm eval code",
                                epilog="code tasks (MBPP, HumanEval, EvalPlus) in a sandbox with pass@k: hrm eval code --help")
    evaluate.add_argument("--checkpoint", required=True, nargs="+", metavar="PATH",
                          help="a run folder (its best-model/, else final/), a weights folder, a step_N.pt or a reference "
                               "step_N file; several (e.g. runs/x/checkpoints/step_*.pt) vote together on Sudoku, maze "
                               "and routing datasets, each asked every --tta symmetry")
    evaluate.add_argument("--data", required=True, help="dataset folder")
    evaluate.add_argument("--split", default="test", help="the dataset's split to score (default test)")
    evaluate.add_argument("--batch-size", type=int, default=256, help="puzzles per forward pass (default 256)")
    evaluate.add_argument("--device", default="auto", help="auto (CUDA, else MPS, else CPU), cpu, cuda[:N] or mps")
    evaluate.add_argument("--precision", default="run", choices=("run", "fp32", "bf16", "fp16"),
                          help="run (default): the precision the first checkpoint's run trained and evaluated "
                               "with (its config.yaml; fp32 for a reference checkpoint, which records none), so the "
                               "figures are the ones its own evaluations logged; fp32, bf16 or fp16 by hand")
    evaluate.add_argument("--compile", default="run", choices=("run", "true", "false"),
                          help="run the model under torch.compile; run (default): as each checkpoint's run evaluated "
                               "(its config.yaml's train.compile; on CUDA for a reference checkpoint), so the figures "
                               "are the ones it logged; true or false by hand (compiling: a one-time warm-up, then "
                               "faster batches)")
    evaluate.add_argument("--out", default=None,
                          help="folder for metrics.json and predictions.npz (default: eval-<dataset>-<split>/ beside "
                               "the first checkpoint's weights)")
    evaluate.add_argument("--pass-k", type=int, nargs="+", default=[1, 2, 10],
                          help="ARC datasets: the k of the voted pass@k scores")
    evaluate.add_argument("--tta", type=int, default=1, metavar="K",
                          help="Sudoku, maze, routing: K guesses per puzzle, from K symmetric copies (the first as "
                               "given), each answer mapped back, then a vote; prints exact accuracy for 1, 2, 4, ... "
                               "guesses (default 1: the puzzle as given)")
    evaluate.add_argument("--select", default="vote", choices=("vote", "verified"),
                          help="with --tta: also report choosing the best-voted answer that passes the family's "
                               "checker (it uses the rules, which the model does not see: its own column)")

    gen = verbs.add_parser("generate", help="answer prompts with a trained HRM-LM (KV-cached decoding)")
    gen.add_argument("--prompt", action="append", help="a prompt (repeat for a batch)")
    gen.add_argument("--prompts-file", default=None, help="one prompt per line")
    gen.add_argument("--run_name", "--run-name", default=None, help="use this run's best model (else final, else newest step)")
    gen.add_argument("--save_dir", "--save-dir", default="runs", help="parent folder of runs")
    gen.add_argument("--checkpoint", default=None, help="a run folder, or a weights folder (final/, best-model/) with its tokenizer.json")
    gen.add_argument("--max_new_tokens", "--max-new-tokens", type=int, default=None,
                     help="answer tokens at most (default: the model's seq_len + 1)")
    gen.add_argument("--temperature", type=float, default=0.0, help="0 = greedy")
    gen.add_argument("--top_k", "--top-k", type=int, default=0,
                     help="sample among the k likeliest tokens only (default 0: all)")
    gen.add_argument("--top_p", "--top-p", type=float, default=1.0,
                     help="sample among the likeliest tokens whose probabilities sum to p (default 1.0: all)")
    gen.add_argument("--repetition_penalty", "--repetition-penalty", type=float, default=1.0,
                     help="> 1 makes tokens already in the answer less likely (default 1.0: no penalty)")
    gen.add_argument("--seed", type=int, default=None, help="seed of the sampling, for a repeatable answer")
    gen.add_argument("--halt", action="store_true", help="stop the core's segments once its Q head says halt")
    gen.add_argument("--device", default="auto", help="auto (CUDA, else MPS, else CPU), cpu, cuda[:N] or mps")
    gen.add_argument("--jsonl", action="store_true", help="print one JSON object per prompt")


def run(args, extra) -> int:
    return cmd_eval(args) if args.verb == "eval" else cmd_generate(args)
