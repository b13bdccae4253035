#!/usr/bin/env bash
# Submit jobs/prepare_events.py; options as in cluster/submit.sh (--master, --run-date, --config-url, ...).
set -euo pipefail
exec "$(dirname "$0")/submit.sh" prepare_events "$@"
