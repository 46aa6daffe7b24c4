#!/usr/bin/env bash
# Time the training step of each shipped preset, fp32 and bf16, one after another (never two at
# once on a small machine). Usage: bash benchmarks/train_step.sh [OUT_DIR]   (JSON per row in OUT_DIR)
set -euo pipefail
out=${1:-bench-results}
mkdir -p "$out"
run() { name=$1; shift; hrm bench train "$@" --json "$out/$name.json"; }
for precision in fp32 bf16; do
  run "quickstart_$precision" --config quickstart_sudoku4 model.vocab_size=6 model.seq_len=16 --steps 20 --warmup 5 --precision $precision
  run "hrm_v1_$precision" --config hrm_v1 --batch 32 --steps 3 --warmup 2 --precision $precision
  run "trm_mlp_$precision" --config trm_sudoku_mlp --batch 32 --steps 2 --warmup 1 --precision $precision
  run "trm_att_$precision" --config trm_sudoku_att --batch 32 --steps 2 --warmup 1 --precision $precision
done
# The same HRM step reusing the Q-target forward's no-grad work (an approximation, off by default):
# the ratio of the two hrm_v1 fp32 rows is what reusing it buys.
run "hrm_v1_fp32_reuse" --config hrm_v1 --batch 32 --steps 3 --warmup 2 model.reuse_q_target_forward=true
