#!/usr/bin/env bash
# Submit jobs/generate_synthetic.py; options as in cluster/submit.sh (--master, --run-date, --config-url, ...).
set -euo pipefail
exec "$(dirname "$0")/submit.sh" generate_synthetic "$@"
