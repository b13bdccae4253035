#!/usr/bin/env bash
# Submit jobs/pipeline_report.py; options as in cluster/submit.sh (--master, --run-date, --config-url, ...).
set -euo pipefail
exec "$(dirname "$0")/submit.sh" pipeline_report "$@"
