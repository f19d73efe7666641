# dev/cuda/build-gpu.sh - sourced by the dev/cuda scripts: the build
# dependencies (scripts/deps-env.sh), then the library and tools built into
# build-gpu (Release, sm_90) unless NOBUILD=1; exits on a failed build.
. scripts/deps-env.sh
if [ "${NOBUILD:-0}" != 1 ]; then
  cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DMS6_CUDA=ON -DMS6_CUDA_ARCHS=90 "${cmake_extra[@]}" >/dev/null &&
    cmake --build build-gpu -j16 >/dev/null || exit 1
fi
# ms6_model SHAPE: the random-init f16 model of that shape under /tmp/ms6-e2e
# (written on first use); prints its directory
ms6_model() {
  local d=/tmp/ms6-e2e/$1
  mkdir -p /tmp/ms6-e2e
  [ -f "$d/model.safetensors" ] || build-gpu/mamba-s6 init --shape "$1" -o "$d" --dtype f16 > /dev/null
  echo "$d"
}
