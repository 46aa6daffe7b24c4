"""Side by side in one process: HRM training steps with and without reusing the Q-target forward.

    python benchmarks/hrm_reuse_ab.py [--config hrm_v1] [--batch 32] [--rounds 4]

The reference recomputes, at every step, the no-grad part of the segment that its Q-target forward
already ran at the step before; so does hrmkit by default. With ``model.reuse_q_target_forward`` it
keeps that work (``ACTCarry.prefetched``) for rows that continue: an approximation, since the
optimizer step in between changed the weights. Steps alternate between the two modes so both see the
same machine state; medians are reported.
"""

import argparse
import statistics
import time

import torch

from hrmkit.config import load_run_config
from hrmkit.model.act import ACTModel
from hrmkit.model.losses import act_loss
from hrmkit.train.optimizers import build_optimizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="hrm_v1")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    cfg = load_run_config(args.config).model
    torch.manual_seed(0)
    model = ACTModel(cfg).train()
    optimizer = build_optimizer("adam_atan2", list(model.parameters()), lr=1e-4, weight_decay=0.1)
    generator = torch.Generator().manual_seed(0)

    def batch():
        shape = (args.batch, cfg.seq_len)
        return {"inputs": torch.randint(1, cfg.vocab_size, shape, generator=generator, dtype=torch.int32),
                "labels": torch.randint(1, cfg.vocab_size, shape, generator=generator),
                "puzzle_identifiers": torch.zeros(args.batch, dtype=torch.int32)}

    carries = {}
    times = {"reuse": [], "recompute": []}
    for round_index in range(args.rounds + 1):
        for mode in times:
            carry = carries.get(mode) or model.initial_carry(batch())
            cfg.reuse_q_target_forward = mode == "reuse"
            started = time.perf_counter()
            carry, outputs = model(carry=carry, batch=batch())
            loss, _ = act_loss(outputs, carry.current_data["labels"], carry.halted, carry.steps, cfg.loss)
            (loss / args.batch).backward()
            optimizer.step()
            optimizer.zero_grad()
            if round_index:  # the first round warms up
                times[mode].append(time.perf_counter() - started)
            carries[mode] = carry
    reuse, recompute = (statistics.median(times[m]) for m in ("reuse", "recompute"))
    print(f"{args.config} batch {args.batch}, {torch.get_num_threads()} threads: reuse {reuse * 1000:.0f} ms/step, "
          f"recompute {recompute * 1000:.0f} ms/step, speed-up {recompute / reuse:.2f}x")


if __name__ == "__main__":
    main()
