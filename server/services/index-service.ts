/**
 * The service's state: the current Serving (model + index build), mutations through the index
 * backend, the start-up decision (load / re-embed / index the gallery) and background rebuilds
 * with an atomic switch. Storage is the backend's (index/backend.ts): embedded (hnswlib + a
 * write-ahead log, one process) or pgvector (PostgreSQL, shared by several processes).
 *
 * Invariants:
 *  - `serving` is replaced only by assignment, in one tick, after the build it names is
 *    complete and active; readers lease a Serving and never observe a half-built index.
 *  - an acknowledged add or delete is durable (the backend resolves only then).
 *  - a write through a build that was replaced meanwhile is refused by the backend
 *    (StaleIndexError); the service then follows the switch and embeds again with the new model.
 */
import {
  type BlobStore,
  DuplicateIdError,
  type Entry,
  type IndexBackend,
  type IndexBuilder,
  IndexMismatchError,
  type IndexOrigin,
  type IndexParams,
  type IndexView,
  type ItemMeta,
  StaleIndexError,
} from "../../index/backend.ts";
import { EmbeddedBackend } from "../../index/embedded/backend.ts";
import { BundleError, readManifest, readVectorBundle } from "../../index/vector-bundle.ts";
import { PgBackend } from "../../index/pgvector/backend.ts";
import type { Config } from "./config.ts";
import { embedEntries, embedInto } from "./embed-all.ts";
import { readGallery } from "./gallery.ts";
import { ImportJob } from "./import-job.ts";
import { RebuildJob, type RebuildStatus } from "./rebuild-job.ts";
import type { Embedder, EmbedderOptions } from "../model/types.ts";
import { conflict, notFound, Problem, unavailable } from "../lib/problem.ts";
import { Serving } from "./serving.ts";

export type LoadEmbedder = (bundleDir: string, options?: EmbedderOptions) => Promise<Embedder>;

export type { RebuildStatus } from "./rebuild-job.ts";

/** Writes refused as stale this many times in a row mean this process cannot follow the switch. */
const STALE_RETRIES = 3;

export function indexParams(config: Config): IndexParams {
  return { m: config.hnswM, efConstruction: config.hnswEfConstruction, efSearch: config.hnswEfSearch };
}

/** The backend the configuration names. */
export function backendFor(config: Config): IndexBackend {
  const params = indexParams(config);
  if (config.indexBackend === "pgvector") {
    if (!config.databaseUrl) throw new Error("config: INDEX_BACKEND=pgvector needs DATABASE_URL=postgres://user:password@host:port/db");
    return new PgBackend({ connectionString: config.databaseUrl, params, poolSize: config.pgPoolSize, maintenanceWorkMem: config.pgMaintenanceWorkMem });
  }
  return new EmbeddedBackend(config.dataDir, {
    params,
    snapshotMinRecords: config.snapshotMinRecords,
    snapshotFraction: 0.5,
    buildThreads: config.hnswBuildThreads,
    segmentMin: config.hnswSegmentMin,
  });
}

/** Mismatches of model or dimension are the client's (409), with the backend's explanation. */
function asProblem(err: unknown): unknown {
  if (err instanceof DuplicateIdError) return conflict(err.message);
  if (err instanceof IndexMismatchError) return new Problem(409, "Conflict", err.message);
  return err;
}

export class IndexService {
  readonly backend: IndexBackend;
  private serving: Serving | undefined;
  /** The rebuild job, persisted so that its outcome survives a restart (rebuild-job.ts). */
  private readonly job: RebuildJob;
  readonly imports = new ImportJob();
  private stopping = false;
  private rebuilding: Promise<void> | undefined;
  private importing: Promise<void> | undefined;
  private following: Promise<void> | undefined;
  private follower: NodeJS.Timeout | undefined;
  /** A build this process failed to follow (its bundle here is another model). */
  private unfollowable: number | undefined;

