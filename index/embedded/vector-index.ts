/**
 * An HNSW cosine index (hnswlib-node) keyed by string ids, with the per-item metadata the
 * service needs. hnswlib stores integer labels; this class owns the id <-> label mapping,
 * growth of the preallocated capacity, and deletion (hnswlib marks deleted points, and the
 * label is never reused, so a stale label can never alias a newer item).
 *
 * It also keeps a dense copy of the unit vectors, row = label: count-aware search needs the
 * vectors of its candidates, and hnswlib-node's getPoint crosses N-API one element at a time
 * (~1 ms for a 512-d vector), which would dominate the request. The copy costs dim * 4 bytes
 * per item and is persisted next to the graph.
 */
import hnswlib from "hnswlib-node";
import { DEFAULT_INDEX_PARAMS, type IndexParams, type ItemMeta } from "../backend.ts";

const { HierarchicalNSW } = hnswlib;
type Hnsw = InstanceType<typeof HierarchicalNSW>;

export interface Neighbor {
  meta: ItemMeta;
  /** Cosine similarity in [-1, 1]. */
  similarity: number;
}

interface Entry {
  label: number;
  meta: ItemMeta;
}

const INITIAL_CAPACITY = 1024;

export class VectorIndex {
  readonly dim: number;
  readonly params: IndexParams;
  private hnsw: Hnsw;
  private byId = new Map<string, Entry>();
  private idByLabel = new Map<number, string>();
  private nextLabel = 0;
  /** Unit vectors, row = label; capacity rows allocated. */
  private vectors: Float32Array;

  constructor(dim: number, params: IndexParams = DEFAULT_INDEX_PARAMS, capacity = INITIAL_CAPACITY) {
    if (!Number.isInteger(dim) || dim <= 0) throw new RangeError(`invalid dimension ${dim}`);
    this.dim = dim;
    this.params = params;
    this.hnsw = new HierarchicalNSW("cosine", dim);
    this.hnsw.initIndex({ maxElements: Math.max(capacity, 16), m: params.m, efConstruction: params.efConstruction, randomSeed: 100 });
    this.vectors = new Float32Array(Math.max(capacity, 16) * dim);
  }

