#!/usr/bin/env bash
# Entrypoint of the executor image (cluster/Dockerfile).
#
#   submit JOB ARGS...   build the job's spark-submit command with interest_tracker.deploy
#                        (the same builder as cluster/submit_*.sh and the DAG) and run it;
#                        add --dry-run to print it instead
#   driver | executor    Spark-on-Kubernetes pod roles: handed to Spark's own entrypoint
#   anything else        run as given (e.g. bash, python)
set -euo pipefail
case "${1:-}" in
  submit)
    shift
    exec "${APP_PYTHON:-/opt/venv/bin/python}" -m interest_tracker.deploy "$@"
    ;;
  driver | executor | driver-py)
    exec "${SPARK_K8S_ENTRYPOINT:-/opt/entrypoint.sh}" "$@"
    ;;
  "")
    echo "usage: submit JOB --master ... | driver | executor | COMMAND" >&2
    exit 2
    ;;
  *)
    exec "$@"
    ;;
esac
