# dev/cuda/build-gpu.sh - sourced by the dev/cuda scripts: the build
# dependencies (scripts/deps-env.sh), then the library and tools built into
# build-gpu (Release, sm_90) unless NOBUILD=1; exits on a failed build.
. scripts/deps-env.sh
if [ "${NOBUILD:-0}" != 1 ]; then
  cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DMS6_CUDA=ON -DMS6_CUDA_ARCHS=90 "${cmake_extra[@]}" >/dev/null &&
    cmake --build build-gpu -j16 >/dev/null || exit 1
fi
