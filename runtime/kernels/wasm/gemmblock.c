// One block of a GEMM for the thread pool (runtime/kernels/threads.ts): each thread computes a
// slice of the rows or columns of an output through the same driver as gemm_nt / gemm_nn /
// gemm_tn, with the caller's strides, so a slice reads its operands and writes its part in place.
#include "kernels.h"

/* out[i, j] = bias[j] + sum_p a(i, p) b(p, j) for i < M, j < N (strides as for gemm_acc; bias may be 0). */
EXPORT(gemm_block) void gemm_block(const float *a, int rsa, int csa, const float *b, int rsb, int csb,
                                   int M, int N, int K, const float *bias, float *out, int ldc) {
  fill_bias(M, N, out, ldc, 0, bias);
  gemm_acc(M, N, K, a, rsa, csa, b, rsb, csb, out, ldc);
}
