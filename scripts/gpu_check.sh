#!/usr/bin/env bash
# The speed engine's GPU checks in one command, for a machine with a CUDA GPU (Colab, Kaggle, a
# workstation): the CUDA-only tests, the benchmark at full TIMIT size with and without CUDA
# graphs, one epoch of the default TIMIT recipe (5 folds) and of the frame MLP on generated
# full-size arrays, and the sequence model's seconds per epoch and peak GPU memory.
# Every step runs even if one before it failed; all output is kept in runs/gpu_check/<time>.log
# and the script exits non-zero if any step failed.
#
#   bash scripts/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."

if ! python -c "import torch" 2>/dev/null; then
  echo "scripts/gpu_check.sh: python cannot import torch; install the project first (README)." >&2
  exit 2
fi
if ! python -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "scripts/gpu_check.sh needs a CUDA GPU: torch.cuda.is_available() is False here." >&2
  exit 2
fi

stamp=$(date +%Y%m%d-%H%M%S)
log="runs/gpu_check/$stamp.log"
data="data/timit-generated-full"
mkdir -p "$(dirname "$log")"
failed=0

step() {  # step "title" command...: run it, log it, time it, remember a failure
  echo "== $1" | tee -a "$log"
  shift
  local start=$SECONDS
  if ! "$@" 2>&1 | tee -a "$log"; then
    failed=1
    echo "FAILED: $*" | tee -a "$log"
  fi
  echo "($((SECONDS - start)) s)" | tee -a "$log"
}

step "GPU" nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
step "CUDA-only tests" python -m pytest -q -rs tests/engine/test_fast.py -k gpu
step "bench: full TIMIT size, 5 folds, batch 512" \
  python -m bench --size full --folds 5 --batch 512
step "bench: the same, 10 epochs, the step in CUDA graphs" \
  python -m bench --size full --folds 5 --batch 512 --epochs 10 --compile reduce-overhead
if [ ! -f "$data/timit_11/train_11.npy" ]; then
  step "generated full-size TIMIT arrays" python -m competitions.timit.generate "$data" --size full
fi
step "the default TIMIT recipe: one epoch of 5 folds" \
  python -m pipeline.train timit --data-dir "$data" --out "runs/gpu_check/timit-$stamp" \
  train.epochs=1
step "the frame MLP recipe (model.name=mlp): one epoch of 5 folds" \
  python -m pipeline.train timit --data-dir "$data" --out "runs/gpu_check/timit-mlp-$stamp" \
  train.epochs=1 model.name=mlp "model.hidden=[1024,1024,512,256]" features.context=11 \
  train.grad_clip=0.0
step "the sequence model (model.name=seq): seconds per epoch and peak GPU memory, one fold" \
  python -m research.timit.epoch_time "$data" --folds 5 --epochs 1 model.name=seq
echo "saved: $log"
exit "$failed"
