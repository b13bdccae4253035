#!/usr/bin/env bash
# Spark GPU resource discovery (spark.executor.resource.gpu.discoveryScript):
# prints the GPU indexes visible to this executor as Spark's ResourceInformation JSON.
set -euo pipefail
addrs=$(nvidia-smi --query-gpu=index --format=csv,noheader | sed -e 's/^ *//' -e 's/.*/"&"/' | paste -sd, -)
echo "{\"name\": \"gpu\", \"addresses\": [${addrs}]}"
