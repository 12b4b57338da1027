import assert from "node:assert/strict";
import { appendFile, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { BlobStore } from "../index/embedded/blobs.ts";
import { exactTopK, recallAtK } from "../index/shared/exact.ts";
import { IndexStore } from "../index/embedded/persist.ts";
import { VectorIndex } from "../index/embedded/vector-index.ts";
import { clusteredUnit, randomUnit } from "../index/shared/synthetic.ts";

const params = { m: 16, efConstruction: 100, efSearch: 64 };
const origin = { modelId: "m1", modelDir: "/models/a", startModelDir: "/models/a", build: 3 };
const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "countclip-index-"));
  dirs.push(dir);
  return dir;
}
after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

function meta(id: string) {
  return { id, source: "synthetic", sha256: "a".repeat(64), addedAt: "2026-01-01T00:00:00.000Z" };
}

function filled(n: number, dim = 32): VectorIndex {
  const index = new VectorIndex(dim, params, 8);
  for (let i = 0; i < n; i++) index.add(meta(`v${i}`), randomUnit(dim, i));
  return index;
}

test("search finds an item's own vector first and honours deletes", () => {
  const index = filled(500);
  const [first] = index.search(randomUnit(32, 42), 1);
  assert.equal(first?.meta.id, "v42");
  assert.ok(Math.abs(first!.similarity - 1) < 1e-5);
  assert.ok(index.remove("v42"));
  assert.equal(index.has("v42"), false);
  assert.notEqual(index.search(randomUnit(32, 42), 1)[0]?.meta.id, "v42");
  assert.equal(index.size, 499);
  assert.throws(() => index.add(meta("v1"), randomUnit(32, 1)), /duplicate/);
  assert.throws(() => index.add(meta("x"), new Float32Array(3)), /dimension/);
});

test("k larger than the index returns every live item", () => {
  const index = filled(5);
  index.remove("v0");
  assert.equal(index.search(randomUnit(32, 9), 50).length, 4);
  assert.deepEqual(new VectorIndex(32, params).search(randomUnit(32, 1), 10), []);
});

test("HNSW recall@10 against exact search is at least 0.95 (clustered 64-d)", () => {
  const dim = 64;
  const n = 2000;
  const matrix = new Float32Array(n * dim);
  const index = new VectorIndex(dim, { m: 16, efConstruction: 100, efSearch: 64 }, n);
  for (let i = 0; i < n; i++) {
    const v = clusteredUnit(dim, i, 20);
    matrix.set(v, i * dim);
    index.add(meta(String(i)), v);
  }
  let recall = 0;
  const queries = 40;
  for (let q = 0; q < queries; q++) {
    const query = clusteredUnit(dim, 10_000_000 + q, 20);
    const approx = index.search(query, 10).map((h) => Number(h.meta.id));
    recall += recallAtK(approx, exactTopK(matrix, dim, query, 10)) / queries;
  }
  assert.ok(recall >= 0.95, `recall@10 = ${recall}`);
});

test("save then load round-trips ids, tombstones, vectors and origin", async () => {
  const dir = await tempDir();
  const store = new IndexStore(dir);
  await store.open();
  const index = filled(300);
  index.remove("v7");
  const generation = await store.save(index, origin);
  const loaded = await new IndexStore(dir).load();
  assert.ok(loaded);
  assert.equal(loaded.meta.generation, generation);
  assert.equal(loaded.meta.modelId, "m1");
  assert.equal(loaded.meta.build, 3);
  assert.equal(loaded.index.size, 299);
  assert.equal(loaded.index.has("v7"), false);
  assert.equal(loaded.index.search(randomUnit(32, 100), 1)[0]?.meta.id, "v100");
  assert.deepEqual([...loaded.index.vector("v250")!], [...index.vector("v250")!]);
  const expected = randomUnit(32, 250);
  assert.ok(loaded.index.vector("v250")!.every((x, i) => Math.abs(x - expected[i]!) < 1e-6));
  // Labels continue after the highest ever used, so new items never alias tombstones.
  loaded.index.add(meta("new"), randomUnit(32, 9999));
  assert.equal(loaded.index.search(randomUnit(32, 9999), 1)[0]?.meta.id, "new");
});

test("old generations are pruned and temp leftovers removed on open", async () => {
  const dir = await tempDir();
  const store = new IndexStore(dir);
  await store.open();
  const index = filled(20);
  for (let i = 0; i < 4; i++) await store.save(index, origin);
  await writeFile(path.join(store.root, "gen-00000099.123.abcd.tmp"), "partial");
  const reopened = new IndexStore(dir);
  await reopened.open();
  const names = (await readdir(store.root)).sort();
  assert.deepEqual(names, ["CURRENT", "gen-00000003", "gen-00000004"]);
  assert.equal(await reopened.save(index, origin), 5);
});

test("a corrupted current generation falls back to the previous complete one", async () => {
  const dir = await tempDir();
  const store = new IndexStore(dir);
  await store.open();
  const index = filled(50);
  await store.save(index, origin);
  index.add(meta("late"), randomUnit(32, 777));
  const second = await store.save(index, origin);
  await appendFile(path.join(store.root, `gen-${String(second).padStart(8, "0")}`, "graph.hnsw"), "garbage");
  const loaded = await new IndexStore(dir).load();
  assert.equal(loaded?.meta.generation, second - 1);
  assert.equal(loaded?.index.has("late"), false);
  assert.equal(loaded?.index.size, 50);
});

test("a damaged vectors file is detected; an index saved without one reads vectors from the graph", async () => {
  const dir = await tempDir();
  const store = new IndexStore(dir);
  await store.open();
  const index = filled(40);
  const first = await store.save(index, origin);
  const second = await store.save(index, origin);
  const genDir = (g: number) => path.join(store.root, `gen-${String(g).padStart(8, "0")}`);
  await appendFile(path.join(genDir(second), "vectors.f32"), "x");
  assert.equal((await new IndexStore(dir).load())?.meta.generation, first);
  // Legacy layout: no vectorsSha256 in meta.json.
  const metaFile = path.join(genDir(first), "meta.json");
  const meta = JSON.parse(await readFile(metaFile, "utf8"));
  delete meta.vectorsSha256;
  await writeFile(metaFile, JSON.stringify(meta));
  const legacy = await new IndexStore(dir).loadGeneration(first);
  const expected = randomUnit(32, 17);
  assert.ok(legacy.index.vector("v17")!.every((x, i) => Math.abs(x - expected[i]!) < 1e-6));
});

test("an empty data dir loads nothing", async () => {
  const store = new IndexStore(await tempDir());
  await store.open();
  assert.equal(await store.load(), undefined);
});

test("blob store is content addressed and collects unreferenced blobs", async () => {
  const blobs = new BlobStore(await tempDir());
  await blobs.open();
  const a = await blobs.put(Buffer.from("alpha"));
  const b = await blobs.put(Buffer.from("beta"));
  assert.equal(await blobs.put(Buffer.from("alpha")), a);
  assert.equal((await blobs.get(a)).toString(), "alpha");
  assert.equal(await blobs.collect(new Set([a])), 1);
  await assert.rejects(blobs.get(b));
  await assert.rejects(blobs.get("../../etc/passwd"), /invalid blob key/);
});
