#!/usr/bin/env bash
# Time the evaluation forward (every ACT segment, no gradients) of the shipped presets, fp32 and
# bf16, one after another. Usage: bash benchmarks/eval_step.sh [OUT_DIR]   (JSON per row in OUT_DIR)
set -euo pipefail
out=${1:-bench-results}
mkdir -p "$out"
run() { name=$1; shift; hrm bench eval "$@" --json "$out/eval_$name.json"; }
for precision in fp32 bf16; do
  run "quickstart_$precision" --config quickstart_sudoku4 model.vocab_size=6 model.seq_len=16 --steps 10 --warmup 3 --precision $precision
  run "hrm_v1_$precision" --config hrm_v1 --batch 32 --steps 3 --warmup 1 --precision $precision
  run "trm_att_$precision" --config trm_sudoku_att --batch 32 --steps 2 --warmup 1 --precision $precision
  run "arithmetic_$precision" --config arithmetic --steps 10 --warmup 3 --precision $precision
  run "default_lm_$precision" --config default --batch 16 --steps 3 --warmup 1 --precision $precision
done
