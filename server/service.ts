/**
 * The service's state: the current Serving (model + index), durable mutations, the start-up
 * decision (load / re-embed / index the gallery) and background rebuilds with an atomic swap.
 *
 * Invariants:
 *  - `serving` is replaced only by assignment, in one tick, after the replacement is complete
 *    and persisted; readers lease a Serving and never observe a half-built index.
 *  - index mutations and saves run under `mutex`, so a save sees a consistent graph and
 *    metadata; an acknowledged add or delete has been persisted (group commit).
 */
import { BlobStore } from "../index/blobs.ts";
import { IndexStore, type LoadedIndex } from "../index/persist.ts";
import { type IndexParams, type ItemMeta, VectorIndex } from "../index/vector-index.ts";
import type { Config } from "./config.ts";
import { embedInto } from "./embed-all.ts";
import { readGallery } from "./gallery.ts";
import type { Embedder, EmbedderOptions } from "./model/embedder.ts";
import { Mutex } from "./mutex.ts";
import { conflict, notFound, unavailable } from "./problem.ts";
import { Serving } from "./serving.ts";

export type LoadEmbedder = (bundleDir: string, options?: EmbedderOptions) => Promise<Embedder>;

export interface RebuildStatus {
  state: "idle" | "running" | "succeeded" | "failed";
  modelDir?: string;
  done: number;
  total: number;
  startedAt?: string;
  finishedAt?: string;
  error?: string;
}

export class IndexService {
  readonly store: IndexStore;
  readonly blobs: BlobStore;
  private serving: Serving | undefined;
  private readonly mutex = new Mutex();
  private pendingSave: Promise<number> | undefined;
  private lastGeneration = 0;
  private rebuildStatus: RebuildStatus = { state: "idle", done: 0, total: 0 };
  private stopping = false;

  constructor(readonly config: Config, private readonly loadEmbedder: LoadEmbedder) {
    this.store = new IndexStore(config.dataDir);
    this.blobs = new BlobStore(config.dataDir);
  }

  get params(): IndexParams {
    const c = this.config;
    return { m: c.hnswM, efConstruction: c.hnswEfConstruction, efSearch: c.hnswEfSearch };
  }

  get ready(): boolean {
    return this.serving !== undefined;
  }

  get generation(): number {
    return this.lastGeneration;
  }

  get rebuild(): RebuildStatus {
    return { ...this.rebuildStatus };
  }

  /** The current Serving, leased: call `release` when the request is done with it. */
  acquire(): { serving: Serving; release: () => void } {
    const serving = this.serving;
    if (!serving) throw unavailable("the model and index are still loading");
    return { serving, release: serving.lease() };
  }

  /** The current Serving without a lease, for instantaneous reads (metrics, status). */
  acquireUnleased(): Serving {
    if (!this.serving) throw unavailable("the model and index are still loading");
    return this.serving;
  }

  /** Run `fn` against one Serving from start to end. */
  async with<T>(fn: (serving: Serving) => Promise<T>): Promise<T> {
    const { serving, release } = this.acquire();
    try {
      return await fn(serving);
    } finally {
      release();
    }
  }

  embedderOptions(): EmbedderOptions {
    const c = this.config;
    return { intraOpThreads: c.threads, maxImageBatch: c.batchSize, maxPixels: c.maxPixels, maxInputBytes: c.maxImageBytes };
  }

  // ---- start-up -------------------------------------------------------------------------

  /** Load the persisted index when the active model built it; otherwise (re)build it. */
  async start(): Promise<void> {
    await this.store.open();
    await this.blobs.open();
    const loaded = await this.store.load();
    const embedder = await this.startEmbedder(loaded);
    let serving: Serving;
    try {
      serving = await this.initialServing(loaded, embedder);
      // A freshly built index is durable before the service reports ready.
      if (!loaded || loaded.meta.modelId !== embedder.modelId) await this.mutex.run(() => this.saveLocked(serving));
      else this.lastGeneration = loaded.meta.generation;
    } catch (err) {
      await embedder.close();
      throw err;
    }
    // Blobs of deletes interrupted by a crash; nothing else writes yet.
    const removed = await this.blobs.collect(new Set(serving.index.items().map((m) => m.sha256)));
    if (removed > 0) console.log(`blobs: removed ${removed} unreferenced`);
    this.serving = serving;
  }

