#!/usr/bin/env bash
# hrmkit's GPU figures in one run (about 7 minutes on one H100/H200): the training step of the paper
# configs at Sudoku shapes, batch 768, with default flags and with explicit ones, then a short
# sudoku6 time-to-accuracy run through the CLI, and hrm_v1's evaluation batch compiled and eager. Optionally the reference implementations' columns; last,
# if time is left, two compiler switches (CUDA graphs, matmul autotuning) on trm_sudoku_att.
#
#     bash benchmarks/gpu_suite.sh                          # on the GPU machine, from the repo root
#     DRYRUN=cpu bash benchmarks/gpu_suite.sh               # prove the script on the CPU (tiny sizes)
#     REFBENCH=.refbench bash benchmarks/gpu_suite.sh       # + reference columns (the refbench kit, carried)
#       (make .refbench first: python benchmarks/refbench_kit.py ../shared/refbench .refbench)
#
# Env: OUT (where logs and JSON go; the device tool's $OUT, else /tmp/gpu_suite), TOTAL_S (stop
# starting stages past this many seconds; 450), PY (python3), HRMKIT_SRC (src/ of this checkout), WHEELS
# (wheels of the packages PY lacks, installed to /tmp/gpu_suite_site; default: REFBENCH's whl/).
# Rows use train.optimizer=adamw like the reference harness (OPTIMIZER=adam_atan2 for the presets' own row).
# Every compiled row runs with TORCH_LOGS=recompiles,graph_breaks; the table counts what it printed.
set -u
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT=${OUT:-/tmp/gpu_suite}
PY=${PY:-python3}
DRYRUN=${DRYRUN:-}
TOTAL_S=${TOTAL_S:-450}
REFBENCH=${REFBENCH:-}
export PYTHONPATH="${HRMKIT_SRC:-$ROOT/src}${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
mkdir -p "$OUT/rows"

if [ "$DRYRUN" = cpu ]; then
  DEVICE=(--device cpu --batch 4 --threads 2)
  DEFAULT=(--compile true)  # the CPU's auto is eager: compile anyway, to prove the compiled rows
  SMALL=(model.hidden_size=64 model.num_heads=2 model.H_cycles=1 model.L_cycles=1 model.halt_max_steps=2)
  EAGER=(--steps 1 --warmup 1); COMPILED=(--steps 1 --warmup 1)
  SUDOKU6_DATA=(--size 6 --train 200 --test 40 --num-aug 1 --difficulty hard --disjoint-solutions)
  SUDOKU6_TRAIN=(train.device=cpu train.steps=20 train.eval_interval=10); SUDOKU6_S=120
  REF_ARGS=(--device cpu --small --batch 4 --threads 2 --steps 1 --warmup 1)
  ADAM_ARGS=(--device cpu --config trm_sudoku_att --steps 1)
else
  DEVICE=(--device cuda --batch 768)
  DEFAULT=()
  SMALL=()
  EAGER=(--steps 10 --warmup 3); COMPILED=(--steps 10 --warmup 3)
  SUDOKU6_DATA=(--size 6 --train 3000 --test 500 --num-aug 8 --difficulty hard --disjoint-solutions)
  SUDOKU6_TRAIN=(train.device=cuda); SUDOKU6_S=90
  REF_ARGS=(--device cuda --batch 768 --steps 10 --warmup 3)
  ADAM_ARGS=(--device cuda --config hrm_v1 --steps 20)
fi

left() { echo $((TOTAL_S - SECONDS)); }

