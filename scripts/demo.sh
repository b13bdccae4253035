#!/usr/bin/env bash
# `make demo`: two consecutive days of the pipeline in Spark local mode, on generated logs
# whose users change interests, through the same spark-submit jobs a scheduler runs.
#
#   scripts/demo.sh VENV OUT_DIR DAY2        (DAY1 is the day before DAY2)
#
# Day 1: clean -> train (horovod, 2 ranks) -> score every user.
# Day 2: clean the new day's logs -> score incrementally with day 1's model (only users with
#        new events run through the model) -> report (drift, interest timelines) -> summary.
#
# Quiet by default: Spark's JVM logs at WARN (conf/log4j2.properties), so each job prints
# its own one line per phase. SPARK_LOG_LEVEL=INFO make demo brings Spark's INFO back.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="$(cd "${1:-.venv}" && pwd)"; out="${2:-demo_output}"; day2="${3:-2026-11-28}"
py="$venv/bin/python"
day1="$("$py" -c 'import datetime, sys; print(datetime.date.fromisoformat(sys.argv[1]) - datetime.timedelta(days=1))' "$day2")"
# spark-submit runs find_spark_home with the first python3 on PATH: make it the venv's.
export PATH="$venv/bin:$PATH" PYSPARK_PYTHON="$py" PYSPARK_DRIVER_PYTHON="$py"
# Local mode: bind to loopback (and skip Spark's warning about the hostname resolving to it).
export SPARK_LOCAL_IP="${SPARK_LOCAL_IP:-127.0.0.1}"
# PYTHONWARNINGS: third-party deprecation notices (petastorm, pyarrow) are not the demo's story.
export PYTHONWARNINGS="${PYTHONWARNINGS:-ignore::DeprecationWarning,ignore::FutureWarning}"
submit=(spark-submit --master "local[2]" --driver-memory 2g
        --driver-java-options "-Dlog4j2.configurationFile=$PWD/conf/log4j2.properties"
        --conf spark.ui.enabled=false --conf spark.ui.showConsoleProgress=false
        --conf spark.sql.shuffle.partitions=4)
step=0
say() { step=$((step + 1)); printf '\n\033[1m== %d/9 %s\033[0m\n' "$step" "$*" >&2; }
start=$SECONDS

rm -rf "$out" spark-warehouse
say "generate synthetic logs ending $day2: users switch interests, with bad rows, duplicates and bots"
"${submit[@]}" jobs/generate_synthetic.py --config conf/synthetic_demo.json --run-date "$day2" \
  --out "$out/synthetic" --format jsonl
say "cut them into two daily drops ($day1, $day2), as a log shipper delivers them"
"${submit[@]}" scripts/demo_data.py "$out/synthetic" "$day2"

stage1=(--set output_root="$out/stage1")
score=(--set events_root="$out/stage1" --set artifact_root="$out/artifacts" --set warehouse_root="$out/warehouse"
       --set item_availability_path="$out/synthetic/items" --set item_categories_path="$out/synthetic/item_categories")
say "day 1 ($day1): clean and sessionize -> $out/stage1"
"${submit[@]}" jobs/prepare_events.py --config conf/prepare_demo.json --run-date "$day1" "${stage1[@]}" \
  --set input.path="$out/synthetic/landing/day=$day1"
say "day 1 ($day1): train (horovod.spark.run, 2 ranks) -> $out/artifacts"
# The dataset is day 1's stage-1 sequences, located by the hand-off layer (interest_tracker.layout).
dataset="$("$py" -c 'import datetime, sys; from interest_tracker.layout import Stage1Layout
print(Stage1Layout(sys.argv[1], datetime.date.fromisoformat(sys.argv[2])).sequences)' "$out/stage1" "$day1")"
"${submit[@]}" jobs/train_model.py --config conf/train_demo.json --run-date "$day1" \
  --set dataset="$dataset" --set artifact_root="$out/artifacts"
say "day 1 ($day1): score every user -> $out/warehouse"
"${submit[@]}" jobs/score_users.py --config conf/score_demo.json --run-date "$day1" "${score[@]}"

say "day 2 ($day2): clean the new day's logs (no retraining today)"
"${submit[@]}" jobs/prepare_events.py --config conf/prepare_demo.json --run-date "$day2" "${stage1[@]}" \
  --set input.path="$out/synthetic/landing/day=$day2" --set write_sequences=false
say "day 2 ($day2): incremental scoring with day 1's model: only users with new events are re-encoded"
"${submit[@]}" jobs/score_users.py --config conf/score_demo.json --run-date "$day2" "${score[@]}"
say "day 2 ($day2): pipeline report -> $out/report"
"${submit[@]}" jobs/pipeline_report.py --config conf/report_demo.json --run-date "$day2" \
  --set events_root="$out/stage1" --set artifact_root="$out/artifacts" --set warehouse_root="$out/warehouse" \
  --set report_dir="$out/report" --set item_categories_path="$out/synthetic/item_categories"

say "what happened"
"$py" scripts/demo_summary.py "$out" "$day1" "$day2"
printf '\ndemo finished in %d s\n' "$((SECONDS - start))" >&2
