/**
 * The embedded backend: an hnswlib index in this process, durable per write.
 *
 *   <dataDir>/index/gen-N/        snapshot N (persist.ts: graph, vectors, metadata, checksums)
 *   <dataDir>/index/wal-N.log     every add and delete acknowledged after snapshot N was begun
 *   <dataDir>/index/CURRENT       the snapshot to load
 *
 * An add is applied in memory and appended to the log; it is acknowledged once the log's group
 * commit has fsync'd it: O(1) disk work per add whatever the index size. Open loads the newest
 * snapshot that loads and replays the logs from its number on. When the log grows past a
 * fraction of the index, a snapshot is written in the background: the log is rotated first
 * (under the mutex, so every record is in exactly one log), and while hnswlib writes its graph
 * (which must not change under it) new adds and deletes wait in an overlay that searches scan
 * exactly, and are folded into the graph when the snapshot is on disk.
 */
import { promises as fs } from "node:fs";
import path from "node:path";
import {
  type BackendStatus,
  type CatchUp,
  checkEntry,
  type CommitOptions,
  DuplicateIdError,
  type Entry,
  type Hit,
  type IndexBackend,
  type IndexBuilder,
  type IndexOrigin,
  type IndexParams,
  type IndexView,
  type ItemMeta,
  StaleIndexError,
} from "../backend.ts";
import { BlobStore } from "./blobs.ts";
import { bulkBuild, type SegmentStats } from "./bulk-build.ts";
import { tempSibling } from "../shared/fsutil.ts";
import { Mutex } from "./mutex.ts";
import { type IndexMeta, IndexStore } from "./persist.ts";
import { parseWalName, readWal, WAL_FORMAT, WAL_VERSION, type WalHeader, walName, WalWriter } from "./wal.ts";
import { normalize, VectorIndex } from "./vector-index.ts";

export interface EmbeddedOptions {
  params: IndexParams;
  /** A snapshot is taken when the log holds at least this many records ... */
  snapshotMinRecords: number;
  /** ... and at least this fraction of the index size (geometric, so amortised O(1) per add). */
  snapshotFraction: number;
  /**
   * A bulk import into an empty build builds its graph in this many worker threads, one graph
   * segment each (index/bulk-build.ts); 0 builds it on the event loop's thread.
   */
  buildThreads?: number;
  /** ... giving each segment at least this many vectors (fewer segments for smaller imports). */
  segmentMin?: number;
}

export const DEFAULT_EMBEDDED_OPTIONS: Omit<EmbeddedOptions, "params"> = { snapshotMinRecords: 10_000, snapshotFraction: 0.5, buildThreads: 0, segmentMin: 250_000 };

function originOf(meta: IndexMeta): IndexOrigin {
  return { modelId: meta.modelId, modelDir: meta.modelDir, startModelDir: meta.startModelDir, build: meta.build };
}

function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/** One build in memory: the hnswlib index plus the overlay used while a snapshot writes it. */
let views = 0;

export class EmbeddedView implements IndexView {
  retired = false;
  readonly buildKey = ++views;
  private readonly overlay = new Map<string, Entry>();
  private readonly tombstones = new Set<string>();

  constructor(readonly index: VectorIndex, readonly origin: IndexOrigin) {}

  get dim(): number {
    return this.index.dim;
  }

  has(id: string): boolean {
    return this.overlay.has(id) || (this.index.has(id) && !this.tombstones.has(id));
  }

  getSync(id: string): ItemMeta | undefined {
    const pending = this.overlay.get(id);
    if (pending) return pending.meta;
    return this.tombstones.has(id) ? undefined : this.index.get(id);
  }

  /** Writes waiting in the overlay for a snapshot to finish. */
  get deferred(): number {
    return this.overlay.size + this.tombstones.size;
  }

  liveSize(): number {
    return this.index.size - this.tombstones.size + this.overlay.size;
  }

  async size(): Promise<number> {
    return this.liveSize();
  }

  async get(id: string): Promise<ItemMeta | undefined> {
    return this.getSync(id);
  }

  async search(query: Float32Array, k: number, ef: number): Promise<Hit[]> {
    const hits: Hit[] = this.index
      .search(query, k + this.tombstones.size, ef)
      .filter((h) => !this.tombstones.has(h.meta.id))
      .map((h) => ({ ...h, vector: this.index.vector(h.meta.id)! }));
    if (this.overlay.size === 0) return hits.slice(0, k);
    const q = normalize(Float32Array.from(query));
    for (const { meta, vector } of this.overlay.values()) hits.push({ meta, vector, similarity: dot(q, vector) });
    return hits.sort((a, b) => b.similarity - a.similarity).slice(0, k);
  }

  async items(): Promise<ItemMeta[]> {
    return this.itemsSync();
  }