  get size(): number {
    return this.byId.size;
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  get(id: string): ItemMeta | undefined {
    return this.byId.get(id)?.meta;
  }

  /** Metadata of every live item, in insertion order. */
  items(): ItemMeta[] {
    return [...this.byId.values()].map((e) => e.meta);
  }

  /** Add an item; throws if the id exists (callers decide between conflict and replace). */
  add(meta: ItemMeta, vector: Float32Array | number[]): void {
    if (this.byId.has(meta.id)) throw new Error(`duplicate id ${meta.id}`);
    this.checkVector(vector);
    this.ensureCapacity(this.nextLabel + 1);
    const label = this.nextLabel++;
    this.hnsw.addPoint(Array.from(vector), label);
    this.vectors.set(normalize(Float32Array.from(vector)), label * this.dim);
    this.byId.set(meta.id, { label, meta });
    this.idByLabel.set(label, meta.id);
  }

  remove(id: string): boolean {
    const entry = this.byId.get(id);
    if (!entry) return false;
    this.hnsw.markDelete(entry.label);
    this.byId.delete(id);
    this.idByLabel.delete(entry.label);
    return true;
  }

  /** The stored unit vector of an item: a read-only view, valid until the next add. */
  vector(id: string): Float32Array | undefined {
    const entry = this.byId.get(id);
    return entry ? this.vectors.subarray(entry.label * this.dim, (entry.label + 1) * this.dim) : undefined;
  }

  /** Rows 0..nextLabel of the vector copy (deleted rows included), for persistence. */
  vectorRows(): Float32Array {
    return this.vectors.subarray(0, this.nextLabel * this.dim);
  }

  /** Approximate k nearest neighbours by cosine similarity, best first. */
  search(query: Float32Array | number[], k: number, ef = this.params.efSearch): Neighbor[] {
    this.checkVector(query);
    const n = Math.min(k, this.byId.size);
    if (n <= 0) return [];
    this.hnsw.setEf(Math.max(ef, n));
    const { neighbors, distances } = this.hnsw.searchKnn(Array.from(query), n);
    const hits: Neighbor[] = [];
    neighbors.forEach((label, i) => {
      const id = this.idByLabel.get(label);
      const entry = id === undefined ? undefined : this.byId.get(id);
      // hnswlib's cosine distance is 1 - cos.
      if (entry) hits.push({ meta: entry.meta, similarity: 1 - (distances[i] ?? 1) });
    });
    return hits;
  }

  /** Write the graph to `file` (not atomic on its own; see persist.ts). */
  async writeGraph(file: string): Promise<void> {
    await this.hnsw.writeIndex(file);
  }

  /** Serialisable mapping state that, with the graph file, reconstructs this index. */
  snapshot(): { nextLabel: number; items: Array<{ label: number; meta: ItemMeta }> } {
    return { nextLabel: this.nextLabel, items: [...this.byId.values()].map((e) => ({ label: e.label, meta: e.meta })) };
  }

  /**
   * Rebuild an index object from a graph file, its snapshot and the vector rows. Without rows
   * (an index saved before they were persisted) they are read back from the graph, slowly.
   */
  static async fromFiles(
    file: string,
    dim: number,
    params: IndexParams,
    snapshot: { nextLabel: number; items: Array<{ label: number; meta: ItemMeta }> },
    rows?: Float32Array,
  ): Promise<VectorIndex> {
    const index = new VectorIndex(dim, params, 16);
    await index.hnsw.readIndex(file);
    if (index.hnsw.getNumDimensions() !== dim) throw new Error(`graph has dimension ${index.hnsw.getNumDimensions()}, expected ${dim}`);
    // Labels are never reused, so the graph holds exactly nextLabel points (deleted ones are
    // kept with a persisted tombstone); any other count means graph and metadata disagree.
    if (index.hnsw.getCurrentCount() !== snapshot.nextLabel) {
      throw new Error(`graph holds ${index.hnsw.getCurrentCount()} points, metadata expects ${snapshot.nextLabel}`);
    }
    if (rows && rows.length !== snapshot.nextLabel * dim) throw new Error(`vector rows hold ${rows.length / dim} items, expected ${snapshot.nextLabel}`);
    index.vectors = new Float32Array(Math.max(index.hnsw.getMaxElements(), 16) * dim);
    if (rows) index.vectors.set(rows);
    for (const { label, meta } of snapshot.items) {
      if (label < 0 || label >= snapshot.nextLabel) throw new Error(`label ${label} of ${meta.id} out of range`);
      index.byId.set(meta.id, { label, meta });
      index.idByLabel.set(label, meta.id);
      if (!rows) index.vectors.set(index.hnsw.getPoint(label), label * dim);
    }
    index.nextLabel = snapshot.nextLabel;
    return index;
  }

  private ensureCapacity(needed: number): void {
    const capacity = this.hnsw.getMaxElements();
    if (needed <= capacity) return;
    const grown = Math.max(needed, capacity * 2);
    this.hnsw.resizeIndex(grown);
    const vectors = new Float32Array(grown * this.dim);
    vectors.set(this.vectors.subarray(0, this.nextLabel * this.dim));
    this.vectors = vectors;
  }

  private checkVector(v: Float32Array | number[]): void {
    if (v.length !== this.dim) throw new RangeError(`vector has dimension ${v.length}, index expects ${this.dim}`);
  }
}

export function normalize(v: Float32Array): Float32Array {
  let norm = 0;
  for (const x of v) norm += x * x;
  norm = Math.sqrt(norm) || 1;
  return v.map((x) => x / norm);
}
