#!/usr/bin/env bash
# Time the evaluation forward (puzzles: all halt_max_steps ACT segments; HRM-LM: one teacher-forced
# pass) of the shipped presets, one after another (never two at once on a small machine).
# Usage: bash benchmarks/eval_step.sh [OUT_DIR]   (JSON per row in OUT_DIR)
set -euo pipefail
out=${1:-bench-results}
mkdir -p "$out"
run() { name=$1; shift; hrm bench eval "$@" --json "$out/eval_$name.json"; }
for precision in fp32 bf16; do
  run "quickstart_$precision" --config quickstart_sudoku4 model.vocab_size=6 model.seq_len=16 --steps 10 --warmup 3 --precision $precision
  run "hrm_v1_$precision" --config hrm_v1 --batch 32 --steps 2 --warmup 1 --precision $precision
  run "arithmetic_$precision" --config arithmetic model.vocab_size=32 model.seq_len=16 --steps 10 --warmup 3 --precision $precision
  run "mbpp_$precision" --config mbpp model.vocab_size=3677 model.seq_len=128 --steps 3 --warmup 1 --precision $precision
  run "maze_small_$precision" --config maze_small model.vocab_size=6 model.seq_len=81 --steps 5 --warmup 2 --precision $precision
  run "routing_small_$precision" --config routing_small model.vocab_size=18 model.seq_len=101 --steps 5 --warmup 2 --precision $precision
done
# The TRM attention preset's 16 segments of 3x(6+1) recursions take minutes per batch: fp32 once.
run "trm_att_fp32" --config trm_sudoku_att --batch 32 --steps 1 --warmup 1
