/*
 * fast_isa_neon.c - the kernels of fast_kern.h for aarch64 (NEON is part
 * of the base ISA there, including fp16 <-> fp32 conversion).
 */
#if defined(__aarch64__)

#include "backend/cpu/fast.h"

#include <arm_neon.h>

#define FAST_ISA_NEON 1
#define FAST_TABLE ms6_fast_kernels_neon
#define FAST_NAME "neon"
#include "backend/cpu/fast_kern.h"

#else
typedef int ms6_fast_isa_neon_unused; /* ISO C forbids an empty translation unit */
#endif
