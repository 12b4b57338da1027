/**
 * Bulk import into an empty embedded build: the graph built in worker threads, one segment
 * each (index/bulk-build.ts). A segmented index must answer as a single graph does, persist and
 * reload all its segments (checksummed), take adds and deletes in any segment, and replay a
 * write-ahead log onto itself; HNSW_BUILD_THREADS / HNSW_SEGMENT_MIN configure it.
 */
import assert from "node:assert/strict";
import { appendFile, readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { after, test } from "node:test";
import { bulkBuild, segmentRanges, sharedRows } from "../index/embedded/bulk-build.ts";
import { EmbeddedBackend } from "../index/embedded/backend.ts";
import { exactTopK } from "../index/shared/exact.ts";
import { IndexStore } from "../index/embedded/persist.ts";
import { clusteredUnit } from "../index/shared/synthetic.ts";
import { VectorIndex } from "../index/embedded/vector-index.ts";
import { loadConfig } from "../server/services/config.ts";
import { removeTempDirs, tempDir } from "./helpers/service-app.ts";

after(removeTempDirs);

const DIM = 24;
const N = 1200;
const params = { m: 16, efConstruction: 200, efSearch: 64 };
const ORIGIN = { modelId: "m", modelDir: "/m", startModelDir: "/m", build: 1 };
const meta = (i: number) => ({ id: `v${i}`, source: "t", sha256: "0".repeat(64), addedAt: "2026-01-01T00:00:00.000Z" });
/** Not unit length: the index normalises, and so must every segment's worker. */
const vectorOf = (i: number) => clusteredUnit(DIM, i, 40).map((x) => x * 3);
const entries = Array.from({ length: N }, (_, i) => ({ meta: meta(i), vector: vectorOf(i) }));
const queries = Array.from({ length: 20 }, (_, i) => clusteredUnit(DIM, 1_000_000 + i, 40));
const ids = (index: VectorIndex, q: Float32Array, k = 10, ef = 400) => index.search(q, k, ef).map((h) => h.meta.id);
const exact = (q: Float32Array, rows: Float32Array) => exactTopK(rows, DIM, q, 10).map((r) => `v${r}`);

test("segment ranges: contiguous, at least segmentMin rows each, never more than the threads", () => {
  assert.deepEqual(segmentRanges(1000, 2, 250), [[0, 500], [500, 1000]]);
  assert.deepEqual(segmentRanges(1000, 4, 300), [[0, 333], [333, 666], [666, 1000]]);
  assert.deepEqual(segmentRanges(499, 2, 250), [[0, 499]]);
  assert.deepEqual(segmentRanges(10, 0, 1), [[0, 10]]);
  assert.deepEqual(segmentRanges(0, 2, 1), [[0, 0]]);
});

test("rows of one shared buffer are used in place; anything else is copied into one", () => {
  const shared = new Float32Array(new SharedArrayBuffer(3 * DIM * 4));
  const views = [0, 1, 2].map((i) => ({ meta: meta(i), vector: shared.subarray(i * DIM, (i + 1) * DIM) }));
  assert.equal(sharedRows(views, DIM).buffer, shared.buffer);
  const copied = sharedRows(entries.slice(0, 3), DIM);
  assert.ok(copied.buffer instanceof SharedArrayBuffer);
  assert.deepEqual([...copied.subarray(DIM, 2 * DIM)], [...entries[1]!.vector]);
  // Reordered rows of a shared buffer are not in place.
  assert.notEqual(sharedRows([views[1]!, views[0]!], DIM).buffer, shared.buffer);
});

test("one worker builds the very graph an inline build does; three segments answer as one graph", async () => {
  const inline = (await bulkBuild(DIM, params, entries, { threads: 0, segmentMin: 1, tmpDir: await tempDir("bulk") })).index;
  const progress: number[] = [];
  const one = (await bulkBuild(DIM, params, entries, { threads: 1, segmentMin: 1, tmpDir: await tempDir("bulk"), onProgress: (d) => progress.push(d) })).index;
  const built = await bulkBuild(DIM, params, entries, { threads: 3, segmentMin: 400, tmpDir: path.join(await tempDir("bulk"), "scratch") });
  const three = built.index;
  assert.deepEqual(built.segments.map((s) => s.rows), [400, 400, 400]);
  assert.ok(built.segments.every((s) => s.seconds > 0 && (s.cpuSeconds === undefined || s.cpuSeconds >= 0)));
  assert.equal(inline.segmentCount, 1);
  assert.equal(one.segmentCount, 1);
  assert.equal(three.segmentCount, 3);
  assert.equal(progress[progress.length - 1], N);
  const rows = new Float32Array(N * DIM);
  entries.forEach((e, i) => rows.set(inline.vector(e.meta.id)!, i * DIM));
  for (const q of queries) {
    // Same seed, same inserts, same order: identical even at a small ef.
    assert.deepEqual(one.search(q, 10, 10), inline.search(q, 10, 10));
    assert.deepEqual(ids(three, q), exact(q, rows));
    assert.deepEqual(ids(three, q), ids(inline, q));
  }
  for (const e of entries.slice(0, 50)) assert.deepEqual(three.vector(e.meta.id), inline.vector(e.meta.id));
  assert.equal(three.get("v7")?.id, "v7");
  assert.equal(three.size, N);
});

test("a segmented index takes adds and deletes in any segment, saves every segment and reloads", async () => {
  const { index } = await bulkBuild(DIM, params, entries, { threads: 2, segmentMin: 100, tmpDir: await tempDir("bulk") });
  assert.equal(index.segmentCount, 2);
  // v3 is in the first segment, v1100 in the second.
  assert.ok(index.remove("v3"));
  assert.ok(index.remove("v1100"));
  for (let i = N; i < N + 2000; i++) index.add(meta(i), vectorOf(i)); // past the last segment's headroom
  for (const id of ["v3", "v1100"]) assert.ok(!ids(index, vectorOf(Number(id.slice(1)))).includes(id), id);
  assert.equal(ids(index, vectorOf(N + 1999), 1)[0], `v${N + 1999}`);

  const store = new IndexStore(await tempDir("store"));
  await store.open();
  const generation = await store.save(index, ORIGIN);
  const dir = path.join(store.root, `gen-${String(generation).padStart(8, "0")}`);
  assert.deepEqual((await readdir(dir)).filter((f) => f.endsWith(".hnsw")).sort(), ["graph-1.hnsw", "graph.hnsw"]);
  const saved = JSON.parse(await readFile(path.join(dir, "meta.json"), "utf8")) as { formatVersion: number; segmentSha256: string[] };
  assert.equal(saved.formatVersion, 2);
  assert.equal(saved.segmentSha256.length, 1);
  const loaded = (await store.loadGeneration(generation)).index;
  assert.equal(loaded.segmentCount, 2);
  assert.equal(loaded.size, index.size);
  for (const q of queries) assert.deepEqual(loaded.search(q, 10, 50), index.search(q, 10, 50));
  // Deletes and adds after the reload reach the right segments too.
  assert.ok(loaded.remove("v5"));
  assert.ok(loaded.remove("v1101"));
  loaded.add(meta(9_999_999), vectorOf(9_999_999));
  assert.ok(!ids(loaded, vectorOf(5)).includes("v5"));
  assert.ok(!ids(loaded, vectorOf(1101)).includes("v1101"));
  assert.equal(ids(loaded, vectorOf(9_999_999), 1)[0], "v9999999");

  // A damaged second segment makes the generation unusable, as a damaged first one does.
  await appendFile(path.join(dir, "graph-1.hnsw"), "garbage");
  await assert.rejects(store.loadGeneration(generation), /graph-1\.hnsw checksum mismatch/);
});

test("the embedded backend imports in segments, logs later writes and replays them onto the segments", async () => {
  const dataDir = await tempDir("bulk-backend");
  const options = { params, snapshotMinRecords: 1e9, snapshotFraction: 1, buildThreads: 2, segmentMin: 500 };
  const backend = new EmbeddedBackend(dataDir, options);
  await backend.open();
  const builder = await backend.createBuilder(ORIGIN, DIM);
  const done: number[] = [];
  // The bundle's rows as a parsed vector bundle holds them: one shared matrix.
  const shared = sharedRows(entries, DIM);
  await builder.addBulk!([...entries.map((e, i) => ({ meta: e.meta, vector: shared.subarray(i * DIM, (i + 1) * DIM) })), entries[0]!], (d) => done.push(d));
  assert.equal(done[done.length - 1], N, "a duplicate id is skipped");
  let view = await backend.commit(builder, undefined, async () => []);
  assert.equal(await view.size(), N);
  assert.ok(!(await readdir(path.join(dataDir, "index"))).some((f) => f.endsWith(".tmp")), "scratch removed");
  await backend.add(view, { meta: meta(N), vector: vectorOf(N) });
  assert.ok(await backend.remove(view, "v2"));
  assert.ok(await backend.remove(view, "v1000"));
  await backend.close();

  const reopened = new EmbeddedBackend(dataDir, options);
  view = (await reopened.open())!;
  assert.equal(await view.size(), N - 1);
  assert.equal((await view.search(vectorOf(N), 1, 64))[0]?.meta.id, `v${N}`);
  for (const id of ["v2", "v1000"]) assert.equal(await view.get(id), undefined);
  const hits = await view.search(vectorOf(1000), 10, 200);
  assert.equal(hits.length, 10);
  assert.ok(!hits.some((h) => h.meta.id === "v1000"));
  await reopened.close();
});

test("config: HNSW_BUILD_THREADS, HNSW_SEGMENT_MIN and HNSW_EF_CONSTRUCTION have measured defaults and bounds", () => {
  const config = loadConfig({});
  assert.equal(config.hnswEfConstruction, 96);
  assert.equal(config.hnswBuildThreads, 2);
  assert.equal(config.hnswSegmentMin, 250_000);
  const set = loadConfig({ HNSW_BUILD_THREADS: "0", HNSW_SEGMENT_MIN: "1000" });
  assert.equal(set.hnswBuildThreads, 0);
  assert.equal(set.hnswSegmentMin, 1000);
  assert.throws(() => loadConfig({ HNSW_BUILD_THREADS: "-1" }), /HNSW_BUILD_THREADS/);
  assert.throws(() => loadConfig({ HNSW_SEGMENT_MIN: "0" }), /HNSW_SEGMENT_MIN/);
});
