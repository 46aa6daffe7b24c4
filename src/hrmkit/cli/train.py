"""``hrm train`` and ``hrm quickstart``: the one trainer from the command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from hrmkit.cli.common import UsageError


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
    from hrmkit.config_base import ConfigError, deep_merge, parse_overrides
    guide, dotted = _guide_overrides(args), parse_overrides(overrides)
    # One field set both ways: the dotted value won and the flag's was never even checked.
    twice = sorted(".".join(path) for path in _leaf_paths(guide)
                   if any(path[:len(other)] == other or other[:len(path)] == path for other in _leaf_paths(dotted)))
    if twice:
        flag_of = {dotted_name: flag for flag, (dotted_name, _) in guide_flags().items()}
        raise ConfigError([f"{name} is given twice, as --{flag_of.get(name, name)} and as an override; give it once"
                           for name in twice])
    return load_run_config(args.config, deep_merge(guide, dotted))


def _leaf_paths(tree: dict, prefix: tuple = ()) -> list[tuple]:
    paths = []
    for key, value in tree.items():
        paths += _leaf_paths(value, prefix + (key,)) if isinstance(value, dict) and value else [prefix + (key,)]
    return paths



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
    finished = False
    try:
        trainer = Trainer(cfg, task_class, reset_progress=args.reset_progress)
        result = trainer.train()
        finished = True
    finally:
        # A process that failed alone (rank 0 writing a file) leaves without waiting for the others, who
        # wait in the next collective: that wait hung the job, and the error was never printed. Its exit
        # then ends the job (torchrun stops the other processes).
        left_a_group = shutdown_processes(together=finished)
    if trainer.proc.is_main:
        _print_train_result(result, cfg.data)
    if left_a_group:
        # Everything is written and the process group is gone, but gloo's worker threads can still
        # abort the interpreter's own teardown now and then (SIGABRT, "terminate called without an
        # active exception"), which torchrun reports as a failed run: leave without that teardown.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0



def _print_train_result(result: dict, data) -> None:
    """The run's final evaluation, named for what it scored: a run evaluated on the split it trains on
    printed it as held-out."""
    run_dir, data_path = Path(result["run_dir"]), data.path
    scored = "held-out" if data.eval_split != data.train_split else f"training-split ({data.train_split}, not held-out)"
    if result.get("already_finished"):
        from hrmkit.loading import final_metrics
        final, metrics = final_metrics(run_dir)
        if final is None:
            return
        result = {**result, "eval": metrics}
        print(f"(results of the finished run, from {final}; a larger train.steps goes on, --reset_progress "
              f"starts again from its weights)")
    evaluation = result.get("eval")
    if evaluation and "steps" in evaluation:
        from hrmkit.puzzles.kind import dataset_kind
        arc = dataset_kind(data_path) == "arc"
        rows = "augmented test rows, each scored alone" if arc else "examples"
        print(f"{scored} exact accuracy {evaluation['exact_accuracy']:.2%} over {int(evaluation['count'])} {rows} "
              f"(token accuracy {evaluation['accuracy']:.2%}, the mean of each example's share of tokens right; "
              f"mean halting step {evaluation['steps']:.2f})")
        if arc:
            print(f"ARC's score votes over each test pair's augmented rows: hrm eval --checkpoint {run_dir} --data {data_path}")
    elif evaluation:
        print(f"{scored} exact match of generated answers {evaluation['exact_accuracy']:.2%} (validation loss "
              f"{evaluation['loss']:.4f} and teacher-forced token accuracy {evaluation['accuracy']:.2%}, each "
              f"answer's token mean averaged over {int(evaluation['count'])} answers)")
    if "train_seconds" in result:
        print(f"trained {result['step']} steps: {result['train_seconds']:.0f} s of training, "
              f"{result['elapsed_seconds']:.0f} s with evaluation and checkpoints")
    best = f", best: {run_dir / 'best-model'}" if (run_dir / "best-model").is_dir() else ""  # only what was written
    print(f"run folder: {run_dir}  (final weights: {run_dir / 'final'}{best}, metrics: {run_dir / 'metrics.jsonl'})")



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
    _print_train_result(result, cfg.data)
    print(f"quickstart finished in {time.perf_counter() - started:.0f} s")
    return 0



def add_parsers(verbs) -> None:
    train = verbs.add_parser("train", help="train (resumes automatically when the run folder has checkpoints)", allow_abbrev=False,
                             description="Train a model. Any config field below can be overridden as key.sub=value "
                                         "or --key.sub value. Rerunning the same command resumes the run from its newest "
                                         "checkpoint (metrics logged after that checkpoint are dropped); resuming with a "
                                         "larger train.steps stretches the learning-rate schedule to the new end, so under "
                                         "cosine the rate rises again from where it was.",
                             epilog="config fields (default, meaning):\n" + fields_table(),
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    train.add_argument("--config", default=None, help="YAML file or preset name (e.g. quickstart_sudoku4)")
    train.add_argument("--reset_progress", "--reset-progress", action="store_true",
                       help="start again at step 0 from the newest checkpoint's weights, with a fresh optimizer, "
                            "schedule and EMA; the run so far moves into runs/<run_name>/generations/<n>/")
    train.add_argument("--dry_run", "--dry-run", action="store_true",
                       help="one forward and backward pass on random tokens; prints the loss and exits")
    guide = train.add_argument_group("training-guide flags (aliases of the config fields named)")
    for flag, (dotted, meaning) in guide_flags().items():  # --batch-size as --run-name: both spellings
        spellings = dict.fromkeys([f"--{flag}", f"--{flag.replace('_', '-')}"])
        guide.add_argument(*spellings, dest=flag, default=None, metavar="V", help=f"{meaning} [{dotted}]")

    quick = verbs.add_parser("quickstart", help="build 4x4 Sudoku, train a tiny TRM on the CPU, evaluate (< 4 min)")
    quick.add_argument("--data", default="data/quickstart_sudoku4",
                       help="dataset folder; the 4x4 Sudoku dataset is built there when missing (default %(default)s)")
    quick.add_argument("--runs-dir", default="runs", help="parent folder of the run folder (default %(default)s)")
    quick.add_argument("overrides", nargs="*", help="config overrides, e.g. train.steps=500")


def fields_table() -> str:
    from hrmkit.config import RunConfig
    from hrmkit.config_base import describe_config
    return "\n".join(f"  {name:32s} {default:>12s}  {doc}" for name, default, doc in describe_config(RunConfig))



def run(args, extra) -> int:
    return cmd_train(args, extra) if args.verb == "train" else cmd_quickstart(args)
