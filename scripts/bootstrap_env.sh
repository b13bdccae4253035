#!/usr/bin/env bash
# Create (or complete) the project's virtualenv with the pinned stack.
#
# Idempotent: every step is skipped when its marker says it already ran, so
# `make test` and `make demo` can call it every time. Markers live inside the
# venv, so deleting .venv starts over cleanly.
#
# Usage: scripts/bootstrap_env.sh [VENV_DIR] [--with-horovod]
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
venv="${1:-$here/.venv}"
with_horovod="${2:-}"
py="${PYTHON:-python3.11}"
cons="$here/requirements/constraints.txt"

log() { echo "[bootstrap] $*" >&2; }

command -v "$py" >/dev/null || { log "need $py on PATH (Python 3.11; see README prerequisites)"; exit 2; }
command -v java >/dev/null || { log "need Java 17 on PATH for Spark (see README prerequisites)"; exit 2; }

if [ ! -x "$venv/bin/python" ]; then
  log "creating $venv"
  "$py" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
mark="$venv/.interest-tracker"
mkdir -p "$mark"

stamp="$(cat "$cons" "$here/requirements/petastorm-deps.txt" "$here/setup.py" | sha1sum | cut -c1-12)"
if [ ! -f "$mark/base-$stamp" ]; then
  log "installing the pinned stack (torch CPU wheel, pyspark 3.5, pyarrow 14, petastorm deps)"
  "${pip[@]}" install -U "pip<25" "setuptools>=77" wheel
  # torch first, pinned: an unpinned torch would pull a multi-GB CUDA build.
  "${pip[@]}" install -c "$cons" "torch==2.13.0"
  "${pip[@]}" install -c "$cons" -r "$here/requirements/petastorm-deps.txt" \
      pyspark pyarrow numpy pandas cffi cloudpickle pyyaml pytest pytest-timeout matplotlib duckdb \
      "moto[server]"  # S3-compatible server for tests/test_s3_handoff.py
  # petastorm pins setuptools<70, which torch cannot live with: install it bare.
  "${pip[@]}" install -c "$cons" --no-deps "petastorm==0.13.1"
  "${pip[@]}" install -c "$cons" --no-deps -e "$here"
  touch "$mark/base-$stamp"
fi

if [ "$with_horovod" = "--with-horovod" ] && [ ! -f "$mark/horovod" ]; then
  "$here/scripts/build_horovod.sh" "$venv"
  touch "$mark/horovod"
fi
log "environment ready: $venv"