  itemsSync(): ItemMeta[] {
    const live = this.index.items().filter((m) => !this.tombstones.has(m.id));
    return [...live, ...[...this.overlay.values()].map((e) => e.meta)];
  }

  /** Apply an add; `deferred` while a snapshot writes the graph. */
  apply(entry: Entry, deferred: boolean): void {
    if (deferred) this.overlay.set(entry.meta.id, { meta: entry.meta, vector: normalize(Float32Array.from(entry.vector)) });
    else this.index.add(entry.meta, entry.vector);
  }

  applyDelete(id: string, deferred: boolean): void {
    if (this.overlay.delete(id)) return;
    if (deferred) this.tombstones.add(id);
    else this.index.remove(id);
  }

  /** Fold the overlay into the graph (synchronous, so no request sees it half-folded). */
  fold(): void {
    for (const id of this.tombstones) this.index.remove(id);
    this.tombstones.clear();
    for (const { meta, vector } of this.overlay.values()) this.index.add(meta, vector);
    this.overlay.clear();
  }
}

class EmbeddedBuilder implements IndexBuilder {
  index: VectorIndex;
  /** How the last bulk build's segments went (benchmarks read it). */
  bulkStats: SegmentStats[] | undefined;

  constructor(
    readonly origin: IndexOrigin,
    readonly dim: number,
    private readonly params: IndexParams,
    private readonly bulk: { threads: number; segmentMin: number; scratch: string },
  ) {
    this.index = new VectorIndex(dim, params);
  }

  /** Into an empty build the graph is built from all entries at once, in parallel segments. */
  async addBulk(entries: Entry[], onProgress: (done: number) => void): Promise<void> {
    const seen = new Set<string>();
    const fresh = entries.filter((e) => {
      checkEntry(this, e);
      if (this.index.has(e.meta.id) || seen.has(e.meta.id)) return false;
      seen.add(e.meta.id);
      return true;
    });
    if (this.index.size > 0 || fresh.length === 0) {
      for (let start = 0; start < fresh.length; start += 1000) {
        await this.addBatch(fresh.slice(start, start + 1000));
        onProgress(Math.min(start + 1000, fresh.length));
        await new Promise((resolve) => setImmediate(resolve));
      }
      return;
    }
    // Under the index directory with a .tmp name: a crash leaves nothing open() won't remove.
    const tmpDir = tempSibling(path.join(this.bulk.scratch, "bulk-build"));
    const built = await bulkBuild(this.dim, this.params, fresh, { threads: this.bulk.threads, segmentMin: this.bulk.segmentMin, tmpDir, onProgress });
    this.index = built.index;
    this.bulkStats = built.segments;
    const each = built.segments.map((s) => `${s.rows} in ${s.seconds.toFixed(0)} s${s.cpuSeconds === undefined ? "" : ` (${s.cpuSeconds.toFixed(0)} s CPU)`}`);
    console.log(`index: graph of ${fresh.length} vectors built in ${built.segments.length} segment(s): ${each.join(", ")}`);
  }

  async ids(): Promise<Set<string>> {
    return new Set(this.index.items().map((m) => m.id));
  }

  async addBatch(entries: Entry[]): Promise<void> {
    for (const e of entries) {
      checkEntry(this, e);
      if (!this.index.has(e.meta.id)) this.index.add(e.meta, e.vector);
    }
  }
}

export class EmbeddedBackend implements IndexBackend {
  readonly kind = "embedded" as const;
  readonly store: IndexStore;
  readonly blobs: BlobStore;
  private view: EmbeddedView | undefined;
  private wal: WalWriter | undefined;
  private generation = 0;
  private readonly mutex = new Mutex();
  /** The background snapshot in progress. */
  private snapshotting: Promise<void> | undefined;
  /** Set from the log's rotation until the snapshot is on disk: mutations go to the overlay. */
  private deferring = false;
  private openBuilders = 0;

  constructor(dataDir: string, readonly options: EmbeddedOptions) {
    this.store = new IndexStore(dataDir);
    this.blobs = new BlobStore(dataDir);
  }

  private walPath(generation: number): string {
    return path.join(this.store.root, walName(generation));
  }

  async open(): Promise<IndexView | undefined> {
    await this.store.open();
    await this.blobs.open();
    const walGens = await this.walGenerations();
    // Never reuse a number a log already has (a snapshot that died after rotating the log).
    while (walGens.length > 0 && this.store.reserveGeneration() < walGens[walGens.length - 1]!);
    const loaded = await this.store.load();
    if (!loaded) {
      await this.setAside(walGens, "no snapshot to replay onto");
      return undefined;
    }
    const view = new EmbeddedView(loaded.index, originOf(loaded.meta));
    this.generation = loaded.meta.generation;
    const replayed = await this.replay(view, walGens.filter((g) => g >= loaded.meta.generation));
    this.view = view;
    // Blobs of deletes interrupted by a crash; nothing else writes yet.
    const removed = await this.blobs.collect(new Set(view.itemsSync().map((m) => m.sha256)));
    if (removed > 0) console.log(`blobs: removed ${removed} unreferenced`);
    // More than one log replayed (or none found) means a snapshot was cut short: take it now,
    // so the log numbering starts clean.
    if (replayed !== 1) await this.snapshotNow();
    return view;
  }