  /**
   * A rebuild switches models at run time and persists which; that choice survives restarts
   * as long as the operator has not configured a different model dir since.
   */
  private async startEmbedder(loaded: LoadedIndex | undefined): Promise<Embedder> {
    const preferred = loaded && loaded.meta.startModelDir === this.config.modelDir ? loaded.meta.modelDir : this.config.modelDir;
    try {
      return await this.loadEmbedder(preferred, this.embedderOptions());
    } catch (err) {
      if (preferred === this.config.modelDir) throw err;
      console.warn(`model ${preferred} unusable (${(err as Error).message}); falling back to ${this.config.modelDir}`);
      return this.loadEmbedder(this.config.modelDir, this.embedderOptions());
    }
  }

  private async initialServing(loaded: LoadedIndex | undefined, embedder: Embedder): Promise<Serving> {
    const cache = this.config.countCacheSize;
    if (loaded && loaded.meta.modelId === embedder.modelId && loaded.index.dim === embedder.dim) {
      console.log(`index: loaded generation ${loaded.meta.generation} (${loaded.index.size} images, model ${embedder.modelId})`);
      return new Serving(embedder, loaded.index, loaded.meta.build, loaded.meta.startModelDir, cache);
    }
    const index = new VectorIndex(embedder.dim, this.params);
    if (loaded) {
      console.log(`index: built by ${loaded.meta.modelId}, active model is ${embedder.modelId}; re-embedding ${loaded.index.size} images`);
      await embedInto(loaded.index.items(), embedder, this.blobs, index, { batchSize: this.config.batchSize });
      return new Serving(embedder, index, loaded.meta.build + 1, this.config.modelDir, cache);
    }
    await this.indexGallery(embedder, index);
    return new Serving(embedder, index, 1, this.config.modelDir, cache);
  }

  private async indexGallery(embedder: Embedder, index: VectorIndex): Promise<void> {
    const entries = await readGallery(this.config.galleryDir);
    if (entries.length === 0) return;
    const batch = this.config.batchSize;
    for (let start = 0; start < entries.length; start += batch) {
      const slice = entries.slice(start, start + batch);
      const vectors = await embedder.embedImages(slice.map((e) => e.bytes)).catch(() => undefined);
      for (const [i, entry] of slice.entries()) {
        // A bad batch is retried one image at a time so one broken file skips only itself.
        const vector = vectors?.[i] ?? (await embedder.embedImages([entry.bytes]).then((v) => v[0]).catch((err: Error) => {
          console.warn(`gallery: skipping ${entry.file}: ${err.message}`);
          return undefined;
        }));
        if (!vector || index.has(entry.id)) continue;
        const sha256 = await this.blobs.put(entry.bytes);
        index.add({ id: entry.id, source: `gallery:${entry.file}`, sha256, addedAt: new Date().toISOString() }, vector);
      }
    }
    console.log(`gallery: indexed ${index.size} of ${entries.length} images from ${this.config.galleryDir}`);
  }

  // ---- mutations ------------------------------------------------------------------------

  /** Embed and add one image; resolves once the index holding it is persisted. */
  async add(id: string, bytes: Buffer, source: string): Promise<{ meta: ItemMeta; modelId: string }> {
    for (;;) {
      const { serving, release } = this.acquire();
      if (serving.index.has(id)) {
        release();
        throw conflict(`image ${id} exists; DELETE it first to replace it`);
      }
      let vector: Float32Array;
      try {
        [vector] = (await serving.embedder.embedImages([bytes])) as [Float32Array];
      } finally {
        release();
      }
      const sha256 = await this.blobs.put(bytes);
      const meta: ItemMeta = { id, source, sha256, addedAt: new Date().toISOString() };
      const added = await this.mutex.run(() => {
        // A rebuild swapped models while we embedded: embed again with the new one.
        if (this.serving !== serving) return false;
        if (serving.index.has(id)) throw conflict(`image ${id} exists; DELETE it first to replace it`);
        serving.index.add(meta, vector);
        return true;
      });
      if (!added) continue;
      await this.persist();
      return { meta, modelId: serving.modelId };
    }
  }

