#!/usr/bin/env bash
# Build horovod 0.28.1 (PyTorch + Gloo, no MPI/TF/MXNet) from its sdist and install it.
#
# There is no horovod wheel on PyPI, and the 0.28.1 sdist does not compile against
# torch >= 2.1 (which needs C++17) until both CMakeLists set CMAKE_CXX_STANDARD 17.
# The built wheel is cached OUTSIDE the repo ($HOROVOD_WHEEL_CACHE, default
# ~/.cache/interest-tracker/wheels), so a second run skips the ~4 minute build.
#
# We never use the `horovod[spark]` extra: it pins pyarrow<11. horovod.spark.run only
# needs pyspark plus cffi, cloudpickle, psutil, pyyaml and packaging (all pinned in
# requirements/constraints.txt).
#
# Usage: scripts/build_horovod.sh VENV_DIR
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
venv="$(cd "${1:?usage: build_horovod.sh VENV_DIR}" && pwd)"
cache="${HOROVOD_WHEEL_CACHE:-$HOME/.cache/interest-tracker/wheels}"
py="$venv/bin/python"
pip=("$py" -m pip --disable-pip-version-check -q)
log() { echo "[horovod] $*" >&2; }

mkdir -p "$cache"
torch_v="$("$py" -c 'import torch; print(torch.__version__.split("+")[0])')"
wheel_glob="$cache/torch-$torch_v/horovod-0.28.1-*.whl"
if ! ls $wheel_glob >/dev/null 2>&1; then
  command -v cmake >/dev/null || "${pip[@]}" install "cmake<4"
  work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
  log "downloading the horovod 0.28.1 sdist"
  "${pip[@]}" download --no-deps --no-binary :all: -d "$work" horovod==0.28.1
  tar -xzf "$work"/horovod-0.28.1.tar.gz -C "$work"
  src="$work/horovod-0.28.1"
  # The C++17 fix: torch >= 2.1 headers need C++17; horovod 0.28.1 asks for C++14.
  sed -i 's/CMAKE_CXX_STANDARD 14/CMAKE_CXX_STANDARD 17/' "$src/CMakeLists.txt" "$src/horovod/torch/CMakeLists.txt"
  grep -q 'CMAKE_CXX_STANDARD 17' "$src/CMakeLists.txt" "$src/horovod/torch/CMakeLists.txt" \
    || { log "C++17 patch did not apply; check the sdist's CMakeLists"; exit 1; }
  log "building (about 4 minutes on 2 cores); wheel cache: $cache/torch-$torch_v"
  mkdir -p "$cache/torch-$torch_v"
  (cd "$src" && HOROVOD_WITH_PYTORCH=1 HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_MPI=1 \
      HOROVOD_WITHOUT_TENSORFLOW=1 HOROVOD_WITHOUT_MXNET=1 CMAKE_POLICY_VERSION_MINIMUM=3.5 \
      MAKEFLAGS="-j$(nproc)" \
      "${pip[@]}" wheel --no-build-isolation --no-deps -w "$cache/torch-$torch_v" .)
fi
"${pip[@]}" install -c "$here/requirements/constraints.txt" --no-deps $wheel_glob
"$py" -c 'import horovod.torch as hvd; assert hvd.gloo_built(), "horovod built without Gloo"; print("horovod", __import__("horovod").__version__, "gloo ok")'
