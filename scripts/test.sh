#!/usr/bin/env bash
# Install the package with its test extras (CPU torch first) and run the whole test suite.
# Installs Xvfb and Mesa through apt-get when missing and permitted (root), for napari tests.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if ! command -v xvfb-run >/dev/null 2>&1 || ! ldconfig -p | grep -q libEGL.so.1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq xvfb libgl1-mesa-dri libegl1 libglx-mesa0 \
      libxkbcommon-x11-0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 \
      libxcb-render-util0 libxcb-xinerama0 libxcb-xfixes0 libxcb-shape0 libxcb-cursor0 \
      libdbus-1-3 libfontconfig1 >/dev/null
  else
    echo "note: Xvfb/Mesa missing and not root; napari tests may be skipped" >&2
  fi
fi
$PY -m pip install -q "torch==2.13.0" 2>/dev/null || $PY -m pip install -q "torch>=2.2"
$PY -m pip install -q -e ".[test]"
exec $PY -m pytest -q "$@"
