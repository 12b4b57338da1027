/**
 * The embedded backend's write-ahead log and snapshots, in process: group commit, a torn or
 * corrupt tail dropped (and cut off before the next append), replay on open, background
 * snapshots with writes during them served from the overlay, and refusals (stale view,
 * duplicate id, wrong dimension).
 */
import assert from "node:assert/strict";
import { appendFile, readdir, readFile, truncate, writeFile } from "node:fs/promises";
import path from "node:path";
import { after, test } from "node:test";
import { DuplicateIdError, IndexMismatchError, StaleIndexError } from "../index/backend.ts";
import { EmbeddedBackend, type EmbeddedView } from "../index/embedded/backend.ts";
import { randomUnit } from "../index/shared/synthetic.ts";
import { readWal, WAL_FORMAT, WalWriter } from "../index/embedded/wal.ts";
import { removeTempDirs, tempDir } from "./helpers/service-app.ts";

after(removeTempDirs);

const DIM = 8;
const ORIGIN = { modelId: "m", modelDir: "/m", startModelDir: "/m", build: 1 };
const params = { m: 8, efConstruction: 32, efSearch: 32 };
const entry = (n: number) => ({ meta: { id: `v${n}`, source: "t", sha256: "0".repeat(64), addedAt: "2026-01-01T00:00:00.000Z" }, vector: randomUnit(DIM, n) });

async function fresh(dir: string, snapshotMinRecords = 1e9) {
  const backend = new EmbeddedBackend(dir, { params, snapshotMinRecords, snapshotFraction: 0.5 });
  let view = await backend.open();
  view ??= await backend.commit(await backend.createBuilder(ORIGIN, DIM), undefined, async () => []);
  return { backend, view };
}

test("a log's records read back; a torn tail and a corrupt frame end it, and resume cuts them off", async () => {
  const file = path.join(await tempDir("wal"), "wal-00000001.log");
  const writer = await WalWriter.create(file, { format: WAL_FORMAT, version: 1, generation: 1, modelId: "m", dim: DIM });
  // Appended together: one group commit.
  await Promise.all([0, 1, 2].map((n) => writer.append({ type: "add", ...entry(n) })));
  await writer.append({ type: "delete", id: "v1" });
  await writer.close();
  const whole = readWal(file);
  assert.equal(whole.records.length, 4);
  assert.equal(whole.tornBytes, 0);
  const first = whole.records[0]!;
  assert.ok(first.type === "add" && first.meta.id === "v0" && first.vector.every((x, i) => x === entry(0).vector[i]));

  // A half-written frame at the end is not a record.
  await appendFile(file, Buffer.from([200, 0, 0, 0, 1, 2, 3, 4, 1, 9]));
  const torn = readWal(file);
  assert.equal(torn.records.length, 4);
  assert.equal(torn.tornBytes, 10);
  const resumed = await WalWriter.resume(file, torn);
  await resumed.append({ type: "add", ...entry(3) });
  await resumed.close();
  assert.deepEqual(readWal(file).records.map((r) => (r.type === "add" ? r.meta.id : `-${r.id}`)), ["v0", "v1", "v2", "-v1", "v3"]);

  // A flipped byte inside a frame fails its CRC: the log ends before it.
  const bytes = await readFile(file);
  bytes[bytes.length - 5] = bytes[bytes.length - 5]! ^ 0xff;
  await writeFile(file, bytes);
  assert.equal(readWal(file).records.length, 4);
  await truncate(file, 20);
  assert.equal(readWal(file).records.length, 0);
});

test("writes are replayed on open; refusals: duplicate id, wrong dimension, stale view", async () => {
  const dir = await tempDir("wal-open");
  const { backend, view } = await fresh(dir);
  for (let n = 0; n < 30; n++) await backend.add(view, entry(n));
  await backend.remove(view, "v7");
  await assert.rejects(backend.add(view, entry(3)), DuplicateIdError);
  await assert.rejects(backend.add(view, { meta: entry(99).meta, vector: new Float32Array(DIM + 1) }), IndexMismatchError);
  await backend.close();

  const again = await fresh(dir);
  assert.equal(await again.view.size(), 29);
  assert.equal(await again.view.get("v7"), undefined);
  assert.equal((await again.view.search(randomUnit(DIM, 12), 1, 32))[0]?.meta.id, "v12");
  const next = await again.backend.commit(await again.backend.createBuilder({ ...ORIGIN, build: 2 }, DIM), again.view, async (missing) => missing.map((m) => ({ meta: m, vector: randomUnit(DIM, Number(m.id.slice(1))) })));
  assert.equal(await next.size(), 29);
  await assert.rejects(again.backend.add(again.view, entry(100)), StaleIndexError);
  await again.backend.add(next, entry(100));
  await again.backend.close();
});

test("background snapshots: writes during one are served at once, and survive it", async () => {
  const dir = await tempDir("wal-snap");
  const { backend, view: opened } = await fresh(dir, 20);
  const view = opened as EmbeddedView;
  for (let n = 0; n < 19; n++) await backend.add(view, entry(n));
  // The 20th write starts a snapshot; these land while it writes the graph.
  await backend.add(view, entry(19));
  const during = Promise.all([20, 21, 22].map((n) => backend.add(view, entry(n))));
  await during;
  await backend.remove(view, "v2");
  assert.ok(view.deferred > 0, "the writes landed while the snapshot wrote the graph");
  assert.equal((await view.search(randomUnit(DIM, 21), 1, 32))[0]?.meta.id, "v21");
  assert.equal(await view.get("v2"), undefined);
  await backend.idle();
  assert.ok(backend.status().generation >= 2, "a snapshot was taken");
  assert.equal((await view.search(randomUnit(DIM, 22), 1, 32))[0]?.meta.id, "v22");
  await backend.close();
  const logs = (await readdir(path.join(dir, "index"))).filter((f) => f.startsWith("wal-"));
  assert.ok(logs.length <= 2, `old logs pruned: ${logs.join(", ")}`);
  const again = await fresh(dir);
  assert.equal(await again.view.size(), 22);
  assert.equal(await again.view.get("v2"), undefined);
  await again.backend.close();
});