  private async walGenerations(): Promise<number[]> {
    return (await fs.readdir(this.store.root))
      .map(parseWalName)
      .filter((g): g is number => g !== undefined)
      .sort((a, b) => a - b);
  }

  /** Replay logs in order onto `view`; returns how many were replayed. The last one stays open. */
  private async replay(view: EmbeddedView, gens: number[]): Promise<number> {
    let replayed = 0;
    for (const [i, gen] of gens.entries()) {
      const file = this.walPath(gen);
      const contents = readWal(file);
      const header = contents.header;
      if (!header || header.modelId !== view.origin.modelId || header.dim !== view.dim) {
        // A log of another model began a switch that never completed (its snapshot is missing).
        await this.setAside(gens.slice(i), `log of model ${header?.modelId ?? "?"} does not follow snapshot ${this.generation} of ${view.origin.modelId}`);
        break;
      }
      for (const record of contents.records) {
        if (record.type === "add") {
          // Last write wins: a later add of an id replaces it (its delete may have been torn off
          // an older log while the add, acknowledged after it, is in a newer one).
          if (view.has(record.meta.id)) view.applyDelete(record.meta.id, false);
          view.apply(record, false);
        } else if (view.has(record.id)) {
          view.applyDelete(record.id, false);
        }
      }
      if (contents.tornBytes > 0) console.warn(`index: ${path.basename(file)}: dropped a torn tail of ${contents.tornBytes} bytes (never acknowledged)`);
      console.log(`index: replayed ${contents.records.length} log records from ${path.basename(file)}`);
      await this.wal?.close();
      this.wal = await WalWriter.resume(file, contents);
      replayed++;
    }
    return replayed;
  }

  /** Logs that cannot be replayed are renamed, not deleted, so an operator can look at them. */
  private async setAside(gens: number[], why: string): Promise<void> {
    for (const gen of gens) {
      const file = this.walPath(gen);
      const { records } = readWal(file);
      if (records.length === 0) await fs.rm(file, { force: true });
      else {
        console.warn(`index: setting ${path.basename(file)} aside (${records.length} records): ${why}`);
        await fs.rename(file, `${file}.orphan`);
      }
    }
  }

  async activeBuild(): Promise<number | undefined> {
    return this.view?.origin.build;
  }

  async active(): Promise<IndexView | undefined> {
    return this.view;
  }

  private header(origin: IndexOrigin, dim: number, generation: number): WalHeader {
    return { format: WAL_FORMAT, version: WAL_VERSION, generation, modelId: origin.modelId, dim };
  }

  private activeView(view: IndexView): EmbeddedView {
    if (view !== this.view || this.view.retired) throw new StaleIndexError();
    return this.view;
  }

  async add(view: IndexView, entry: Entry): Promise<void> {
    checkEntry(view, entry);
    const { durable } = await this.mutex.run(() => {
      const live = this.activeView(view);
      if (live.has(entry.meta.id)) throw new DuplicateIdError(entry.meta.id);
      live.apply(entry, this.deferring);
      return { durable: this.wal!.append({ type: "add", meta: entry.meta, vector: entry.vector }) };
    });
    await durable;
    this.maybeSnapshot();
  }

  async addBatch(view: IndexView, entries: Entry[]): Promise<number> {
    entries.forEach((e) => checkEntry(view, e));
    const { durable, added } = await this.mutex.run(() => {
      const live = this.activeView(view);
      const pending: Array<Promise<void>> = [];
      for (const entry of entries) {
        if (live.has(entry.meta.id)) continue;
        live.apply(entry, this.deferring);
        pending.push(this.wal!.append({ type: "add", meta: entry.meta, vector: entry.vector }));
      }
      return { durable: Promise.all(pending), added: pending.length };
    });
    await durable;
    this.maybeSnapshot();
    return added;
  }

  async remove(view: IndexView, id: string): Promise<ItemMeta | undefined> {
    const result = await this.mutex.run(() => {
      const live = this.activeView(view);
      const meta = live.getSync(id);
      if (!meta) return undefined;
      live.applyDelete(id, this.deferring);
      return { meta, durable: this.wal!.append({ type: "delete", id }) };
    });
    if (!result) return undefined;
    await result.durable;
    // The bytes go too, unless another item shares them or a rebuild may still read them.
    const sha = result.meta.sha256;
    if (this.openBuilders === 0 && !this.view?.itemsSync().some((m) => m.sha256 === sha)) await this.blobs.delete(sha);
    this.maybeSnapshot();
    return result.meta;
  }

