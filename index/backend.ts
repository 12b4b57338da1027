/**
 * The one interface both index backends implement: the embedded one (hnswlib in this process,
 * made durable by a write-ahead log, index/embedded/) and PostgreSQL + pgvector
 * (index/pgvector/), which several service processes can share.
 *
 * The model is a sequence of *builds*: each build holds one model's vectors, exactly one build
 * is active, and a rebuild fills a new build in the background and makes it active in one step
 * (`commit`). A view names one build, so a query answered through a view is answered wholly by
 * one model's vectors; a write through a view that is no longer active is refused with
 * StaleIndexError, and the caller re-embeds with the new model.
 */

/** What the service keeps about each image, in either backend. */
export interface ItemMeta {
  /** Client-visible id. */
  id: string;
  /** Where the image came from: "upload", "gallery:<file>" or an absolute server-local path. */
  source: string;
  /** SHA-256 of the image bytes; the blob store key, used to re-embed on rebuild. */
  sha256: string;
  /** ISO-8601 time the item was added. */
  addedAt: string;
}

/** HNSW parameters: the embedded graph's and the pgvector index's alike. */
export interface IndexParams {
  /** Graph degree; 16 is hnswlib's recommended default for 512-d embeddings. */
  m: number;
  /** Construction beam width; higher = better recall, slower inserts. */
  efConstruction: number;
  /** Minimum search beam width; the effective ef is max(efSearch, k). */
  efSearch: number;
}

export const DEFAULT_INDEX_PARAMS: IndexParams = { m: 16, efConstruction: 96, efSearch: 128 };

export type BackendKind = "embedded" | "pgvector";

/** Who built an index: the service reloads it only for the same model. */
export interface IndexOrigin {
  /** Fingerprint of the bundle whose vision encoder produced the vectors. */
  modelId: string;
  /** Bundle directory the vectors came from. */
  modelDir: string;
  /** Model dir configured when the index was built; a restart with another one rebuilds. */
  startModelDir: string;
  /** Counts full (re)builds; every response names the build it came from. */
  build: number;
}

/** One item and its vector, as added, imported or carried over by a rebuild. */
export interface Entry {
  meta: ItemMeta;
  vector: Float32Array;
}

export interface Hit {
  meta: ItemMeta;
  /** Cosine similarity in [-1, 1]. */
  similarity: number;
  /** The stored unit vector (count-aware scoring needs it). */
  vector: Float32Array;
}

/** One build's vectors, read-only: what a request searches. */
export interface IndexView {
  /** Names this build within its backend (two views of one build have the same key). */
  readonly buildKey: number;
  readonly origin: IndexOrigin;
  readonly dim: number;
  size(): Promise<number>;
  get(id: string): Promise<ItemMeta | undefined>;
  /** Approximate k nearest neighbours by cosine similarity, best first. */
  search(query: Float32Array, k: number, ef: number): Promise<Hit[]>;
  /** Metadata of every item (a rebuild re-embeds them). */
  items(): Promise<ItemMeta[]>;
}

/** A build being filled in the background; invisible to queries until committed. */
export interface IndexBuilder {
  readonly origin: IndexOrigin;
  readonly dim: number;
  /** Ids already in the build (a resumed or caught-up build skips them). */
  ids(): Promise<Set<string>>;
  addBatch(entries: Entry[]): Promise<void>;
  /**
   * Add many entries at once (an import), reporting how many are in so far; a backend that can
   * build its structures faster from the whole set than batch by batch implements it.
   */
  addBulk?(entries: Entry[], onProgress: (done: number) => void): Promise<void>;
}

/** Embeds the items a rebuild must carry over (added to the old build while it ran). */
export type CatchUp = (missing: ItemMeta[]) => Promise<Entry[]>;

export interface CommitOptions {
  /**
   * Keep items of the new build that the replaced one lacks (an import adds to what is there).
   * By default they are dropped: a rebuild mirrors the old build, deletes during it included.
   */
  keepExtra?: boolean;
}

/** Stored image bytes, keyed by SHA-256: what a rebuild re-embeds from. */
export interface BlobStore {
  put(data: Uint8Array): Promise<string>;
  get(digest: string): Promise<Buffer>;
}

export interface BackendStatus {
  kind: BackendKind;
  /** Last persisted save (embedded: snapshot generation; pgvector: active build). */
  generation: number;
  /** Records in the write-ahead log since the last snapshot (embedded only). */
  walRecords?: number;
}

export interface IndexBackend {
  readonly kind: BackendKind;
  readonly blobs: BlobStore;
  /** Prepare storage (directories, migrations) and return the active build, if any. */
  open(): Promise<IndexView | undefined>;
  /** Build number of the active build, as stored (other processes may have switched it). */
  activeBuild(): Promise<number | undefined>;
  /** The active build's view, freshly read. */
  active(): Promise<IndexView | undefined>;
  /** Add durably through `view`: resolves once the add survives a crash. */
  add(view: IndexView, entry: Entry): Promise<void>;
  /** Bulk add (import): existing ids are skipped; returns how many were added. */
  addBatch(view: IndexView, entries: Entry[]): Promise<number>;
  /** Remove durably; resolves to the removed item, or undefined when there was none. */
  remove(view: IndexView, id: string): Promise<ItemMeta | undefined>;
  createBuilder(origin: IndexOrigin, dim: number): Promise<IndexBuilder>;
  /**
   * Make `builder` the active build in one step, after carrying over what was added to
   * `expected` (the build it replaces) meanwhile and dropping what was removed from it.
   * Throws StaleIndexError when `expected` is no longer the active build.
   */
  commit(builder: IndexBuilder, expected: IndexView | undefined, catchUp: CatchUp, options?: CommitOptions): Promise<IndexView>;
  abort(builder: IndexBuilder): Promise<void>;
  status(): BackendStatus;
  close(): Promise<void>;
}

/** The view (or expected build) is no longer the active build: re-read and retry. */
export class StaleIndexError extends Error {
  constructor(message = "the index was switched to another build") {
    super(message);
    this.name = "StaleIndexError";
  }
}

export class DuplicateIdError extends Error {
  constructor(readonly id: string) {
    super(`image ${id} exists; DELETE it first to replace it`);
    this.name = "DuplicateIdError";
  }
}

/** A vector or bundle that does not belong to the index: wrong dimension or another model. */
export class IndexMismatchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "IndexMismatchError";
  }
}

export function checkEntry(view: { dim: number; origin: IndexOrigin }, entry: Entry): void {
  if (entry.vector.length !== view.dim) {
    throw new IndexMismatchError(`vector of ${entry.meta.id} has dimension ${entry.vector.length}; index build ${view.origin.build} (model ${view.origin.modelId}) holds ${view.dim}`);
  }
}
