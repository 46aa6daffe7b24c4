"""``hrm bench``: time training steps, the evaluation forward or HRM-LM decoding (figures, not assertions)."""

from __future__ import annotations

from pathlib import Path


def run(args, overrides: list[str]) -> int:
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
    from hrmkit.files import atomic_write_text, refuse_folder
    refuse_folder(args.json)  # before the benchmark, not after it
    settings = [f"train.device={args.device}", f"train.precision={args.precision}", f"train.threads={args.threads}",
                "train.progress=false", f"train.compile={args.compile}"]
    if args.batch is not None and args.what == "train":
        settings.append(f"train.global_batch_size={args.batch}")
    elif args.batch is not None and args.what == "eval":
        settings.append(f"train.eval_batch_size={args.batch}")
    cfg = load_run_config(args.config, parse_overrides(settings + overrides))
    if args.what == "generate":
        if args.threads:
            torch.set_num_threads(args.threads)
        result = bench_generate(cfg, args.new_tokens, batch=1 if args.batch is None else args.batch, prompt_len=args.prompt_tokens, repeats=args.steps)
        for row in result:
            print(format_generate_result(row))
    elif args.what == "eval":
        result = bench_eval(cfg, steps=args.steps, warmup=args.warmup)
        print(format_result(result))
    else:
        result = bench_train(cfg, steps=args.steps, warmup=args.warmup)
        print(format_result(result))
    if args.json:  # its folder is made, as every verb's output folder is
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.json, to_json(result))
    return 0



def _positive_counts(text: str) -> list[int]:
    """'64,256' -> [64, 256]; argparse names the flag when a part is refused."""
    from hrmkit.cli.language import POSITIVE
    return [POSITIVE(part) for part in text.split(",")]


def add_parsers(verbs) -> None:
    from hrmkit.cli.language import NON_NEGATIVE, POSITIVE
    bench = verbs.add_parser("bench", help="time training steps of a config (figures, not assertions)")
    bench.add_argument("what", choices=("train", "eval", "generate"),
                       help="train: optimizer steps; eval: the evaluation forward; generate: HRM-LM decoding "
                            "with and without the KV cache")
    bench.add_argument("--config", required=True, help="YAML file or preset name")
    bench.add_argument("--device", default="cpu", help="auto, cpu, cuda[:N] or mps (default cpu)")
    bench.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"),
                       help="auto: what hrm train uses on the device (bf16 on CUDA and on a CPU that multiplies "
                            "bf16 natively, else fp32)")
    bench.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    bench.add_argument("--batch", type=POSITIVE, default=None, help="global batch size (default: the config's; generate: 1)")
    bench.add_argument("--steps", type=POSITIVE, default=5, help="timed steps or generate repeats (median reported)")
    bench.add_argument("--warmup", type=NON_NEGATIVE, default=2, help="untimed steps first (compilation, caches; default 2)")
    bench.add_argument("--compile", default="auto", choices=("auto", "true", "false"),
                       help="torch.compile the model; auto: what hrm train does on the device (CUDA only)")
    bench.add_argument("--new-tokens", type=_positive_counts, default=[64, 256, 1024],
                       help="generate: answer lengths to time, comma-separated (default 64,256,1024)")
    bench.add_argument("--prompt-tokens", type=POSITIVE, default=32, help="generate: prompt length (default 32)")
    bench.add_argument("--json", default=None, help="also write the figures to this JSON file")

