#!/usr/bin/env bash
# Median against Wilcoxon pruning on COVID with the same time budget: one tuning run per pruner
# (TIMEOUT seconds, default 600, sampler seed 0) into runs/prune_<pruner>/, its output in
# runs/prune_<pruner>.log, then one line per pruner read from the run's tune.json: trials
# complete / pruned / failed and the best out-of-fold value.
#
#   bash scripts/compare_pruners.sh                        # 2 x 10 minutes
#   TIMEOUT=60 bash scripts/compare_pruners.sh             # a smoke run
#   bash scripts/compare_pruners.sh train.engine=plain     # extra arguments go to every run
#
# DATA_DIR (default ../shared/data/ml2021spring-hw1) is the folder of the COVID files.
set -uo pipefail
cd "$(dirname "$0")/.."

timeout=${TIMEOUT:-600}
data=${DATA_DIR:-../shared/data/ml2021spring-hw1}
pruners=(median wilcoxon)

for p in "${pruners[@]}"; do
  if [ -e "runs/prune_$p" ]; then
    echo "scripts/compare_pruners.sh: runs/prune_$p exists and a new run would resume its" \
      "study; move it away or delete it first." >&2
    exit 2
  fi
done
mkdir -p runs
failed=0
for p in "${pruners[@]}"; do
  echo "== --pruner $p: $timeout s (log: runs/prune_$p.log)" >&2
  if ! python -m pipeline.tune covid --data-dir "$data" --timeout "$timeout" --pruner "$p" \
    --seed 0 --out "runs/prune_$p" --quiet "$@" >"runs/prune_$p.log" 2>&1; then
    failed=1
    echo "FAILED: --pruner $p; the end of runs/prune_$p.log:" >&2
    tail -n 5 "runs/prune_$p.log" >&2
  fi
done

python - "${pruners[@]}" <<'EOF'
import json
import sys
from pathlib import Path

print(f"{'pruner':<10} {'complete':>8} {'pruned':>7} {'failed':>7} {'per 10 min':>10}  best")
for pruner in sys.argv[1:]:
    path = Path("runs") / f"prune_{pruner}" / "tune.json"
    summary = json.loads(path.read_text()) if path.is_file() else {}
    if "counts" not in summary:  # the run stopped before its end (see its log)
        print(f"{pruner:<10} no summary in {path}")
        continue
    c, best = summary["counts"], summary["best"]
    rate = summary.get("trials_per_10_min") or 0.0
    print(
        f"{pruner:<10} {c['complete']:>8} {c['pruned']:>7} {c['fail']:>7} {rate:>10.1f}  "
        f"{summary['metric']} {best['value']:.4f} (trial {best['number']})"
    )
EOF
exit "$failed"
