#!/usr/bin/env bash
# The GPU check of issue 9, in one go (< 8 minutes on one H200 machine).
#
# Two steps, because the GPU machine has torch with CUDA but no Spark, no Java, no internet
# and no ../shared/data:
#
#   1. here (the CPU machine with .venv, Spark and ../shared/data), build what travels:
#        bench/device_check.sh prepare .device_check
#      -> .device_check/test_dataset  stage-1 output of the training tests' fixture (tests/conftest.py)
#         .device_check/yoochoose     stage 1's output for yoochoose-100k, final protocol (train_full ->
#                                     test; bench/eval_yoochoose.py --stage final --prepare-only)
#         (about 4 MB; .device_check/ is git-ignored through .git/info/exclude; add a wheels/
#          folder there if the GPU machine lacks a package, see below)
#   2. on the GPU machine (the device tool: carry [".device_check"]):
#        bench/device_check.sh run .device_check
#
# `run` reuses (or creates) the venv .venv-gpu on top of the machine's python3 that already
# has torch with CUDA (--system-site-packages: torch is never reinstalled), installs only
# what is missing from DIR/wheels (pip --no-index), then:
#   a. the training and device tests with INTEREST_TRACKER_TEST_DEVICE=cuda (the tests that
#      need Spark skip themselves there; the CPU machine runs them);
#   b. trains yoochoose-100k on the GPU with conf/train_yoochoose.json (its fixed epochs, the
#      tuned config) and prints events/s and test Recall@20 / MRR@20, to compare with the CPU
#      final run of docs/benchmarks.md; then 1 epoch at batch 256 in bf16 (throughput only);
#   c. bench/bench_scoring_gpu.py: the predict function's compute against a GPU matmul bound.
# Every step has its own time limit; the whole script stops at 460 s.
set -uo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
mode="${1:-}"
dir="${2:-}"
[ -n "$mode" ] && [ -n "$dir" ] || { echo "usage: $0 prepare|run DIR" >&2; exit 2; }
log() { echo "[device_check $(date -u +%T)] $*" >&2; }