row() {  # name cap hrm-bench-arguments...: one training-step figure (WHAT=eval: an evaluation batch), JSON in $OUT/rows/NAME.json
  local name=$1 cap=$2; shift 2
  if [ "$(left)" -lt 30 ]; then echo "=== SKIP $name: $(left) s left of TOTAL_S=$TOTAL_S"; return; fi
  [ "$(left)" -lt "$cap" ] && cap=$(left)
  echo "=== $name (limit ${cap} s, ${SECONDS} s elapsed)"
  TORCH_LOGS=recompiles,graph_breaks timeout -k 10 "$cap" "$PY" -m hrmkit bench "${WHAT:-train}" "$@" "${DEVICE[@]}" \
      train.optimizer="${OPTIMIZER:-adamw}" "${SMALL[@]}" --json "$OUT/rows/$name.json" 2> "$OUT/rows/$name.err"
  echo "=== $name: exit $? ($(grep -c 'Recompiling function' "$OUT/rows/$name.err") recompiles," \
       "$(grep -ci 'graph break' "$OUT/rows/$name.err") graph-break lines)"
  tail -n 3 "$OUT/rows/$name.err"
}

ref_row() {  # name cap side_by_side-arguments...: the reference's step (refbench kit)
  local name=$1 cap=$2; shift 2
  if [ -z "$REFBENCH" ] || [ "$(left)" -lt 40 ]; then return; fi
  [ "$(left)" -lt "$cap" ] && cap=$(left)
  echo "=== reference $name (limit ${cap} s)"
  HRMKIT_SRC="${HRMKIT_SRC:-$ROOT/src}" timeout -k 10 "$cap" "$PY" "$REFBENCH/side_by_side.py" --impl ref \
      "${REF_ARGS[@]}" "$@" --json "$OUT/rows/$name.json" > "$OUT/rows/$name.log" 2>&1
  echo "=== reference $name: exit $?"; tail -n 3 "$OUT/rows/$name.log"
}

