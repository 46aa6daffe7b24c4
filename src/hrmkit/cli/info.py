"""``hrm info`` (a config, a dataset or a checkpoint, described) and ``hrm convert`` (reference -> weights folder)."""

from __future__ import annotations

import json
from pathlib import Path

from hrmkit.cli.common import UsageError


def cmd_info(args, overrides: list[str]) -> int:
    if args.config is not None:
        return _info_config(args.config, overrides)
    if args.data is not None:
        return _info_dataset(Path(args.data))
    if args.checkpoint is not None:
        from hrmkit.loading import load_checkpoint
        model, cfg = load_checkpoint(args.checkpoint)
        params = sum(p.numel() for p in model.parameters())
        print(f"{args.checkpoint}: {cfg.model.variant} model, {params:,} parameters")
        print(json.dumps({"model": _plain(cfg.model)}, indent=2))
        return 0
    raise UsageError("hrm info needs one of --config, --data, --checkpoint, --fields or --names")



def _info_config(config: str, overrides: list[str]) -> int:
    from hrmkit.config import load_run_config
    from hrmkit.config_base import parse_overrides
    from hrmkit.dry_run import shapes_from_data
    cfg = load_run_config(config, parse_overrides(overrides))
    shapes_from_data(cfg)
    model_cfg = cfg.model
    if not model_cfg.vocab_size or not model_cfg.seq_len:
        raise UsageError(f"{config}: model.vocab_size and model.seq_len are read from the dataset at data.path "
                         f"({cfg.data.path or 'not set'}), which is not there yet; build it, or give data.path=DIR "
                         "of a built dataset, or model.vocab_size=N model.seq_len=N")
    if cfg.task == "seq2seq":
        from hrmkit.model.seq2seq import Seq2SeqHRM
        model = Seq2SeqHRM(model_cfg)
    else:
        from hrmkit.model.act import ACTModel
        model = ACTModel(model_cfg)
    params = sum(p.numel() for p in model.parameters())
    buffers = sum(b.numel() for b in model.buffers())
    print(f"{config}: {_describe_model(cfg.task, model_cfg)} | vocab {model_cfg.vocab_size} seq {model_cfg.seq_len}")
    print(f"parameters: {params:,}  (buffers, incl. puzzle embeddings: {buffers:,})")
    return 0



def _describe_model(task: str, model_cfg) -> str:
    """What the config builds: the recursive core (HRM's H and L modules, or TRM's one net) and, for
    HRM-LM, the encoder and decoder around it, or no core at all (model.core: none)."""
    layers = (f"layers H {model_cfg.H_layers} L {model_cfg.L_layers}" if model_cfg.variant == "hrm"
              else f"one net of {model_cfg.L_layers} layers{' (token-mixing MLP)' if model_cfg.mlp_t else ''}")
    cycles = f"cycles H {model_cfg.H_cycles} L {model_cfg.L_cycles}"
    if task != "seq2seq":
        return f"{model_cfg.variant} | hidden {model_cfg.hidden_size} | {layers} | {cycles}"
    core = "no recursive core" if model_cfg.core == "none" else f"core {model_cfg.variant}: {layers}, {cycles}"
    return (f"seq2seq (HRM-LM) | hidden {model_cfg.hidden_size} | encoder {model_cfg.encoder_layers} decoder "
            f"{model_cfg.decoder_layers} layers | {core}")



def _info_dataset(root: Path) -> int:
    from hrmkit.files import puzzle_split_names
    from hrmkit.puzzles.format import load_identifiers, load_split
    for split_name in puzzle_split_names(root):
        split = load_split(root, split_name)
        meta = split.metadata
        print(f"{split_name}: {split.num_examples()} examples, {split.num_puzzles} puzzles, {split.num_groups} groups | "
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



def cmd_convert(args) -> int:
    import shutil

    from hrmkit.lm.task import ASSET_FILES
    from hrmkit.loading import load_checkpoint, resolve_run_checkpoint
    from hrmkit.files import check_output_free
    from hrmkit.train.weights import save_weights_folder, weights_folder_of
    out = check_output_free(args.out, args.force)  # before the checkpoint loads
    source = resolve_run_checkpoint(args.checkpoint)
    model, cfg = load_checkpoint(source, dataset=args.data)

    def copy_assets(folder: Path) -> None:  # an HRM-LM's tokenizer.json and meta.json go with its weights
        for asset in (weights_folder_of(source) / name for name in ASSET_FILES):
            if asset.is_file():
                shutil.copyfile(asset, folder / asset.name)

    save_weights_folder(out, model.checkpoint_module.state_dict(), cfg, step=None, metrics=None, save_assets=copy_assets)
    print(f"wrote {out}/ ({sum(p.numel() for p in model.parameters()):,} parameters): load it with hrm eval --checkpoint {out}")
    return 0



def add_parsers(verbs) -> None:
    info = verbs.add_parser("info", help="describe a config, a dataset or a checkpoint")
    # One thing described per command: each option is a different answer, none refines another. Not
    # required=True: argparse would then name the missing option before a mistyped one (hrm info --bogus).
    what = info.add_mutually_exclusive_group()
    what.add_argument("--config", default=None,
                      help="YAML file or preset name: the model it builds and its parameter count (shapes from "
                           "data.path); key.sub=value overrides after it, as hrm train takes them")
    what.add_argument("--data", default=None, help="dataset folder: its splits, sizes, vocabulary and sequence length")
    what.add_argument("--checkpoint", default=None,
                      help="run folder, weights folder or checkpoint file: its model config and parameter count")
    what.add_argument("--fields", action="store_true", help="list every config field with its default and meaning")
    what.add_argument("--names", action="store_true",
                      help="list every name train.optimizer, train.lr_schedule and model.loss accept")

    convert = verbs.add_parser("convert", help="write an hrmkit weights folder (model.safetensors, config.yaml) from a reference checkpoint")
    convert.add_argument("--checkpoint", required=True, help="the reference checkpoint file (step_N) to convert")
    convert.add_argument("--data", default=None, help="dataset the checkpoint was trained on (for exact shapes)")
    convert.add_argument("--out", required=True, help="the weights folder to write")
    convert.add_argument("--force", action="store_true", help="replace --out if it exists")


def run(args, overrides: list[str]) -> int:
    if args.verb == "convert":
        return cmd_convert(args)
    if args.fields:
        from hrmkit.cli.train import fields_table
        print(fields_table())
        return 0
    if args.names:
        from hrmkit.train.known_names import list_names
        for kind, names in list_names().items():
            print(f"{kind} ({len(names)}): {', '.join(names)}")
        return 0
    return cmd_info(args, overrides)
