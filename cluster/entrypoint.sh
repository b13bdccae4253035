#!/usr/bin/env bash
# Entrypoint of the executor image (cluster/Dockerfile).
#
#   submit JOB ARGS...   build the job's spark-submit command with interest_tracker.deploy
#                        (the same builder as cluster/submit_*.sh and the DAG) and run it;
#                        add --dry-run to print it instead
#   driver | executor    Spark-on-Kubernetes pod roles: handed to Spark's own entrypoint
#   anything else        run as given (e.g. bash, python)
set -euo pipefail
# Spark's JVM logging: the project's log4j2 file (Spark at WARN; SPARK_LOG_LEVEL=INFO turns
# INFO back on). The image sets it already; a pod spec that clears the variable gets it back.
export LOG4J_CONFIGURATION_FILE="${LOG4J_CONFIGURATION_FILE:-/opt/interest-tracker/conf/log4j2.properties}"
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