  async createBuilder(origin: IndexOrigin, dim: number): Promise<IndexBuilder> {
    this.openBuilders++;
    const bulk = {
      threads: this.options.buildThreads ?? DEFAULT_EMBEDDED_OPTIONS.buildThreads!,
      segmentMin: this.options.segmentMin ?? DEFAULT_EMBEDDED_OPTIONS.segmentMin!,
      scratch: this.store.root,
    };
    return new EmbeddedBuilder(origin, dim, this.options.params, bulk);
  }

  async commit(builder: IndexBuilder, expected: IndexView | undefined, catchUp: CatchUp, options: CommitOptions = {}): Promise<IndexView> {
    if (!(builder instanceof EmbeddedBuilder)) throw new TypeError("not an embedded builder");
    return this.mutex.run(async () => {
      await this.snapshotting;
      if (expected !== this.view) throw new StaleIndexError("the index was switched while this build ran");
      const fresh = builder.index;
      if (this.view) {
        const live = this.view.itemsSync();
        const liveIds = new Set(live.map((m) => m.id));
        if (!options.keepExtra) for (const meta of fresh.items()) if (!liveIds.has(meta.id)) fresh.remove(meta.id);
        const missing = live.filter((m) => !fresh.has(m.id));
        if (missing.length > 0) await builder.addBatch(await catchUp(missing));
      }
      const view = new EmbeddedView(fresh, builder.origin);
      await this.install(view);
      this.openBuilders--;
      return view;
    });
  }

  async abort(_builder: IndexBuilder): Promise<void> {
    this.openBuilders = Math.max(0, this.openBuilders - 1);
  }

  /** Write `view` as a new snapshot with a fresh log and make it the active build (mutex held). */
  private async install(view: EmbeddedView): Promise<void> {
    const generation = this.store.reserveGeneration();
    const wal = await WalWriter.create(this.walPath(generation), this.header(view.origin, view.dim, generation));
    try {
      await this.store.save(view.index, view.origin, generation);
    } catch (err) {
      await wal.close();
      await fs.rm(this.walPath(generation), { force: true });
      throw err;
    }
    const old = this.wal;
    this.wal = wal;
    this.generation = generation;
    if (this.view && this.view !== view) this.view.retired = true;
    this.view = view;
    await old?.close();
    await this.pruneLogs();
  }

  /** A snapshot of the active build, taken in the foreground (open, tests). */
  async snapshotNow(): Promise<void> {
    await this.mutex.run(async () => {
      await this.snapshotting;
      if (this.view) await this.install(this.view);
    });
  }

  private maybeSnapshot(): void {
    const view = this.view;
    if (!view || this.snapshotting || !this.wal) return;
    const threshold = Math.max(this.options.snapshotMinRecords, this.options.snapshotFraction * view.liveSize());
    if (this.wal.records < threshold) return;
    this.snapshotting = this.backgroundSnapshot(view)
      .catch((err: unknown) => console.warn(`index: background snapshot failed: ${(err as Error).message}`))
      .finally(() => {
        view.fold();
        this.deferring = false;
        this.snapshotting = undefined;
      });
  }

  private async backgroundSnapshot(view: EmbeddedView): Promise<void> {
    const generation = this.store.reserveGeneration();
    const old = await this.mutex.run(async () => {
      const previous = this.wal;
      // From here every mutation is logged to the new file and deferred to the overlay.
      this.wal = await WalWriter.create(this.walPath(generation), this.header(view.origin, view.dim, generation));
      this.deferring = true;
      return previous;
    });
    const started = performance.now();
    try {
      await this.store.save(view.index, view.origin, generation);
    } finally {
      // Nothing appends to the old log any more; on failure it stays on disk for replay.
      await old?.close();
    }
    this.generation = generation;
    await this.pruneLogs();
    console.log(`index: snapshot ${generation} of ${view.index.size} images in ${(performance.now() - started).toFixed(0)} ms`);
  }

  /** Logs older than the oldest kept snapshot are no longer needed by any fallback load. */
  private async pruneLogs(): Promise<void> {
    const oldest = (await this.store.generations())[0] ?? this.generation;
    for (const gen of await this.walGenerations()) if (gen < oldest) await fs.rm(this.walPath(gen), { force: true });
  }

  status(): BackendStatus {
    return { kind: this.kind, generation: this.generation, walRecords: this.wal?.records ?? 0 };
  }

  /** Wait for a background snapshot to finish (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.snapshotting) await this.snapshotting;
  }

  async close(): Promise<void> {
    await this.idle();
    await this.mutex.run(async () => {
      await this.wal?.close();
      this.wal = undefined;
    });
    if (this.view) this.view.retired = true;
  }
}
