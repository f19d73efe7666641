/*
 * fast_isa_avx2.c - the kernels of fast_kern.h for x86-64 with AVX2, FMA
 * and F16C. The target pragma compiles just this file's functions for that
 * ISA (no -mavx2 in the build); ms6_fast_kernels_select uses them only when
 * __builtin_cpu_supports reports all three.
 */
#if defined(__x86_64__)

#include "backend/cpu/fast.h"

#include <math.h>
#include <string.h>

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#endif

#include <immintrin.h>

#define FAST_ISA_AVX2 1
#define FAST_TABLE ms6_fast_kernels_avx2
#define FAST_NAME "avx2"
#include "backend/cpu/fast_kern.h"

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#else
typedef int ms6_fast_isa_avx2_unused; /* ISO C forbids an empty translation unit */
#endif
