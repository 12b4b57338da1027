/**
 * Exact k-nearest-neighbour search over a dense row-major matrix of unit vectors: the
 * reference HNSW recall is measured against (tests and scripts/benchmarks/bench-index.ts).
 */

/** Row indices of the k rows with the highest dot product with `query`, best first. */
export function exactTopK(matrix: Float32Array, dim: number, query: Float32Array, k: number): number[] {
  const rows = matrix.length / dim;
  // A small sorted buffer beats sorting all rows when k << rows.
  const bestIdx: number[] = [];
  const bestDot: number[] = [];
  for (let r = 0; r < rows; r++) {
    let dot = 0;
    const base = r * dim;
    for (let i = 0; i < dim; i++) dot += matrix[base + i]! * query[i]!;
    if (bestIdx.length === k && dot <= bestDot[k - 1]!) continue;
    let pos = bestIdx.length < k ? bestIdx.length : k - 1;
    while (pos > 0 && bestDot[pos - 1]! < dot) pos--;
    bestIdx.splice(pos, 0, r);
    bestDot.splice(pos, 0, dot);
    if (bestIdx.length > k) {
      bestIdx.pop();
      bestDot.pop();
    }
  }
  return bestIdx;
}

/** recall@k: the fraction of the exact top k that the approximate top k found. */
export function recallAtK(approx: number[], exact: number[]): number {
  const truth = new Set(exact);
  return exact.length === 0 ? 1 : approx.filter((i) => truth.has(i)).length / exact.length;
}