  constructor(readonly config: Config, private readonly loadEmbedder: LoadEmbedder, backend?: IndexBackend) {
    this.backend = backend ?? backendFor(config);
    this.job = new RebuildJob(config.dataDir);
  }

  get params(): IndexParams {
    return indexParams(this.config);
  }

  get blobs(): BlobStore {
    return this.backend.blobs;
  }

  get ready(): boolean {
    return this.serving !== undefined;
  }

  /** Last persisted save: the embedded snapshot generation, or the pgvector build id. */
  get generation(): number {
    return this.backend.status().generation;
  }

  get rebuild(): RebuildStatus {
    return this.job.current;
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
    return {
      intraOpThreads: c.threads, spinning: c.ortSpinning, worker: c.ortWorker, textPrecision: c.textPrecision, visionPrecision: c.visionPrecision,
      maxImageBatch: c.batchSize, maxPixels: c.maxPixels, maxInputBytes: c.maxImageBytes,
    };
  }

  // ---- start-up -------------------------------------------------------------------------

  /** Serve the active build when the active model built it; otherwise (re)build it. */
  async start(): Promise<void> {
    try {
      await this.startServing();
    } catch (err) {
      await this.backend.close().catch(() => undefined);
      throw err;
    }
  }

  private async startServing(): Promise<void> {
    await this.job.load();
    let active = await this.backend.open();
    for (let attempt = 1; ; attempt++) {
      const embedder = await this.startEmbedder(active?.origin);
      try {
        const view = await this.initialView(active, embedder);
        this.serving = new Serving(embedder, view, this.config);
        break;
      } catch (err) {
        await embedder.close();
        // Another process sharing the database built it first: serve what it built.
        if (!(err instanceof StaleIndexError) || attempt >= STALE_RETRIES) throw err;
        active = await this.backend.active();
      }
    }
    if (this.backend.kind === "pgvector") {
      this.follower = setInterval(() => void this.follow().catch((err: Error) => console.warn(`index: following the database failed: ${err.message}`)), this.config.followMs);
      this.follower.unref();
    }
  }

  /**
   * A rebuild switches models at run time and persists which; that choice survives restarts
   * as long as the operator has not configured a different model dir since.
   */
  private async startEmbedder(active: IndexOrigin | undefined): Promise<Embedder> {
    const preferred = active && active.startModelDir === this.config.modelDir ? active.modelDir : this.config.modelDir;
    try {
      return await this.loadEmbedder(preferred, this.embedderOptions());
    } catch (err) {
      if (preferred === this.config.modelDir) throw err;
      console.warn(`model ${preferred} unusable (${(err as Error).message}); falling back to ${this.config.modelDir}`);
      return this.loadEmbedder(this.config.modelDir, this.embedderOptions());
    }
  }

  private async initialView(active: IndexView | undefined, embedder: Embedder): Promise<IndexView> {
    if (active && active.origin.modelId === embedder.modelId && active.dim === embedder.dim) {
      console.log(`index: ${this.backend.kind} build ${active.origin.build} (${await active.size()} images, model ${embedder.modelId})`);
      return active;
    }
    // A shared database is not re-embedded because one process was configured differently:
    // that would switch every other process to a model its operator did not choose.
    if (active && this.backend.kind === "pgvector") {
      throw new IndexMismatchError(`the database's index holds model ${active.origin.modelId} (dim ${active.dim}, bundle ${active.origin.modelDir}), ` +
        `but this process loaded model ${embedder.modelId} (dim ${embedder.dim}, bundle ${embedder.bundleDir}): point MODEL_DIR at the ` +
        "database's bundle, or switch the database with POST /v1/index/rebuild {\"modelDir\"} on a running process");
    }
    const origin: IndexOrigin = { modelId: embedder.modelId, modelDir: embedder.bundleDir, startModelDir: this.config.modelDir, build: (active?.origin.build ?? 0) + 1 };
    return this.buildAndCommit(origin, embedder, active, async (builder) => {
      if (!active) return this.indexGallery(embedder, builder);
      const items = await active.items();
      console.log(`index: built by ${active.origin.modelId}, active model is ${embedder.modelId}; re-embedding ${items.length} images`);
      await embedInto(items, embedder, this.blobs, builder, { batchSize: this.config.batchSize });
    });
  }

