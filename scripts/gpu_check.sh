#!/usr/bin/env bash
# The GPU checks in one command, for a machine with a CUDA GPU (Colab, Kaggle, a workstation),
# within about 8 minutes, each step under its own time limit: one epoch of 5 folds of the
# default TIMIT recipe (sequence model) and of the frame MLP on generated full-size arrays,
# with the GPU's busy share sampled every second; the benchmark at full size; the test suite.
# It ends with the figures side by side: seconds per epoch, seconds outside training, GPU
# busy share, peak GPU memory, the bench ratio and the suite's result. Everything it prints is
# also in runs/gpu_check/<time>.log; it exits non-zero if any step failed.
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
out="runs/gpu_check/$stamp"
log="$out.log"
data="data/timit-generated-full"
mkdir -p "$out"
failed=0

step() {  # step "title" SECONDS command...: run it under a time limit, log it, time it
  local title=$1 limit=$2
  shift 2
  echo "== $title (limit ${limit} s)" | tee -a "$log"
  local start=$SECONDS
  timeout "$limit" "$@" 2>&1 | tee -a "$log"
  local code=${PIPESTATUS[0]}
  if [ "$code" -ne 0 ]; then
    failed=1
    echo "FAILED ($code): $*" | tee -a "$log"
  fi
  echo "($((SECONDS - start)) s)" | tee -a "$log"
}

sampled() {  # sampled NAME "title" SECONDS command...: a step, the GPU's busy share sampled
  local name=$1
  shift
  nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader,nounits -lms 1000 \
    > "$out/$name.busy" 2>/dev/null &
  local sampler=$!
  step "$@"
  kill "$sampler" 2>/dev/null
}

step "GPU" 30 nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
if [ ! -f "$data/timit_11/train_11.npy" ]; then
  step "generated full-size TIMIT arrays" 240 python -m competitions.timit.generate "$data" --size full
fi
sampled seq "the default TIMIT recipe (sequence model): one epoch of 5 folds" 300 \
  python -m pipeline.train timit --data-dir "$data" --out "$out/seq" --quiet \
  train.epochs=1
sampled mlp "the frame MLP recipe: one epoch of 5 folds" 180 \
  python -m pipeline.train timit --data-dir "$data" --out "$out/mlp" --quiet \
  train.epochs=1 model.name=mlp "model.hidden=[1024,1024,512,256]" features.context=11 \
  train.grad_clip=0.0 post.prior_weight=0.5 post.transition_weight=2.0
step "bench: full TIMIT size, 5 folds, one epoch, the template timed on 1 fold" 240 \
  python -m bench --size full --folds 5 --epochs 1 --repeats 1 --template-folds 1
step "the test suite" 300 python -m pytest -v -p no:cacheprovider -n auto tests

python - "$out" "$log" <<'EOF' | tee -a "$log"
import json, re, sys
from pathlib import Path

out, log = Path(sys.argv[1]), Path(sys.argv[2]).read_text()
print("== figures")
for name, title in (("seq", "default recipe (seq)"), ("mlp", "frame MLP")):
    path = out / name / "metrics.json"
    if not path.is_file():
        print(f"{title:>22}: no run")
        continue
    m = json.loads(path.read_text())
    s, device = m["seconds"], m.get("device") or {}
    busy = [int(v) for v in (out / f"{name}.busy").read_text().split() if v.isdigit()]
    share = f"{sum(busy) / len(busy):.0f}%" if busy else "n/a"
    print(f"{title:>22}: {s['training']:.1f} s training per epoch of 5 folds, "
          f"{s['total'] - s['training']:.1f} s outside training ({s['total']:.1f} s in all), "
          f"GPU busy {share}, peak GPU memory {device.get('peak_memory_gib', 'n/a')} GiB, "
          f"engine {m['engine']}, accuracy {m['oof_score']:.4f}")
ratio = re.findall(r"ratio \(seconds per epoch, common template / project\): ([\d.]+)x", log)
print(f"{'bench ratio':>22}: {ratio[-1] + 'x' if ratio else 'n/a'}")
suite = re.findall(r"=+ (.*(?:passed|failed).*) in [\d.]+s", log)
print(f"{'test suite':>22}: {suite[-1] if suite else 'n/a'}")
EOF
echo "saved: $log"
exit "$failed"