wheels() {  # hrmkit's and the reference's packages the GPU image lacks, from carried wheels (the refbench kit's whl/)
  local need='import pytorch_optimizer' dir=${WHEELS:-${REFBENCH:+$REFBENCH/whl}} site=/tmp/gpu_suite_site
  [ -n "$REFBENCH" ] && need="$need, pydantic"
  "$PY" -c "$need" 2>/dev/null && return 0
  if [ -n "$dir" ] && [ -d "$dir" ]; then
    for whl in "$dir"/*.whl; do  # one at a time: a wheel for another Python must not stop the others
      "$PY" -m pip install -q --no-index --no-deps --no-compile --target "$site" "$whl" 2>/dev/null || echo "wheel not installed: $whl"
    done
    export PYTHONPATH="$site:$PYTHONPATH"
  fi
  "$PY" -c "$need" 2>/dev/null && return 0
  echo "gpu_suite: $PY cannot '$need'; give WHEELS=DIR (or REFBENCH=KIT, whose whl/ holds them)"; return 1
}

main() {
  wheels || return 2
  nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv 2>/dev/null || echo "no nvidia-smi"
  "$PY" -c 'import sys, torch, hrmkit; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA", "| hrmkit", hrmkit.__file__)'

  # Default flags: what `hrm train --config X` runs on this device (CUDA: bf16 autocast + TF32 + compile).
  row hrm_v1.default 150 --config hrm_v1 "${DEFAULT[@]}" "${COMPILED[@]}"
  row trm_att.default 120 --config trm_sudoku_att "${DEFAULT[@]}" "${COMPILED[@]}"
  row trm_mlp.default 120 --config trm_sudoku_mlp "${DEFAULT[@]}" "${COMPILED[@]}"
  # The one default that differs from the earlier hrmkit: bf16 states (model.state_dtype=auto) against float32.
  row trm_att.float32_states 120 --config trm_sudoku_att "${DEFAULT[@]}" "${COMPILED[@]}" model.state_dtype=float32
  # Explicit flags: the reference's math eager, and fp32 without TF32.
  row hrm_v1.bf16_eager 60 --config hrm_v1 --precision bf16 --compile false "${EAGER[@]}"
  row trm_att.bf16_eager 60 --config trm_sudoku_att --precision bf16 --compile false "${EAGER[@]}"
  row trm_mlp.bf16_eager 60 --config trm_sudoku_mlp --precision bf16 --compile false "${EAGER[@]}"
  row hrm_v1.fp32_eager 60 --config hrm_v1 --precision fp32 --compile false "${EAGER[@]}"

  # sudoku6 through the CLI: build, train the preset with default flags for a wall-clock limit, report.
  if [ "$(left)" -ge 60 ]; then
    local work="$OUT/sudoku6" limit=$SUDOKU6_S
    [ "$(left)" -lt $((limit + 40)) ] && limit=$(($(left) - 40))
    echo "=== sudoku6: train for at most ${limit} s"
    "$PY" -m hrmkit prepare sudoku "${SUDOKU6_DATA[@]}" --out "$work/data" > "$OUT/sudoku6_prepare.log" 2>&1 \
      && (cd "$work" && timeout -s INT -k 10 "$limit" "$PY" -m hrmkit train --config sudoku6 data.path=data \
            run_name=default train.progress=false "${SUDOKU6_TRAIN[@]}" > "$OUT/sudoku6_train.log" 2>&1)
    echo "=== sudoku6: exit $? (124 or 130: stopped by the limit)"
    "$PY" "$ROOT/benchmarks/time_to_accuracy.py" "$work/runs/default" --thresholds 0.5 0.9 0.95 0.99
  fi

  # The presets' own optimizer (adam_atan2) on the default flags: what the optimizer costs on top.
  OPTIMIZER=adam_atan2 row hrm_v1.adam_atan2 150 --config hrm_v1 "${DEFAULT[@]}" "${COMPILED[@]}"
  # Its step alone: flat buckets against the old per-parameter loop, side by side.
  if [ "$(left)" -ge 40 ]; then
    echo "=== adam_atan2 step"
    timeout -k 10 60 "$PY" "$ROOT/benchmarks/adam_atan2_step.py" "${ADAM_ARGS[@]}" 2>&1 | tail -n 4
  fi

  ref_row ref.hrm.compiled 150 --family hrm --precision bf16 --compile "${COMPILED[@]}"
  ref_row ref.trm_att.compiled 120 --family trm_att --precision bf16 --compile "${COMPILED[@]}"
  ref_row ref.hrm.bf16_eager 60 --family hrm --precision bf16 "${EAGER[@]}"
  ref_row ref.trm_att.bf16_eager 60 --family trm_att --precision bf16 "${EAGER[@]}"
  ref_row ref.trm_mlp.bf16_eager 60 --family trm_mlp --precision bf16 "${EAGER[@]}"

  # The evaluation forward (every example all 16 ACT segments): a compiling run evaluates its compiled
  # model, as the reference does; the eager row is what evaluations cost before.
  WHAT=eval row eval.hrm_v1.default 120 --config hrm_v1 "${DEFAULT[@]}" "${COMPILED[@]}"
  WHAT=eval row eval.hrm_v1.bf16_eager 60 --config hrm_v1 --precision bf16 --compile false --steps 3 --warmup 1

  # Compiler settings that may pay on a GPU, by inductor's own switches, measured before hrmkit offers them:
  # matmul autotuning (what mode="max-autotune" adds; minutes of compiling) and CUDA graphs (what
  # mode="reduce-overhead" adds). The ACT carry and the metrics outlive the graph run that made them; if a
  # replay would overwrite them torch raises, and the row's exit and log say so. Last: run if time is left.
  TORCHINDUCTOR_CUDAGRAPHS=1 row trm_att.cudagraphs 120 --config trm_sudoku_att "${DEFAULT[@]}" "${COMPILED[@]}"
  TORCHINDUCTOR_MAX_AUTOTUNE=1 row trm_att.max_autotune 240 --config trm_sudoku_att "${DEFAULT[@]}" "${COMPILED[@]}"

  "$PY" "$ROOT/benchmarks/gpu_table.py" "$OUT/rows"
  echo "=== gpu_suite finished after ${SECONDS} s"
}

main 2>&1 | tee "$OUT/log.txt"; exit "${PIPESTATUS[0]}"
