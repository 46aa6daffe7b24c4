#!/usr/bin/env bash
# HRM-LM on MBPP against its equal-parameter baseline (model.core: none), timed one after the other
# in one run: training step and KV-cached decoding. Batches are MBPP-shaped: 128 prompt tokens and
# 64 answer tokens (the corpus averages 114 and 61), the vocabulary of `hrm prepare mbpp` (3,677).
# Usage: bash benchmarks/mbpp_pair.sh [OUT_DIR]   (JSON per row in OUT_DIR)
set -euo pipefail
out=${1:-bench-results}
mkdir -p "$out"
shape=(model.vocab_size=3677 model.seq_len=128)
for config in mbpp mbpp_baseline; do
  hrm bench train --config $config "${shape[@]}" --steps 10 --warmup 3 --json "$out/train_$config.json"
  hrm bench generate --config $config "${shape[@]}" --batch 10 --prompt-tokens 114 --new-tokens 64,256 --steps 3 \
    --json "$out/generate_$config.json"
done
