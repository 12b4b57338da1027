/** Shared pieces of the benchmark scripts: percentiles, synthetic indexes, argument parsing. */
import { IndexStore } from "../../index/embedded/persist.ts";
import { clusteredUnit, randomUnit } from "../../index/shared/synthetic.ts";
import type { IndexParams } from "../../index/backend.ts";
import { VectorIndex } from "../../index/embedded/vector-index.ts";

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export type Distribution = "clustered" | "uniform";

export interface SyntheticSpec {
  n: number;
  dim: number;
  params: IndexParams;
  distribution: Distribution;
  /** Concepts for the clustered distribution (n / clusters images per concept). */
  clusters: number;
}

export function syntheticVector(spec: Pick<SyntheticSpec, "dim" | "distribution" | "clusters">, seed: number): Float32Array {
  return spec.distribution === "uniform" ? randomUnit(spec.dim, seed) : clusteredUnit(spec.dim, seed, spec.clusters);
}

/** Queries are drawn from the same distribution, with seeds disjoint from the items'. */
export const QUERY_SEED = 2_000_000_000;

/**
 * An index of n synthetic vectors; also returns the dense matrix (for exact search) when
 * `keepMatrix`. Logs progress every 10% so long builds show they are alive.
 */
export function buildSynthetic(spec: SyntheticSpec, keepMatrix: boolean): { index: VectorIndex; matrix?: Float32Array; seconds: number } {
  const index = new VectorIndex(spec.dim, spec.params, spec.n);
  const matrix = keepMatrix ? new Float32Array(spec.n * spec.dim) : undefined;
  const sha256 = "0".repeat(64);
  const addedAt = new Date().toISOString();
  const start = performance.now();
  const step = Math.max(1, Math.floor(spec.n / 10));
  for (let i = 0; i < spec.n; i++) {
    const v = syntheticVector(spec, i);
    matrix?.set(v, i * spec.dim);
    index.add({ id: String(i), source: "synthetic", sha256, addedAt }, v);
    if ((i + 1) % step === 0) console.error(`  built ${i + 1}/${spec.n} (${((performance.now() - start) / 1000).toFixed(0)} s)`);
  }
  return { index, matrix, seconds: (performance.now() - start) / 1000 };
}

/** Persist a synthetic index so the service loads it as if its model had built it. */
export async function saveAsModelIndex(index: VectorIndex, dataDir: string, modelId: string, modelDir: string): Promise<number> {
  const store = new IndexStore(dataDir);
  await store.open();
  return store.save(index, { modelId, modelDir, startModelDir: modelDir, build: 1 });
}

export function fmt(ms: number): string {
  return ms < 10 ? ms.toFixed(2) : ms.toFixed(1);
}