  /** Fill a new build with `fill`, then switch to it (carrying over writes made meanwhile). */
  private async buildAndCommit(origin: IndexOrigin, embedder: Embedder, expected: IndexView | undefined, fill: (b: IndexBuilder) => Promise<void>, keepExtra = false): Promise<IndexView> {
    const builder = await this.backend.createBuilder(origin, embedder.dim);
    try {
      await fill(builder);
      return await this.backend.commit(builder, expected, (missing) => embedEntries(missing, embedder, this.blobs, this.config.batchSize), { keepExtra });
    } catch (err) {
      await this.backend.abort(builder).catch(() => undefined);
      throw err;
    }
  }

  private async indexGallery(embedder: Embedder, builder: IndexBuilder): Promise<void> {
    const entries = await readGallery(this.config.galleryDir);
    if (entries.length === 0) return;
    const batch = this.config.batchSize;
    const seen = new Set<string>();
    for (let start = 0; start < entries.length; start += batch) {
      const slice = entries.slice(start, start + batch);
      const vectors = await embedder.embedImages(slice.map((e) => e.bytes)).catch(() => undefined);
      const ready: Entry[] = [];
      for (const [i, entry] of slice.entries()) {
        // A bad batch is retried one image at a time so one broken file skips only itself.
        const vector = vectors?.[i] ?? (await embedder.embedImages([entry.bytes]).then((v) => v[0]).catch((err: Error) => {
          console.warn(`gallery: skipping ${entry.file}: ${err.message}`);
          return undefined;
        }));
        if (!vector || seen.has(entry.id)) continue;
        seen.add(entry.id);
        const sha256 = await this.blobs.put(entry.bytes);
        ready.push({ meta: { id: entry.id, source: `gallery:${entry.file}`, sha256, addedAt: new Date().toISOString() }, vector });
      }
      await builder.addBatch(ready);
    }
    console.log(`gallery: indexed ${seen.size} of ${entries.length} images from ${this.config.galleryDir}`);
  }

  // ---- following other processes (pgvector) ----------------------------------------------

  /** Serve the backend's active build if another process (or a rebuild here) switched it. */
  follow(): Promise<void> {
    this.following ??= this.refresh().finally(() => (this.following = undefined));
    return this.following;
  }

  private async refresh(): Promise<void> {
    const current = this.serving;
    if (!current || this.stopping) return;
    const view = await this.backend.active();
    if (!view || view.buildKey === current.index.buildKey || view.buildKey === this.unfollowable) return;
    // The view already serves here (a rebuild of this process is finishing its swap).
    if (this.serving !== current) return;
    const embedder = await this.loadEmbedder(view.origin.modelDir, this.embedderOptions());
    if (embedder.modelId !== view.origin.modelId || embedder.dim !== view.dim) {
      await embedder.close();
      // Said once per build, not at every poll.
      this.unfollowable = view.buildKey;
      throw new IndexMismatchError(`the active build ${view.origin.build} holds model ${view.origin.modelId} (dim ${view.dim}) from ${view.origin.modelDir}, but that bundle here is model ${embedder.modelId} (dim ${embedder.dim}); this process keeps serving build ${current.build}`);
    }
    if (this.serving !== current) {
      await embedder.close();
      return;
    }
    console.log(`index: following the switch to build ${view.origin.build} (model ${view.origin.modelId})`);
    this.swap(new Serving(embedder, view, this.config));
  }

  private swap(next: Serving): void {
    const old = this.serving;
    this.serving = next;
    old?.retire();
  }

