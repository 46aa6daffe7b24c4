"""What one compiled training step moves through memory, by inductor's own count: a CPU stand-in for
the GPU time that elementwise kernels (norms, residual adds, RoPE, casts) cost, and for what the step
keeps for its backward.

    python benchmarks/compiled_traffic.py --config trm_sudoku_att [--batch 64] [--refbench ../shared/refbench]

Each variant runs in its own process: hrmkit's preset at Sudoku shapes (seq 81, vocab 11, one puzzle
id) under bf16 autocast with ``model.state_dtype`` float32 and autocast, and, given the refbench kit,
the reference model stepped as its pretrain.py does (bf16 forward), both compiled, AdamW on both sides.
While inductor compiles a graph it adds up the bytes every kernel reads and writes (extern matmuls
included); one training step runs each graph once (checked with the profiler), so the sum over graphs
is the step's. The figures are estimates of traffic, not times, and they do not depend on the CPU:
where two steps do the same FLOPs, the one that moves fewer bytes spends less time in memory-bound
kernels on a GPU too. The kernel count is inductor's scheduler nodes (fused kernels and extern calls).
"""

import argparse
import json
import os
import subprocess
import sys

PRESET_FAMILIES = {"hrm_v1": "hrm", "trm_sudoku_att": "trm_att", "trm_sudoku_mlp": "trm_mlp"}
SUDOKU_SHAPES = ["model.vocab_size=11", "model.seq_len=81", "model.num_puzzle_identifiers=1"]


def count_compiled_graphs():
    """Record, for every graph inductor compiles from now on: bytes moved, kernels, and the bytes of
    its inputs (for the backward graph: what the forward kept for it, plus the incoming gradients)."""
    import torch
    from torch._inductor.graph import GraphLowering

    graphs = []
    count_bytes = GraphLowering.count_bytes

    def counting(self):
        result = count_bytes(self)
        inputs = sum(box.get_numel() * box.get_dtype().itemsize for box in self.graph_inputs.values()
                     if hasattr(box, "get_numel"))
        graphs.append({"backward": bool(self.is_backward), "bytes": int(result[0]),
                       "kernels": len(self.scheduler.nodes), "input_bytes": int(inputs)})
        return result

    GraphLowering.count_bytes = counting
    torch._logging.set_logs(inductor_metrics=True)  # inductor counts bytes only with this log on
    return graphs


def hrmkit_step(preset: str, batch: int, state_dtype: str):
    import tempfile
    from dataclasses import replace

    from hrmkit.bench import synthetic_task
    from hrmkit.config import load_run_config
    from hrmkit.config_base import parse_overrides
    from hrmkit.train.trainer import Trainer

    overrides = ["train.device=cpu", "train.precision=bf16", "train.compile=true", "train.optimizer=adamw",
                 f"train.global_batch_size={batch}", "train.progress=false", f"model.state_dtype={state_dtype}",
                 *SUDOKU_SHAPES]
    cfg = load_run_config(preset, parse_overrides(overrides))
    cfg = replace(cfg, runs_dir=tempfile.mkdtemp(prefix="compiled_traffic_"), run_name="bench")
    trainer = Trainer(cfg, synthetic_task(cfg), log=lambda *_: None)
    return trainer._train_step


def reference_step(preset: str, batch: int, refbench: str):
    import argparse as ap

    import torch
    sys.path.insert(0, refbench)
    import side_by_side  # the refbench kit's harness: the reference's own model, loss head and step

    args = ap.Namespace(precision="bf16", batch=batch, compile=True, small=False, ema="auto", seed=0)
    runner = side_by_side.RefRunner(args, side_by_side.FAMILIES[PRESET_FAMILIES[preset]], torch.device("cpu"))
    return runner.step


def measure_one(variant: str, preset: str, batch: int, refbench: str) -> dict:
    import torch
    from torch.profiler import profile

    torch.set_num_threads(min(2, torch.get_num_threads()))
    graphs = count_compiled_graphs()
    step = reference_step(preset, batch, refbench) if variant == "reference" else hrmkit_step(preset, batch, variant)
    for _ in range(3):  # the first compiles; later ones show that nothing recompiles
        step()
    with profile() as prof:
        step()
    runs = sum(1 for event in prof.events() if event.name.startswith("## Call CompiledFxGraph"))
    forward = [g for g in graphs if not g["backward"]]
    backward = [g for g in graphs if g["backward"]]
    return {"variant": variant, "graphs": len(graphs), "graph_runs_per_step": runs,
            "forward_MB": sum(g["bytes"] for g in forward) / 1e6, "backward_MB": sum(g["bytes"] for g in backward) / 1e6,
            "kernels": sum(g["kernels"] for g in graphs),
            "backward_inputs_MB": sum(g["input_bytes"] for g in backward) / 1e6}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="trm_sudoku_att", choices=sorted(PRESET_FAMILIES))
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--refbench", default="", help="the refbench kit's folder: adds the reference's row")
    p.add_argument("--variants", default="", help=argparse.SUPPRESS)  # a comma list; default: all
    p.add_argument("--one", default="", help=argparse.SUPPRESS)  # internal: measure this variant, print JSON
    args = p.parse_args()
    if args.one:
        print("RESULT " + json.dumps(measure_one(args.one, args.config, args.batch, args.refbench)))
        return 0
    variants = ["float32", "autocast"] + (["reference"] if args.refbench else [])
    variants = args.variants.split(",") if args.variants else variants
    env = dict(os.environ, TORCHINDUCTOR_FORCE_DISABLE_CACHES="1")  # a cached graph is not counted
    rows = []
    for variant in variants:
        command = [sys.executable, __file__, "--one", variant, "--config", args.config, "--batch", str(args.batch),
                   "--refbench", os.path.abspath(args.refbench) if args.refbench else ""]
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
        if done.returncode or not lines:
            print(f"{variant}: failed (exit {done.returncode})\n{done.stderr[-2000:]}", file=sys.stderr)
            return 1
        rows.append(json.loads(lines[-1][len("RESULT "):]))
    print(f"{args.config}, batch {args.batch}, bf16, compiled; MB by inductor's count")
    print(f"{'states':>10} {'forward MB':>11} {'backward MB':>12} {'step MB':>9} {'kernels':>8} {'kept for backward MB':>21}")
    for r in rows:
        name = {"float32": "float32", "autocast": "bf16", "reference": "reference"}[r["variant"]]
        warning = "" if r["graph_runs_per_step"] == r["graphs"] else f"  (graphs {r['graphs']}, runs {r['graph_runs_per_step']})"
        print(f"{name:>10} {r['forward_MB']:11.1f} {r['backward_MB']:12.1f} {r['forward_MB'] + r['backward_MB']:9.1f}"
              f" {r['kernels']:8d} {r['backward_inputs_MB']:21.1f}{warning}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
