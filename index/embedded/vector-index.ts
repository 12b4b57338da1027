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
 *
 * The graph may be split in segments: a bulk import builds one per worker thread in parallel
 * (index/bulk-build.ts), because hnswlib-node inserts on one thread only. A label lives in
 * exactly one segment; a search asks every segment for its top k and merges them, which finds
 * whatever each segment's own search finds (the true top k is the union of each segment's
 * share), at a query cost that grows with the number of segments. New items go to the last.
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
/** segmentOf is a Uint8Array; no configuration comes near this. */
export const MAX_SEGMENTS = 255;

function newGraph(dim: number, params: IndexParams, capacity: number, seed: number): Hnsw {
  const hnsw = new HierarchicalNSW("cosine", dim);
  hnsw.initIndex({ maxElements: Math.max(capacity, 16), m: params.m, efConstruction: params.efConstruction, randomSeed: seed });
  return hnsw;
}

/**
 * Seed of segment `segment`'s random level draws: segment 0 keeps the seed an index always had,
 * so a one-segment bulk build is the very graph adding the items one by one gives.
 */
export function graphSeed(segment: number): number {
  return 100 + segment;
}

export class VectorIndex {
  readonly dim: number;
  readonly params: IndexParams;
  /** At least one; adds go to the last. */
  private segments: Hnsw[];
  private byId = new Map<string, Entry>();
  private idByLabel = new Map<number, string>();
  private nextLabel = 0;
  /** Rows allocated in `vectors` and `segmentOf`. */
  private rowCapacity: number;
  /** Unit vectors, row = label; rowCapacity rows allocated. */
  private vectors: Float32Array;
  /** The segment of each label. */
  private segmentOf: Uint8Array;

  constructor(dim: number, params: IndexParams = DEFAULT_INDEX_PARAMS, capacity = INITIAL_CAPACITY) {
    if (!Number.isInteger(dim) || dim <= 0) throw new RangeError(`invalid dimension ${dim}`);
    this.dim = dim;
    this.params = params;
    this.segments = [newGraph(dim, params, capacity, graphSeed(0))];
    this.rowCapacity = Math.max(capacity, 16);
    this.vectors = new Float32Array(this.rowCapacity * dim);
    this.segmentOf = new Uint8Array(this.rowCapacity);
  }

  /** Graph segments (1 unless a bulk import built several in parallel). */
  get segmentCount(): number {
    return this.segments.length;
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
    const segment = this.segments.length - 1;
    const graph = this.segments[segment]!;
    // Doubling, so the copy hnswlib makes on a resize is amortised O(1) per add.
    // (A graph read back from a file may have no room at all: hnswlib keeps only what it holds.)
    if (graph.getCurrentCount() >= graph.getMaxElements()) graph.resizeIndex(Math.max(graph.getMaxElements() * 2, graph.getCurrentCount() + 1, 16));
    const label = this.nextLabel++;
    graph.addPoint(Array.from(vector), label);
    this.vectors.set(normalize(Float32Array.from(vector)), label * this.dim);
    this.segmentOf[label] = segment;
    this.byId.set(meta.id, { label, meta });
    this.idByLabel.set(label, meta.id);
  }

  remove(id: string): boolean {
    const entry = this.byId.get(id);
    if (!entry) return false;
    this.segments[this.segmentOf[entry.label]!]!.markDelete(entry.label);
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
    const q = Array.from(query);
    const found: Array<{ label: number; distance: number }> = [];
    for (const graph of this.segments) {
      if (graph.getCurrentCount() === 0) continue;
      graph.setEf(Math.max(ef, n));
      const { neighbors, distances } = graph.searchKnn(q, n);
      neighbors.forEach((label, i) => found.push({ label, distance: distances[i] ?? 1 }));
    }
    if (this.segments.length > 1) found.sort((a, b) => a.distance - b.distance);
    const hits: Neighbor[] = [];
    for (const { label, distance } of found) {
      const id = this.idByLabel.get(label);
      const entry = id === undefined ? undefined : this.byId.get(id);
      // hnswlib's cosine distance is 1 - cos.
      if (entry) hits.push({ meta: entry.meta, similarity: 1 - distance });
      if (hits.length === n) break;
    }
    return hits;
  }