if [ "$mode" = prepare ]; then
  set -e
  py="$here/.venv/bin/python"
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  cd "$here"
  grep -qx "/$(basename "$dir")/" "$here/.git/info/exclude" 2>/dev/null || echo "/$(basename "$dir")/" >> "$here/.git/info/exclude"
  tmp="$(mktemp -d /tmp/device_check.XXXXXX)"
  log "building the training tests' fixture dataset through stage 1 (pytest, Spark local mode)"
  (cd "$here" && "$py" -m pytest tests/test_training_data.py -q -x --basetemp="$tmp/pt" \
      -k dataset_info_matches >/dev/null)
  rm -rf "$dir/test_dataset" "$dir/yoochoose"
  cp -r "$(ls -d "$tmp"/pt/training_dataset0/out/sequences/run_date=* | head -1)" "$dir/test_dataset"
  log "running stage 1 on yoochoose-100k, final protocol (bench/eval_yoochoose.py --prepare-only)"
  "$py" bench/eval_yoochoose.py --stage final --out "$tmp/yc" --prepare-only ${DATA:+--data "$DATA"} >/dev/null
  cp -r "$(ls -d "$tmp"/yc/prepared_final*/sequences/run_date=* | head -1)" "$dir/yoochoose"
  rm -rf "$tmp"
  du -sh "$dir"/*
  exit 0
fi

[ "$mode" = run ] || { echo "usage: $0 prepare|run DIR" >&2; exit 2; }
cd "$here"
start=$(date +%s)
left() { echo $(( 460 - ($(date +%s) - start) )); }

# ---- environment: reuse a torch that sees CUDA; install only what is missing
venv="${DEVICE_CHECK_VENV:-$here/.venv-gpu}"
base="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
  log "creating $venv on top of $($base -c 'import sys; print(sys.executable)') (system site packages: its torch)"
  "$base" -m venv --system-site-packages "$venv" || exit 1
fi
py="$venv/bin/python"
"$py" -c "import torch, sys; assert torch.cuda.is_available(), 'torch sees no GPU'; \
print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0), 'python', sys.version.split()[0])" \
  || { log "no torch with CUDA in $base: set PYTHON= to a python that has one"; exit 1; }
missing=$("$py" - <<'EOF'
import importlib.util
need = ["numpy", "pandas", "pyarrow", "pytest", "matplotlib"]
print(" ".join(n for n in need if importlib.util.find_spec(n) is None))
EOF
)
if [ -n "$missing" ]; then
  if [ -d "$dir/wheels" ]; then
    log "installing from $dir/wheels: $missing"
    "$py" -m pip install -q --no-index --find-links "$dir/wheels" $missing || exit 1
  else
    log "missing: $missing; put their wheels (for this python) in $dir/wheels"; exit 1
  fi
fi
export PYTHONPATH="$here/lib${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true

# ---- a. tests on the GPU
log "a. training + device tests with INTEREST_TRACKER_TEST_DEVICE=cuda"
INTEREST_TRACKER_TEST_DEVICE=cuda INTEREST_TRACKER_TEST_DATASET="$(cd "$dir/test_dataset" && pwd)" \
  timeout 200 "$py" -m pytest -q -p no:cacheprovider -rs tests/test_device.py tests/test_model.py \
  tests/test_training_data.py tests/test_training_local.py tests/test_training_distributed.py
tests_rc=$?
log "tests exit code $tests_rc ($(left) s left)"

# ---- b. yoochoose-100k on the GPU: fixed epochs, tuned config (docs/benchmarks.md, Stage 2)
log "b. yoochoose-100k train_full -> test on the GPU (conf/train_yoochoose.json)"
timeout $(( $(left) - 70 )) "$py" - "$(cd "$dir/yoochoose" && pwd)" <<'EOF'
import json, statistics, sys, tempfile, time
from interest_tracker.config import load, to_dict
from interest_tracker.logs import setup_logging
from interest_tracker.training.config import TrainConfig
from interest_tracker.training.loop import train
setup_logging("WARNING")
runs = [("conf/train_yoochoose.json, fp32", []),
        ("batch 256, bf16, 1 epoch (throughput only)", ["batch_size=256", "precision=bf16", "epochs=1",
                                                        "evaluate_test=false"])]
for label, extra in runs:
    cfg = load(TrainConfig, "conf/train_yoochoose.json",
               [f"dataset={sys.argv[1]}", f"artifact_root={tempfile.mkdtemp()}", "device=cuda", "loader=pyarrow",
                "resume=false", "log_every_steps=1000000", *extra])
    t = time.perf_counter()
    out = train(to_dict(cfg))
    m = out["metrics"]
    eps = [h["events_per_s"] for h in m["history"]]
    print(f"GPU {label}: device {m['device']}, {len(eps)} epochs, median {statistics.median(eps):,.0f} events/s "
          f"(first epoch {eps[0]:,.0f}), wall {time.perf_counter() - t:.0f} s, "
          f"time split epoch 1 {json.dumps({k: round(v, 2) for k, v in m['history'][-1]['time_split_s'].items()})}")
    if "test" in m:
        print(f"GPU {label}: test Recall@20 {m['test']['recall@20']:.4f}  MRR@20 {m['test']['mrr@20']:.4f}  "
              "(compare: the CPU final run in docs/benchmarks.md, same config)")
EOF
log "training exit code $? ($(left) s left)"

# ---- c. scoring on the GPU against a matmul bound
log "c. scoring: predict compute vs GPU matmul bound"
timeout $(( $(left) > 20 ? $(left) - 5 : 15 )) "$py" bench/bench_scoring_gpu.py --users 200000 --items 100000
log "scoring exit code $? ($(left) s left); total $(( $(date +%s) - start )) s"
exit $tests_rc
