#!/usr/bin/env bash
# make demo: the main job of this build, end to end on this machine.
set -euo pipefail
BUILD=${1:-build}
BIN="$BUILD/mamba-s6"
cd "$(dirname "$0")/.."

echo "== mamba-s6 $("$BIN" --version)"
echo
echo "== kernel self-check: every backend against the reference"
"$BIN" selftest
