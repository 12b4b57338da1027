/**
 * Bulk build of a VectorIndex from many vectors at once (an import into an empty index).
 *
 * hnswlib-node inserts on the calling thread, one point at a time, and nearly all of an
 * import's time is those inserts (issue 18: 1M x 512 at efConstruction 200 took ~50 minutes,
 * parsing, copies and the snapshot a few seconds). So the rows are split into `threads`
 * contiguous ranges and each range becomes one graph segment, built by a worker thread of its
 * own: T cores build T segments in the time one builds 1/T of the graph, and the event loop
 * keeps serving the old index meanwhile. The price is at query time: a search visits every
 * segment (vector-index.ts), so segments are only made where a single thread would take long
 * (`segmentMin` rows each at least).
 *
 * Rows reach the workers through a SharedArrayBuffer (no copy when the entries already are rows
 * of one, as a parsed vector bundle's are); each worker writes its unit vectors into a shared
 * output that becomes the index's vector store, and its graph to a file under `tmpDir` that this
 * thread reads back.
 */
import { readFileSync } from "node:fs";
import { promises as fs } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import type { Entry, IndexParams } from "../backend.ts";
import { graphSeed, MAX_SEGMENTS, VectorIndex } from "./vector-index.ts";

export interface BulkBuildOptions {
  /** Worker threads, one graph segment each; 0 builds one graph on the calling thread. */
  threads: number;
  /** Fewest rows a segment is given: smaller imports get fewer segments (down to one). */
  segmentMin: number;
  /** Scratch directory for the segment files; created, and removed when done. */
  tmpDir: string;
  /** Called with the number of rows inserted so far. */
  onProgress?: (done: number) => void;
}

/** What a worker is asked to build (bulk-build-worker.ts). */
export interface SegmentJob {
  /** Row i is label i's vector, on a SharedArrayBuffer. */
  vectors: Float32Array;
  /** Unit vectors are written here, row = label, on a SharedArrayBuffer. */
  out: Float32Array;
  from: number;
  to: number;
  /** Points the graph has room for (the last segment gets headroom for later adds). */
  capacity: number;
  dim: number;
  params: IndexParams;
  seed: number;
  file: string;
}

export type SegmentReply = { kind: "progress"; rows: number } | { kind: "done"; seconds: number; cpuSeconds: number | undefined } | { kind: "failed"; message: string };

/** How one segment's build went: wall time, and the CPU time of its thread (what a quiet core would take). */
export interface SegmentStats {
  rows: number;
  seconds: number;
  cpuSeconds: number | undefined;
}

export interface BulkBuildResult {
  index: VectorIndex;
  segments: SegmentStats[];
}

/**
 * CPU seconds the calling thread has used (Linux: /proc/thread-self/stat, at the kernel's
 * 100 Hz tick), or undefined elsewhere. On a shared machine a build's wall time says how busy
 * the machine was; its threads' CPU time says what it costs.
 */
