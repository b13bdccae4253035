#!/usr/bin/env bash
# Stage 1 on real public data, through the importers and the job, as a user would run it.
#   bench/real_data_prepare.sh            (reads ../shared/data/yoochoose-100k)
# Writes under bench_output/ and prints each run report; docs/real-data.md records them.
#
# yoochoose: train_full + test are imported into one raw table; the prepare job then
# splits by session end time at the session-rec cutoffs (conf/prepare_yoochoose.json),
# so train/valid/test equal the published train_tr/train_valid/test files.
set -euo pipefail
cd "$(dirname "$0")/.."
# spark-submit runs find_spark_home with the first python3 on PATH: make it the venv's.
export PATH="$PWD/.venv/bin:$PATH" PYSPARK_PYTHON="$PWD/.venv/bin/python"
submit="spark-submit --master local[2] --driver-memory 4g"
# Print a stage-1 run report, found through the hand-off layer: show_report OUTPUT_ROOT RUN_DATE
show_report() {
  "$PWD/.venv/bin/python" -c 'import datetime, sys; from interest_tracker.layout import Stage1Layout, fs
print(fs.read_text(Stage1Layout(sys.argv[1], datetime.date.fromisoformat(sys.argv[2])).report))' "$1" "$2"
}
data="${YOOCHOOSE_DIR:-../shared/data/yoochoose-100k}"
rm -rf bench_output/yoochoose bench_output/movielens
for part in train_full test; do
  $submit jobs/import_logs.py --run-date 2014-04-08 --format session-rec \
    --input "$data/yoochoose-clicks-100k_$part.txt" --out "bench_output/yoochoose/raw/part=$part"
done
$submit jobs/prepare_events.py --config conf/prepare_yoochoose.json --run-date 2014-04-08
show_report bench_output/yoochoose/prepared 2014-04-08

# MovieLens format: no real MovieLens file is available offline, so a u.data-format
# sample is generated, then imported through the same importer a real u.data uses.
$submit jobs/import_logs.py --run-date 2026-11-28 --make-movielens-sample 20000 --out bench_output/movielens/source
$submit jobs/import_logs.py --run-date 2026-11-28 --format movielens-udata \
  --input bench_output/movielens/source/u.data --out bench_output/movielens/raw
$submit jobs/prepare_events.py --config conf/prepare_movielens_sample.json --run-date 2026-11-28
show_report bench_output/movielens/prepared 2026-11-28
