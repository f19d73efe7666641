#!/usr/bin/env bash
# dev/cuda/decode_prof.sh - per-op decode time (dev/cuda/decode_prof.c) on
# random-init models: for each of SHAPES (default "130m 2.8b") and BATCHES
# (default "1 8 64"), one table. Builds the library into build-gpu first.
. dev/cuda/build-gpu.sh
nvcc -O2 -Iinclude -Isrc -x cu -c dev/cuda/decode_prof.c -o build-gpu/decode_prof.o &&
  nvcc build-gpu/decode_prof.o build-gpu/libmamba_s6.a -lcublasLt -lcublas \
    $(pkg-config --libs libcjson libpcre2-8 libutf8proc) -lpthread -o build-gpu/decode_prof || exit 1
for s in ${SHAPES:-130m 2.8b}; do
  d=$(ms6_model $s)
  for b in ${BATCHES:-1 8 64}; do
    timeout 60 build-gpu/decode_prof $d $b 16
  done
done
