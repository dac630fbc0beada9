#!/usr/bin/env bash
# Every GPU check of this project in one script, for the lent H100/H200 (see the device tool's README).
#
# On this machine first:   bash ../shared/gpu/prepare-carry.sh     (lays out .gpu/: packages and data)
# Then on the device:      run(command="bash benchmarks/gpu_checks.sh", carry=[".gpu"], timeout_s=590)
#
# Each step has its own time limit and writes its log to $OUT (or ./gpu-logs when $OUT is unset);
# the last lines printed are a summary with each benchmark's last line, the card and torch version.
# AdrenalMNIST3D 28³ ships inside the package, so no data root is needed.
# STEPS="gpu_tests throughput parallel amp speed" selects steps (all by default, in this order).
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-logs}
mkdir -p "$OUT"
[ -f .gpu/env.sh ] && source .gpu/env.sh
STEPS=${STEPS:-"gpu_tests throughput parallel amp speed"}
summary="$OUT/summary.txt"
: > "$summary"

note() { echo "$*" | tee -a "$summary"; }
step() {  # step NAME SECONDS COMMAND...
  local name=$1 limit=$2; shift 2
  case " $STEPS " in *" $name "*) ;; *) return ;; esac
  local t0=$SECONDS
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  note "== $name (rc $rc, $((SECONDS - t0)) s): $(tail -n 1 "$OUT/$name.log")"
}

python3 -c "import torch; print('torch', torch.__version__, '| cuda', torch.version.cuda, '|', torch.cuda.get_device_name(0))" 2>&1 | tee -a "$summary"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | tee -a "$summary"

step gpu_tests 240 python3 -m pytest -q -p no:cacheprovider -m gpu tests
step throughput 120 python3 benchmarks/train_throughput.py --device cuda --batches 20 --repeats 3
step parallel 180 python3 benchmarks/parallel_eval.py --device cuda --workers 1 --per-gpu 4 --population 8 \
  --epochs 3 --batches 0 --backends sequential,threads,processes
step amp 240 python3 benchmarks/amp_ranking.py --device cuda --candidates 20 --epochs 10
step speed 300 python3 benchmarks/search_speed.py --device cuda --candidates 40 --per-gpu 4

echo "---- summary ----"
cat "$summary"
