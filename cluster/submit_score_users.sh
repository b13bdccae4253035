#!/usr/bin/env bash
# Submit jobs/score_users.py; options as in cluster/submit.sh (--master, --run-date, --config-url, ...).
set -euo pipefail
exec "$(dirname "$0")/submit.sh" score_users "$@"