  async remove(id: string): Promise<void> {
    const sha256 = await this.mutex.run(() => {
      const serving = this.serving;
      if (!serving) throw unavailable("the model and index are still loading");
      const meta = serving.index.get(id);
      if (!meta) throw notFound(`no image ${id}`);
      serving.index.remove(id);
      return meta.sha256;
    });
    await this.persist();
    const stillUsed = this.serving?.index.items().some((m) => m.sha256 === sha256);
    if (!stillUsed && this.rebuildStatus.state !== "running") await this.blobs.delete(sha256);
  }

  /**
   * Group commit: resolves when a save that started after this call has completed, so every
   * mutation acknowledged before the call is durable. Concurrent callers share one save.
   */
  persist(): Promise<number> {
    if (!this.pendingSave) {
      const pending = this.mutex.run(async () => {
        this.pendingSave = undefined;
        return this.saveLocked(this.serving!);
      });
      this.pendingSave = pending;
      pending.catch(() => undefined);
    }
    return this.pendingSave;
  }

  private async saveLocked(serving: Serving): Promise<number> {
    this.lastGeneration = await this.store.save(serving.index, {
      modelId: serving.modelId,
      modelDir: serving.modelDir,
      startModelDir: serving.startModelDir,
      build: serving.build,
    });
    return this.lastGeneration;
  }

  // ---- rebuild --------------------------------------------------------------------------

  /** Start a background rebuild; throws 409 when one is running. */
  startRebuild(modelDir: string | undefined): RebuildStatus {
    if (!this.serving) throw unavailable("the model and index are still loading");
    if (this.rebuildStatus.state === "running") throw conflict("a rebuild is already running; see GET /v1/index");
    const dir = modelDir ?? this.serving.modelDir;
    this.rebuildStatus = { state: "running", modelDir: dir, done: 0, total: this.serving.index.size, startedAt: new Date().toISOString() };
    void this.runRebuild(dir);
    return this.rebuild;
  }

  private async runRebuild(modelDir: string): Promise<void> {
    let embedder: Embedder | undefined;
    try {
      embedder = await this.loadEmbedder(modelDir, this.embedderOptions());
      const fresh = new VectorIndex(embedder.dim, this.params);
      const progress = (done: number) => (this.rebuildStatus.done = Math.min(done, this.rebuildStatus.total));
      await embedInto(this.serving!.index.items(), embedder, this.blobs, fresh, {
        batchSize: this.config.batchSize,
        onProgress: progress,
        shouldStop: () => this.stopping,
      });
      await this.mutex.run(() => this.swapLocked(embedder!, fresh));
      this.finishRebuild("succeeded");
    } catch (err) {
      if (embedder && this.serving?.embedder !== embedder) await embedder.close().catch(() => undefined);
      this.finishRebuild("failed", (err as Error).message ?? String(err));
    }
  }

  /** Catch up with mutations made during the rebuild, persist, then swap in one tick. */
  private async swapLocked(embedder: Embedder, fresh: VectorIndex): Promise<void> {
    const old = this.serving!;
    const live = old.index.items();
    const liveIds = new Set(live.map((m) => m.id));
    for (const meta of fresh.items()) if (!liveIds.has(meta.id)) fresh.remove(meta.id);
    const missing = live.filter((m) => !fresh.has(m.id));
    await embedInto(missing, embedder, this.blobs, fresh, { batchSize: this.config.batchSize });
    this.rebuildStatus.total = live.length;
    this.rebuildStatus.done = live.length;
    const next = new Serving(embedder, fresh, old.build + 1, old.startModelDir, this.config.countCacheSize);
    await this.saveLocked(next);
    this.serving = next;
    old.retire();
  }

  private finishRebuild(state: "succeeded" | "failed", error?: string): void {
    this.rebuildStatus = { ...this.rebuildStatus, state, finishedAt: new Date().toISOString() };
    if (error !== undefined) {
      this.rebuildStatus.error = error;
      console.warn(`rebuild failed: ${error}`);
    }
  }

  /** Stop background work, wait for pending saves, close the model. */
  async close(): Promise<void> {
    this.stopping = true;
    await this.mutex.run(() => undefined);
    const serving = this.serving;
    this.serving = undefined;
    serving?.retire();
  }
}
