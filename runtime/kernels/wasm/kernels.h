// Shared declarations of the WebAssembly SIMD kernels (C99, freestanding: no libc).
// Every pointer is a byte offset into the one linear memory that runtime/kernels/wasm.ts manages.
#ifndef FACTORLITE_KERNELS_H
#define FACTORLITE_KERNELS_H

#include <wasm_simd128.h>

#define EXPORT(name) __attribute__((export_name(#name), visibility("default")))

/*
 * Mutable file-scope buffers (packing panels, offsets) are declared SCRATCH. In the threaded build
 * (kernels-mt.wasm, -DFACTORLITE_THREADS) every instance shares one memory, so each thread needs
 * its own copy: thread-local storage, set up per instance by runtime/kernels/threads.ts.
 */
#ifdef FACTORLITE_THREADS
#define SCRATCH _Thread_local
#else
#define SCRATCH
/*
 * Winograd F(2,3) (winograd.c): whether a 3x3 convolution of these shapes takes it, and the kernel
 * (x [N, C, H, W], w [O, C, 3, 3]; cols: colsFloats of scratch). Returns 0, computing nothing, when
 * the scratch is too small for it.
 */
int winograd_shape(int C, int O, int KH, int KW, int G, int sh, int sw, int dh, int dw, int OH, int OW);
int winograd_conv(const float *x, const float *w, const float *bias, float *out, float *cols, long long colsFloats,
                  int N, int C, int H, int W, int O, int pt, int pl, int OH, int OW);

#endif

/*
 * acc + a * b on f32x4. The relaxed build (FL_RELAXED, -mrelaxed-simd: kernels-relaxed.wasm) uses
 * f32x4.relaxed_madd, a fused multiply-add where the CPU has one (one rounding, or two: the
 * proposal lets the engine choose); the plain build multiplies and adds, as wasm SIMD128 has no FMA.
 */
#ifdef FL_RELAXED
#define MADD(acc, a, b) __builtin_wasm_relaxed_madd_f32x4((a), (b), (acc))
#else
#define MADD(acc, a, b) wasm_f32x4_add((acc), wasm_f32x4_mul((a), (b)))
/*
 * Winograd F(2,3) (winograd.c): whether a 3x3 convolution of these shapes takes it, and the kernel
 * (x [N, C, H, W], w [O, C, 3, 3]; cols: colsFloats of scratch). Returns 0, computing nothing, when
 * the scratch is too small for it.
 */
int winograd_shape(int C, int O, int KH, int KW, int G, int sh, int sw, int dh, int dw, int OH, int OW);
int winograd_conv(const float *x, const float *w, const float *bias, float *out, float *cols, long long colsFloats,
                  int N, int C, int H, int W, int O, int pt, int pl, int OH, int OW);

#endif

static inline int imin(int a, int b) { return a < b ? a : b; }
static inline int imax(int a, int b) { return a > b ? a : b; }

/*
 * C[i, j] += sum_p a(i, p) * b(p, j) for i < M, j < N, p < K, with
 *   a(i, p) = A[i * rsa + p * csa],  b(p, j) = B[p * rsb + j * csb],  C row stride ldc.
 * One driver serves the NT, NN and TN layouts (and conv) through the strides.
 */
void gemm_acc(int M, int N, int K, const float *A, int rsa, int csa,
              const float *B, int rsb, int csb, float *C, int ldc);

/* C[i, j] = rowBias[i] + colBias[j] (either may be 0) for the M x N block at C (row stride ldc). */
void fill_bias(int M, int N, float *C, int ldc, const float *rowBias, const float *colBias);

/*
 * One image group [Cg, H, W] as the im2col matrix cols [Cg*KH*KW, OH*OW] (zeros where a tap falls
 * in the padding). conv.c defines it; the training gradients of convgrad.c reuse it.
 */
void im2col(const float *x, int H, int W, int Cg, int KH, int KW, int sh, int sw,
            int pt, int pl, int dh, int dw, int OH, int OW, float *cols);

/*
 * Winograd F(2,3) (winograd.c): whether a 3x3 convolution of these shapes takes it, and the kernel
 * (x [N, C, H, W], w [O, C, 3, 3]; cols: colsFloats of scratch). Returns 0, computing nothing, when
 * the scratch is too small for it.
 */
