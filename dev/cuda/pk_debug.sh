. scripts/deps-env.sh
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DMS6_CUDA=ON -DMS6_CUDA_ARCHS=90 "${cmake_extra[@]}" >/dev/null && cmake --build build-gpu -j16 >/dev/null || exit 1
B=build-gpu/mamba-s6
$B init --shape 1.4b -o /tmp/m14 --dtype f16 >/dev/null
for s in 0 8 16; do echo "== slots $s"; MS6_PK_SLOTS=$s MS6_CUDA_GRAPH=0 timeout 15 $B bench generate -m /tmp/m14 --backend cuda --prompt 8 --gen 4 --reps 1 2>&1 | tail -2; echo rc=$?; done
echo "== memcheck"; MS6_CUDA_GRAPH=0 timeout 90 compute-sanitizer --tool memcheck $B bench generate -m /tmp/m14 --backend cuda --prompt 8 --gen 1 --reps 1 2>&1 | grep -v "^=========     " | head -30
$B init --shape 130m -o /tmp/m130 --dtype f16 >/dev/null
$B init --shape 2.8b -o /tmp/m28 --dtype f16 >/dev/null
for m in m130 m28; do MS6_CUDA_GRAPH=0 MS6_PK_PROFILE=1 timeout 30 $B bench generate -m /tmp/$m --backend cuda --prompt 8 --gen 130 --reps 1 2>&1 | grep "pk profile" | tail -1; done