export function threadCpuSeconds(): number | undefined {
  try {
    const stat = readFileSync("/proc/thread-self/stat", "latin1");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}

/** Row ranges [from, to) of the segments for `count` rows. */
export function segmentRanges(count: number, threads: number, segmentMin: number): Array<[number, number]> {
  const segments = Math.max(1, Math.min(threads, MAX_SEGMENTS, Math.floor(count / Math.max(1, segmentMin))));
  const ranges: Array<[number, number]> = [];
  for (let s = 0; s < segments; s++) ranges.push([Math.floor((s * count) / segments), Math.floor(((s + 1) * count) / segments)]);
  return ranges;
}

/** The entries' vectors as rows of one shared matrix: a view when they already are, else a copy. */
export function sharedRows(entries: Entry[], dim: number): Float32Array {
  const first = entries[0]?.vector;
  const buffer = first?.buffer;
  const contiguous = buffer instanceof SharedArrayBuffer && entries.every((e, i) => e.vector.buffer === buffer && e.vector.byteOffset === first!.byteOffset + i * dim * 4 && e.vector.length === dim);
  if (contiguous) return new Float32Array(buffer, first!.byteOffset, entries.length * dim);
  const rows = new Float32Array(new SharedArrayBuffer(entries.length * dim * 4));
  entries.forEach((e, i) => rows.set(e.vector, i * dim));
  return rows;
}

/** Build an index holding `entries` (labels 0..n-1 in their order); their ids must be distinct. */
export async function bulkBuild(dim: number, params: IndexParams, entries: Entry[], options: BulkBuildOptions): Promise<BulkBuildResult> {
  if (options.threads <= 0) {
    const started = performance.now();
    const cpu = threadCpuSeconds();
    const index = await buildInline(dim, params, entries, options.onProgress);
    const used = threadCpuSeconds();
    return { index, segments: [{ rows: entries.length, seconds: (performance.now() - started) / 1000, cpuSeconds: used === undefined || cpu === undefined ? undefined : used - cpu }] };
  }
  const n = entries.length;
  const ranges = segmentRanges(n, options.threads, options.segmentMin);
  const lastSize = ranges[ranges.length - 1]![1] - ranges[ranges.length - 1]![0];
  // Room to double the last segment before hnswlib copies it on a resize, as a grown index has.
  const headroom = Math.max(1024, lastSize);
  const vectors = sharedRows(entries, dim);
  const out = new Float32Array(new SharedArrayBuffer((n + headroom) * dim * 4));
  await fs.mkdir(options.tmpDir, { recursive: true });
  const files = ranges.map((_, s) => path.join(options.tmpDir, `segment-${s}.hnsw`));
  try {
    let done = 0;
    const segments: SegmentStats[] = [];
    const workers = ranges.map(([from, to], s) =>
      startWorker({ vectors, out, from, to, capacity: to - from + (s === ranges.length - 1 ? headroom : 0), dim, params, seed: graphSeed(s), file: files[s]! }),
    );
    try {
      await Promise.all(workers.map((worker, s) => new Promise<void>((resolve, reject) => {
        worker.on("message", (message: SegmentReply) => {
          if (message.kind === "progress") options.onProgress?.((done += message.rows));
          else if (message.kind === "done") {
            segments[s] = { rows: ranges[s]![1] - ranges[s]![0], seconds: message.seconds, cpuSeconds: message.cpuSeconds };
            resolve();
          }
          else reject(new Error(`graph segment build failed: ${message.message}`));
        });
        worker.on("error", reject);
        worker.on("exit", (code) => reject(new Error(`graph segment worker exited with code ${code}`)));
      })));
    } finally {
      // A failed segment stops the others; a finished worker exits on its own.
      await Promise.all(workers.map((w) => w.terminate()));
    }
    const items = entries.map((e, label) => ({ label, meta: e.meta }));
    return { index: await VectorIndex.fromFiles(files, dim, params, { nextLabel: n, items }, out), segments };
  } finally {
    await fs.rm(options.tmpDir, { recursive: true, force: true });
  }
}

/** One graph on this thread, yielding to the event loop between chunks. */
async function buildInline(dim: number, params: IndexParams, entries: Entry[], onProgress?: (done: number) => void): Promise<VectorIndex> {
  const index = new VectorIndex(dim, params, entries.length + 1024);
  for (let start = 0; start < entries.length; start += 1000) {
    for (const e of entries.slice(start, start + 1000)) index.add(e.meta, e.vector);
    onProgress?.(index.size);
    await new Promise((resolve) => setImmediate(resolve));
  }
  return index;
}

const WORKER_ENTRY = new URL(`./bulk-build-worker${path.extname(fileURLToPath(import.meta.url))}`, import.meta.url);

/** Run from TypeScript sources, the worker needs tsx's loader registered first (as in server/model/sessions.ts). */
function startWorker(job: SegmentJob): Worker {
  if (!WORKER_ENTRY.pathname.endsWith(".ts")) return new Worker(WORKER_ENTRY, { workerData: job });
  const tsx = import.meta.resolve("tsx/esm/api");
  const bootstrap = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(WORKER_ENTRY.href)}); });`;
  return new Worker(bootstrap, { eval: true, workerData: job });
}