int winograd_shape(int C, int O, int KH, int KW, int G, int sh, int sw, int dh, int dw, int OH, int OW);
int winograd_conv(const float *x, const float *w, const float *bias, float *out, float *cols, long long colsFloats,
                  int N, int C, int H, int W, int O, int pt, int pl, int OH, int OW);

/*
 * Depthwise convolution with the channels in the vector lanes (depthwise.c), for small maps:
 * whether these shapes take it, and the kernel (x [N, C, H, W], w [O, 1, KH, KW], group C).
 */
int depthwise_packed_shape(int C, int H, int W, int O, int KH, int KW, int G, int sh, int sw, int dh, int dw,
                           int OH, int OW);
void depthwise_packed(const float *x, const float *w, const float *bias, float *out,
                      int N, int C, int H, int W, int O, int KH, int KW, int sh, int sw,
                      int pt, int pl, int dh, int dw, int OH, int OW);

/*
 * Depthwise convolution without padding at stride 1, rows of 4 or more outputs, straight from the
 * input plane (depthwise.c): whether these shapes take it, and the kernel.
 */
int depthwise_valid_shape(int C, int H, int W, int O, int KH, int KW, int G, int sh, int sw, int pt, int pl,
                          int dh, int dw, int OH, int OW);
void depthwise_valid(const float *x, const float *w, const float *bias, float *out,
                     int N, int C, int H, int W, int O, int KH, int KW, int dh, int dw, int OH, int OW);

/*
 * Depthwise k x 1 at a vertical stride of 2 or more, no horizontal padding, whole output rows at a
 * time (dwrows.c): whether these shapes take it, and the kernel (x [N, C, H, W], w [O, 1, KH, 1]).
 */
int depthwise_rows_shape(int C, int W, int O, int KH, int KW, int G, int sh, int sw, int pl, int OW);
void depthwise_rows(const float *x, const float *w, const float *bias, float *out,
                    int N, int C, int H, int W, int O, int KH, int sh, int pt, int dh, int OH);
/* Depthwise 1 x k at stride 1 on rows of 32 or more, one row at a time from a zero-padded copy (dwrows.c). */
int depthwise_hrows_shape(int C, int H, int W, int O, int KH, int KW, int G, int sh, int sw, int pt, int pl, int dw,
                          int OH, int OW);
void depthwise_hrows(const float *x, const float *w, const float *bias, float *out,
                     int N, int C, int H, int W, int O, int KW, int pl, int dw, int OW);

/* Depthwise 1 x 3 at horizontal stride 2, left padding 1, from shuffled pairs of loads (dwrows.c). */
int depthwise_s2k3_shape(int C, int H, int W, int O, int KH, int KW, int G, int sh, int sw, int pt, int pl, int dw,
                         int OH, int OW);
void depthwise_s2k3(const float *x, const float *w, const float *bias, float *out, int N, int C, int H, int W, int O, int OW);

/*
 * 1x1 convolution of a batch as one GEMM over its N*HW columns (conv1x1.c): x [N, C, HW] times
 * w [O, C] (+ bias, which may be 0) into out [N, O, HW]; HW a multiple of 8. conv1x1 takes it where
 * pointwise_batch_pays(C, HW, O).
 */
int pointwise_batch_pays(int C, int HW, int O);
void pointwise_batch(const float *x, const float *w, const float *bias, float *out, int N, int C, int HW, int O);

/*
 * The packed 1x1 kernel (conv1x1.c): x [N, C, HW] in strips of 8-pixel tiles copied contiguous,
 * then 4 x 8 register tiles over every block of 4 output channels; HW >= 8 and C within its strip
 * buffer (pointwise_packed_fits).
 */
int pointwise_packed_fits(int C, int HW);
int pointwise_packed_pays(int C, int HW, int O);
/* The packed kernel or the batch GEMM where one pays (returns 1), else 0 and nothing computed. */
int pointwise_fast(const float *x, const float *w, const float *bias, float *out, int N, int C, int HW, int O);
void pointwise_packed(const float *x, const float *w, const float *bias, float *out, int N, int C, int HW, int O);

#endif