  /** Write graph segment `segment` to `file` (not atomic on its own; see persist.ts). */
  async writeGraph(file: string, segment = 0): Promise<void> {
    await this.segments[segment]!.writeIndex(file);
  }

  /** Serialisable mapping state that, with the graph file, reconstructs this index. */
  snapshot(): { nextLabel: number; items: Array<{ label: number; meta: ItemMeta }> } {
    return { nextLabel: this.nextLabel, items: [...this.byId.values()].map((e) => ({ label: e.label, meta: e.meta })) };
  }

  /**
   * Rebuild an index object from graph segment files, its snapshot and the vector rows. Without
   * rows (an index saved before they were persisted) they are read back from the graph, slowly.
   * `rows` may be adopted as the index's own vector store when it has room to spare (a bulk
   * build hands over the buffer its workers filled).
   */
  static async fromFiles(
    files: string | string[],
    dim: number,
    params: IndexParams,
    snapshot: { nextLabel: number; items: Array<{ label: number; meta: ItemMeta }> },
    rows?: Float32Array,
  ): Promise<VectorIndex> {
    const graphs = typeof files === "string" ? [files] : files;
    if (graphs.length === 0 || graphs.length > MAX_SEGMENTS) throw new Error(`${graphs.length} graph segments; 1 to ${MAX_SEGMENTS} are supported`);
    const index = new VectorIndex(dim, params, 16);
    index.segments = [];
    for (const file of graphs) {
      const graph = new HierarchicalNSW("cosine", dim);
      await graph.readIndex(file);
      if (graph.getNumDimensions() !== dim) throw new Error(`graph has dimension ${graph.getNumDimensions()}, expected ${dim}`);
      index.segments.push(graph);
    }
    // Labels are never reused, so the segments hold exactly nextLabel points (deleted ones are
    // kept with a persisted tombstone); any other count means graph and metadata disagree.
    const points = index.segments.reduce((sum, g) => sum + g.getCurrentCount(), 0);
    if (points !== snapshot.nextLabel) throw new Error(`graph holds ${points} points, metadata expects ${snapshot.nextLabel}`);
    if (rows && rows.length < snapshot.nextLabel * dim) throw new Error(`vector rows hold ${rows.length / dim} items, expected ${snapshot.nextLabel}`);
    if (rows && rows.length > snapshot.nextLabel * dim && rows.length % dim === 0) {
      index.vectors = rows;
      index.rowCapacity = rows.length / dim;
    } else {
      if (rows && rows.length !== snapshot.nextLabel * dim) throw new Error(`vector rows hold ${rows.length / dim} items, expected ${snapshot.nextLabel}`);
      const last = index.segments[index.segments.length - 1]!;
      index.rowCapacity = Math.max(snapshot.nextLabel + last.getMaxElements() - last.getCurrentCount(), 16);
      index.vectors = new Float32Array(index.rowCapacity * dim);
      if (rows) index.vectors.set(rows);
    }
    index.segmentOf = new Uint8Array(index.rowCapacity);
    if (index.segments.length > 1) {
      for (const [segment, graph] of index.segments.entries()) {
        for (const label of graph.getIdsList()) {
          if (label >= snapshot.nextLabel) throw new Error(`segment ${segment} holds label ${label}, beyond ${snapshot.nextLabel}`);
          index.segmentOf[label] = segment;
        }
      }
    }
    for (const { label, meta } of snapshot.items) {
      if (label < 0 || label >= snapshot.nextLabel) throw new Error(`label ${label} of ${meta.id} out of range`);
      index.byId.set(meta.id, { label, meta });
      index.idByLabel.set(label, meta.id);
      if (!rows) index.vectors.set(index.segments[index.segmentOf[label]!]!.getPoint(label), label * dim);
    }
    index.nextLabel = snapshot.nextLabel;
    return index;
  }

  private ensureCapacity(needed: number): void {
    if (needed <= this.rowCapacity) return;
    const grown = Math.max(needed, this.rowCapacity * 2);
    const vectors = new Float32Array(grown * this.dim);
    vectors.set(this.vectors.subarray(0, this.nextLabel * this.dim));
    this.vectors = vectors;
    const segmentOf = new Uint8Array(grown);
    segmentOf.set(this.segmentOf.subarray(0, this.nextLabel));
    this.segmentOf = segmentOf;
    this.rowCapacity = grown;
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
