#!/usr/bin/env bash
# Submit jobs/train_model.py; options as in cluster/submit.sh (--master, --run-date, --config-url, ...).
set -euo pipefail
exec "$(dirname "$0")/submit.sh" train_model "$@"
