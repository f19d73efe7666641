/*
 * fast_isa_scalar.c - the kernels of fast_kern.h in portable C (8-element
 * arrays; the compiler vectorizes what it can for the baseline ISA). Used
 * when the CPU has neither AVX2+FMA+F16C nor NEON, and as a cross-check.
 */
#define FAST_ISA_SCALAR 1
#define FAST_TABLE ms6_fast_kernels_scalar
#define FAST_NAME "scalar"
#include "backend/cpu/fast_kern.h"
