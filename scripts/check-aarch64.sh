#!/usr/bin/env bash
# Cross-compiles the CPU backend for aarch64 (NEON kernels) and, when
# qemu-aarch64 is installed, runs its tests under user-mode emulation:
#   test_cpu_fast     gemm vs float64, fast ops vs reference ops, thread
#                     counts, exp accuracy (NEON and portable kernels)
#   test_ref_kernels  the float64-oracle sweep of scan / state update /
#                     conv / RMSNorm on the cpu-ref and cpu backends
# Only the backend sources are compiled (they need no cJSON / PCRE2 /
# utf8proc), so no arm64 -dev packages are needed. For a full cross build
# see cmake/aarch64-linux-gnu.cmake.
#
# usage: scripts/check-aarch64.sh [BUILD_DIR]    (default build-aarch64)
# needs: apt-get install -y gcc-aarch64-linux-gnu qemu-user
# exit: 0 ok, 1 failure, 77 when the cross compiler is missing.
set -euo pipefail

src="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$src/build-aarch64}"
cc="${CC_AARCH64:-aarch64-linux-gnu-gcc}"

if ! command -v "$cc" > /dev/null; then
  echo "check-aarch64: $cc not found (apt-get install -y gcc-aarch64-linux-gnu); skipped" >&2
  exit 77
fi
mkdir -p "$out"

lib_srcs=("$src"/src/core/*.c "$src"/src/backend/*.c "$src"/src/backend/cpu/*.c)
cflags=(-std=c11 -O2 -Wall -Wextra -Wno-unused-parameter -Werror -D_GNU_SOURCE
        -I"$src/include" -I"$src/src" -I"$src/tests"
        -DMS6_SOURCE_DIR="\"$src\"" -DMS6_BINARY_DIR="\"$out\"")

echo "check-aarch64: compiling the backend with $cc ($("$cc" -dumpversion))"
objs=()
for f in "${lib_srcs[@]}"; do
  o="$out/$(basename "${f%.c}").o"
  "$cc" "${cflags[@]}" -c "$f" -o "$o"
  objs+=("$o")
done
# the NEON kernel table must be there (not an empty translation unit)
if ! "${cc/gcc/nm}" "$out/fast_isa_neon.o" 2> /dev/null | grep -q ms6_fast_kernels_neon; then
  echo "check-aarch64: fast_isa_neon.o has no NEON kernel table" >&2
  exit 1
fi
for t in test_cpu_fast test_ref_kernels; do
  "$cc" "${cflags[@]}" "$src/tests/$t.c" "$src/tests/testutil.c" "$src/tests/kernel_harness.c" "${objs[@]}" \
    -o "$out/$t" -lm -lpthread
done
echo "check-aarch64: built $out/test_cpu_fast and $out/test_ref_kernels"

qemu="${QEMU_AARCH64:-qemu-aarch64}"
if ! command -v "$qemu" > /dev/null; then
  echo "check-aarch64: $qemu not found (apt-get install -y qemu-user); compiled only" >&2
  exit 0
fi
sysroot="${AARCH64_SYSROOT:-/usr/aarch64-linux-gnu}"
for t in test_cpu_fast test_ref_kernels; do
  echo "check-aarch64: running $t under $qemu"
  "$qemu" -L "$sysroot" "$out/$t" > "$out/$t.log" 2>&1 || { tail -40 "$out/$t.log"; echo "check-aarch64: $t FAILED" >&2; exit 1; }
  grep -E "kernels selected|exp \[|all checks passed|cases" "$out/$t.log" || true
done
echo "check-aarch64: ok"
