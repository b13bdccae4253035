#!/usr/bin/env bash
# `make demo`: the whole pipeline in Spark local mode on generated data, through the same
# spark-submit jobs a scheduler runs.  Usage: scripts/demo.sh VENV OUT_DIR RUN_DATE
set -euo pipefail
cd "$(dirname "$0")/.."
venv="$(cd "${1:-.venv}" && pwd)"; out="${2:-demo_output}"; day="${3:-2026-11-28}"
# spark-submit runs find_spark_home with the first python3 on PATH: make it the venv's.
export PATH="$venv/bin:$PATH" PYSPARK_PYTHON="$venv/bin/python" PYSPARK_DRIVER_PYTHON="$venv/bin/python"
submit=(spark-submit --master "local[2]" --driver-memory 4g --conf spark.ui.enabled=false)
say() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }

rm -rf "$out"
say "0/4 generate synthetic behaviour logs (with injected faults and bots) -> $out/synthetic"
"${submit[@]}" jobs/generate_synthetic.py --config conf/synthetic_demo.json --run-date "$day" \
  --out "$out/synthetic" --format jsonl
say "1/4 clean and sessionize -> $out/stage1"
"${submit[@]}" jobs/prepare_events.py --config conf/prepare_demo.json --run-date "$day" \
  --set input.path="$out/synthetic/raw" --set output_root="$out/stage1"
say "2/4 train (horovod.spark.run, 2 workers) -> $out/artifacts"
"${submit[@]}" jobs/train_model.py --config conf/train_demo.json --run-date "$day" \
  --set dataset="$out/stage1/sequences/run_date={run_date}" --set artifact_root="$out/artifacts"
say "3/4 score every user -> $out/warehouse"
"${submit[@]}" jobs/score_users.py --config conf/score_demo.json --run-date "$day" \
  --set events_root="$out/stage1" --set artifact_root="$out/artifacts" --set warehouse_root="$out/warehouse"
say "4/4 pipeline report -> $out/report"
"${submit[@]}" jobs/pipeline_report.py --config conf/report_demo.json --run-date "$day" \
  --set events_root="$out/stage1" --set artifact_root="$out/artifacts" \
  --set warehouse_root="$out/warehouse" --set report_dir="$out/report"

"$venv/bin/python" scripts/demo_summary.py "$out" "$day"
