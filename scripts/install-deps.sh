#!/usr/bin/env bash
# Installs what mamba-s6 needs to build, through apt-get, when missing.
# Idempotent: does nothing when everything is present. When not root, prints
# the command to run instead.
set -euo pipefail

need=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
for p in build-essential cmake pkg-config libcjson-dev libpcre2-dev libutf8proc-dev; do
  have_pkg "$p" || need+=("$p")
done
if [ "${MS6_DEV_DEPS:-0}" = 1 ]; then
  for p in valgrind clang; do have_pkg "$p" || need+=("$p"); done
fi
[ ${#need[@]} -eq 0 ] && exit 0

cmd="apt-get install -y --no-install-recommends ${need[*]}"
if [ "$(id -u)" != 0 ]; then
  echo "mamba-s6 needs: ${need[*]}" >&2
  echo "run: sudo apt-get update && sudo $cmd" >&2
  exit 1
fi
echo "installing: ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
$cmd