  /** Run a write through the current build, following a switch when the backend says stale. */
  private async write<T>(fn: (serving: Serving) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const serving = this.acquireUnleased();
      try {
        return await fn(serving);
      } catch (err) {
        if (!(err instanceof StaleIndexError)) throw asProblem(err);
        if (attempt >= STALE_RETRIES) throw unavailable("the index was switched to another build that this process could not follow yet; retry");
        await this.follow().catch(() => undefined);
        // A local rebuild's swap lands in the same tick as its commit: let it.
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
  }

  // ---- mutations ------------------------------------------------------------------------

  /** Embed and add one image; resolves once the add is durable. */
  async add(id: string, bytes: Buffer, source: string): Promise<{ meta: ItemMeta; modelId: string }> {
    return this.write(async (serving) => {
      if (await serving.index.get(id)) throw conflict(`image ${id} exists; DELETE it first to replace it`);
      const release = serving.lease();
      let vector: Float32Array;
      try {
        [vector] = (await serving.embedder.embedImages([bytes])) as [Float32Array];
      } finally {
        release();
      }
      const sha256 = await this.blobs.put(bytes);
      const meta: ItemMeta = { id, source, sha256, addedAt: new Date().toISOString() };
      await this.backend.add(serving.index, { meta, vector });
      return { meta, modelId: serving.modelId };
    });
  }

  async remove(id: string): Promise<void> {
    await this.write(async (serving) => {
      if (!(await this.backend.remove(serving.index, id))) throw notFound(`no image ${id}`);
    });
  }

  /**
   * Start importing a vector bundle in the background (POST /v1/index/import): its manifest is
   * checked against the serving model first, so a mismatch is refused before anything loads.
   */
  async startImport(dir: string): Promise<void> {
    const serving = this.acquireUnleased();
    const manifest = await readManifest(dir).catch((err: unknown) => {
      throw err instanceof BundleError ? new Problem(422, "Unprocessable Content", err.message) : err;
    });
    this.checkImport(serving, manifest.modelId, manifest.dim);
    if (this.imports.running) throw conflict("an import is already running; see GET /v1/index");
    if (this.job.running) throw conflict("a rebuild is running; import after it finishes");
    this.imports.begin(manifest.count);
    this.importing = (async () => {
      try {
        const { entries } = await readVectorBundle(dir);
        await this.importVectors(manifest.modelId, entries, 1000, true);
      } catch (err) {
        if (this.imports.running) this.imports.finish("failed", (err as Error).message);
        console.warn(`import of ${dir} failed: ${(err as Error).message}`);
      }
    })();
  }

  private checkImport(serving: Serving, modelId: string, dim: number): void {
    if (modelId !== serving.modelId) {
      throw new Problem(409, "Conflict", `these vectors were made by model ${modelId}; the index serves model ${serving.modelId} (POST /v1/index/rebuild with that bundle first)`);
    }
    if (dim !== serving.index.dim) throw new Problem(409, "Conflict", `these vectors have dimension ${dim}; the index holds ${serving.index.dim}`);
  }

  /**
   * Bulk add of precomputed vectors (POST /v1/index/import): refused unless they come from the
   * serving model. Into an empty index they are loaded as a new build (the graph is built
   * once, not item by item); otherwise they are added to the serving build in batches.
   */
  async importVectors(modelId: string, entries: Entry[], batchSize = 1000, begun = false): Promise<number> {
    const serving = this.acquireUnleased();
    this.checkImport(serving, modelId, serving.index.dim);
    const bad = entries.find((e) => e.vector.length !== serving.index.dim);
    if (bad) throw new Problem(409, "Conflict", `vector of ${bad.meta.id} has dimension ${bad.vector.length}; the index holds ${serving.index.dim}`);
    if (!begun) {
      if (this.job.running) throw conflict("a rebuild is running; import after it finishes");
      this.imports.begin(entries.length);
    }
    try {
      const added = (await serving.index.size()) === 0
        ? await this.importAsBuild(serving, entries, batchSize)
        : await this.importInto(entries, batchSize);
      this.imports.finish("succeeded");
      return added;
    } catch (err) {
      this.imports.finish("failed", (err as Error).message);
      throw asProblem(err);
    }
  }

  private async importInto(entries: Entry[], batchSize: number): Promise<number> {
    let added = 0;
    for (let start = 0; start < entries.length; start += batchSize) {
      const batch = entries.slice(start, start + batchSize);
      added += await this.write((serving) => this.backend.addBatch(serving.index, batch));
      this.imports.progress(start + batch.length);
    }
    return added;
  }

  private async importAsBuild(serving: Serving, entries: Entry[], batchSize: number): Promise<number> {
    const origin = { ...serving.index.origin, build: serving.build + 1 };
    const view = await this.buildAndCommit(origin, serving.embedder, serving.index, async (builder) => {
      if (builder.addBulk) return builder.addBulk(entries, (done) => this.imports.progress(done));
      for (let start = 0; start < entries.length; start += batchSize) {
        await builder.addBatch(entries.slice(start, start + batchSize));
        this.imports.progress(start + Math.min(batchSize, entries.length - start));
        await new Promise((resolve) => setImmediate(resolve));
      }
    }, true);
    // Same model, new build: the serving embedder carries over (not closed with the old one).
    const next = new Serving(serving.embedder, view, this.config);
    const old = this.serving;
    this.serving = next;
    old?.retire({ closeModel: false });
    return view.size();
  }

  // ---- rebuild --------------------------------------------------------------------------

  /** Start a background rebuild once the job is persisted; throws 409 when one is running. */
  async startRebuild(modelDir: string | undefined): Promise<RebuildStatus> {
    if (!this.serving) throw unavailable("the model and index are still loading");
    const dir = modelDir ?? this.serving.modelDir;
    const total = await this.serving.index.size();
    // Checked after the await and marked running in the same tick: two requests cannot both start.
    if (this.job.running) throw conflict("a rebuild is already running; see GET /v1/index");
    if (this.imports.running) throw conflict("an import is running; rebuild after it finishes");
    await this.job.begin(dir, total);
    this.rebuilding = this.runRebuild(dir);
    return this.rebuild;
  }

  private async runRebuild(modelDir: string): Promise<void> {
    let embedder: Embedder | undefined;
    try {
      embedder = await this.loadEmbedder(modelDir, this.embedderOptions());
      const old = this.serving!;
      const origin: IndexOrigin = { modelId: embedder.modelId, modelDir: embedder.bundleDir, startModelDir: old.startModelDir, build: old.build + 1 };
      const started = performance.now();
      const view = await this.buildAndCommit(origin, embedder, old.index, async (builder) => {
        const items = await old.index.items();
        let logged = performance.now();
        await embedInto(items, embedder!, this.blobs, builder, {
          batchSize: this.config.batchSize,
          onProgress: (done) => {
            this.job.progress(done);
            if (performance.now() - logged < 5000) return;
            logged = performance.now();
            const rate = done / ((logged - started) / 1000);
            console.log(`rebuild: ${done} of ${items.length} images re-embedded (${rate.toFixed(1)}/s)`);
          },
          shouldStop: () => this.stopping,
        });
      });
      const total = await view.size();
      this.job.progress(total, total);
      this.swap(new Serving(embedder, view, this.config));
      console.log(`rebuild: build ${origin.build} of ${total} images with model ${origin.modelId} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
      await this.finishRebuild("succeeded");
    } catch (err) {
      if (embedder && this.serving?.embedder !== embedder) await embedder.close().catch(() => undefined);
      await this.finishRebuild("failed", (err as Error).message ?? String(err));
    }
  }

  private async finishRebuild(state: "succeeded" | "failed", error?: string): Promise<void> {
    if (error !== undefined) console.warn(`rebuild failed: ${error}`);
    await this.job.finish(state, error);
  }

  /** Stop background work, wait for it, close the storage and the model. */
  async close(): Promise<void> {
    this.stopping = true;
    if (this.follower) clearInterval(this.follower);
    await this.rebuilding;
    await this.importing;
    await this.following?.catch(() => undefined);
    await this.backend.close();
    const serving = this.serving;
    this.serving = undefined;
    serving?.retire();
  }
}
