#!/usr/bin/env bash
# Pack what executors need on YARN / standalone clusters without the executor image:
#   dist/interest-tracker-env.tar.gz   a relocatable venv (venv-pack) with the pinned stack
#                                      and horovod; shipped with --archives URL#environment
#   dist/interest-tracker-code.zip     the interest_tracker package; shipped with --py-files
#
# The development venv cannot be packed as is: the project is installed there in
# editable mode, which venv-pack refuses (the code would point at this checkout).
# So this builds a separate venv, non-editable, from the same pins.
#
# Usage: cluster/pack_env.sh [OUT_DIR]    (then upload both files, e.g. hdfs dfs -put)
# Needs: python3.11, and venv-pack (scripts/install_test_tools.sh puts it in
# .venv/.interest-tracker/tools). The horovod wheel comes from scripts/build_horovod.sh's cache.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$here/dist}"
py="${PYTHON:-python3.11}"
cons="$here/requirements/constraints.txt"
tools="${TOOLS_DIR:-$here/.venv/.interest-tracker/tools}"
cache="${HOROVOD_WHEEL_CACHE:-$HOME/.cache/interest-tracker/wheels}"
log() { echo "[pack_env] $*" >&2; }

mkdir -p "$out"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
env_dir="$work/env"
log "building a non-editable venv in $env_dir"
"$py" -m venv "$env_dir"
pip=("$env_dir/bin/python" -m pip --disable-pip-version-check -q)
"${pip[@]}" install -c "$cons" "torch==2.13.0"
# matplotlib: training rank 0 draws the learning curves into the artifact (found by the
# standalone-cluster test, whose ranks run from this archive).
"${pip[@]}" install -c "$cons" -r "$here/requirements/petastorm-deps.txt" pyarrow numpy pandas cffi cloudpickle pyyaml \
  matplotlib
"${pip[@]}" install -c "$cons" --no-deps "petastorm==0.13.1"
# The project itself, NOT editable: Horovod ranks are processes started by a Spark task
# with the driver's environment, so they import the code from the venv, not --py-files.
"${pip[@]}" install --no-deps "$here"
# The table contracts: interest_tracker.contracts looks for schemas/ inside the package.
site="$("$env_dir/bin/python" -c 'import interest_tracker, os; print(os.path.dirname(interest_tracker.__file__))')"
mkdir -p "$site/schemas" && cp "$here"/schemas/*.json "$site/schemas/"
wheel="$(ls "$cache"/torch-*/horovod-0.28.1-*.whl 2>/dev/null | head -1 || true)"
if [ -n "$wheel" ]; then
  "${pip[@]}" install --no-deps "$wheel"
else
  log "no horovod wheel in $cache: run scripts/build_horovod.sh first if you train on this cluster"
fi
# Every executor unpacks the archive before its first task, and in client mode the driver
# unpacks it too, once per application: test binaries and C++ headers (torch's and pandas'
# test suites, torch's headers for building extensions, torch's C++ test programs; about a
# fifth of the venv) are never imported at run time, so they are left out.
# torch_shm_manager stays: torch's multiprocessing uses it for shared memory.
find "$env_dir"/lib/python3.*/site-packages/torch/bin -mindepth 1 ! -name torch_shm_manager -delete
rm -rf "$env_dir"/lib/python3.*/site-packages/torch/test "$env_dir"/lib/python3.*/site-packages/torch/include \
       "$env_dir"/lib/python3.*/site-packages/pandas/tests
log "packing the venv (venv-pack)"
PYTHONPATH="$tools" "$env_dir/bin/python" -m venv_pack -p "$env_dir" -o "$out/interest-tracker-env.tar.gz" --force
log "zipping the interest_tracker package (with schemas/ inside it, as the wheel lays them out)"
"$py" - "$here" "$out/interest-tracker-code.zip" <<'PY'
import sys, zipfile
from pathlib import Path
here, target = Path(sys.argv[1]), sys.argv[2]
with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as z:
    for f in sorted((here / "lib").glob("interest_tracker/**/*.py")):
        z.write(f, f.relative_to(here / "lib"))
    for f in sorted((here / "schemas").glob("*.json")):
        z.write(f, f"interest_tracker/schemas/{f.name}")
PY
log "wrote $out/interest-tracker-env.tar.gz and $out/interest-tracker-code.zip"
