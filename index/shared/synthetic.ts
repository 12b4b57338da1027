/** Deterministic synthetic unit vectors for index tests and benchmarks (no model needed). */

/** mulberry32: a tiny seeded PRNG, so item i always has the same vector. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A unit vector with Gaussian coordinates (uniform direction), seeded. */
export function randomUnit(dim: number, seed: number): Float32Array {
  const next = rng(seed);
  const v = new Float32Array(dim);
  let norm = 0;
  for (let i = 0; i < dim; i += 2) {
    // Box-Muller: two normals per pair of uniforms.
    const r = Math.sqrt(-2 * Math.log(next() || 1e-12));
    const theta = 2 * Math.PI * next();
    v[i] = r * Math.cos(theta);
    if (i + 1 < dim) v[i + 1] = r * Math.sin(theta);
  }
  for (const x of v) norm += x * x;
  norm = Math.sqrt(norm);
  return v.map((x) => x / norm);
}

/**
 * Clustered unit vectors: embeddings of real images concentrate around concepts, unlike
 * uniform random directions (the worst case for any ANN index). Item i lies near centre
 * i % clusters with angular noise `spread`.
 */
export function clusteredUnit(dim: number, seed: number, clusters: number, spread = 0.6): Float32Array {
  const centre = randomUnit(dim, 1_000_003 + (seed % clusters));
  const noise = randomUnit(dim, seed);
  const v = centre.map((c, i) => c + spread * noise[i]!);
  let norm = 0;
  for (const x of v) norm += x * x;
  norm = Math.sqrt(norm);
  return v.map((x) => x / norm);
}
