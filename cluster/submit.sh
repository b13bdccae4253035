#!/usr/bin/env bash
# Submit one job to a cluster, or print its command with --dry-run.
#
#   cluster/submit.sh JOB --master MASTER --run-date YYYY-MM-DD --config-url URL \
#       [--env-archive URL --code-zip URL --driver-python PY | --image IMG | --executor-python PY] \
#       [--deploy-mode client|cluster] [--app-root URL] [--gpu] [--conf k=v]... [--set k=v]... [--dry-run]
#
# The command comes from interest_tracker.deploy.build_submit_command, the same
# function the Airflow DAG and the executor image use. PYTHON picks the interpreter
# that builds it (default: python3 with the project on PYTHONPATH); SPARK_SUBMIT picks
# the spark-submit binary (default: spark-submit on PATH).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
py="${PYTHON:-python3}"
export PYTHONPATH="$here/lib${PYTHONPATH:+:$PYTHONPATH}"
exec "$py" -m interest_tracker.deploy "$@"
