#!/usr/bin/env bash
# One GPU checks the NCCL path: `torchrun --nproc_per_node 1` joins a one-process NCCL group, so
# every collective (metric sums, the puzzle-embedding row gather, gradient sums, checkpoint object
# gathers) runs exactly as on eight GPUs. Trains a small TRM and a small HRM on 4x4 Sudoku with
# interim evaluations, EMA and puzzle embeddings, then resumes one of them, and says whether each
# finished. Usage: bash benchmarks/torchrun_cuda_check.sh [DEVICE]   (cuda by default; cpu dry-runs it)
set -uo pipefail
device=${1:-cuda}
work=${WORK:-/tmp/hrm_torchrun_check}
PY=${PY:-python3}
rm -rf "$work" && mkdir -p "$work"
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}
"$PY" -m hrmkit prepare sudoku --size 4 --train 2000 --test 256 --difficulty hard --out "$work/sudoku4" >/dev/null || exit 1
launch() { "$PY" -m torch.distributed.run --nnodes 1 --nproc_per_node 1 --master_addr 127.0.0.1 --master_port 29531 -m hrmkit "$@"; }
common=(train --config quickstart_sudoku4 "data.path=$work/sudoku4" "runs_dir=$work/runs" "train.device=$device"
        train.progress=false train.log_steps=50 train.eval_interval=100 train.eval_max_examples=128 train.ema=true
        model.puzzle_emb_ndim=128)
status=0
check() {  # name, then the command
  local name=$1; shift
  local started=$SECONDS
  if "$@" >"$work/$name.log" 2>&1; then result=finished; else result="FAILED (exit $?)"; status=1; fi
  echo "$name: $result in $((SECONDS - started)) s; $(grep -E 'held-out exact|resumed from|already finished' "$work/$name.log" | tr '\n' ' ')"
  [ "$result" = finished ] || tail -n 25 "$work/$name.log"
}
check trm_torchrun launch "${common[@]}" run_name=trm train.steps=${STEPS:-300}
check hrm_torchrun launch "${common[@]}" run_name=hrm model.variant=hrm model.H_layers=2 model.L_layers=2 \
    model.halt_max_steps=4 train.steps=200
check hrm_resume launch "${common[@]}" run_name=hrm model.variant=hrm model.H_layers=2 model.L_layers=2 \
    model.halt_max_steps=4 train.steps=${STEPS:-300}
check hrm_precision_bf16 launch "${common[@]}" run_name=bf16 model.variant=hrm model.H_layers=2 model.L_layers=2 \
    model.halt_max_steps=4 train.steps=100 train.precision=bf16
exit $status
