/**
 * kill -9 of a process writing to the embedded backend, at random moments, 24 rounds on one
 * data dir: after every restart each acknowledged add is there with exactly its vector, each
 * acknowledged delete is gone, and nothing else is served (a write cut off mid-log is either
 * wholly there or wholly absent, never torn). Kills land during group commits, log rotations
 * and background snapshots (the child's thresholds are small).
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import path from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { EmbeddedBackend } from "../index/embedded/backend.ts";
import { randomUnit, rng } from "../index/shared/synthetic.ts";
import { removeTempDirs, tempDir } from "./helpers/service-app.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const CHILD = path.join(ROOT, "test/helpers/wal-crash-child.ts");
const DIM = 16;
const ROUNDS = 24;
const children: ChildProcess[] = [];
after(async () => {
  children.forEach((c) => c.kill("SIGKILL"));
  await removeTempDirs();
});

/** Run the child until it has acknowledged at least `minAcks` writes, then kill -9 after `delayMs`. */
function crashRun(dataDir: string, first: number, minAcks: number, delayMs: number): Promise<{ added: string[]; deleted: string[] }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", CHILD, dataDir, String(DIM), String(first)], { stdio: ["ignore", "pipe", "pipe"] });
    children.push(child);
    const added: string[] = [];
    const deleted: string[] = [];
    let buffer = "";
    let log = "";
    let armed = false;
    child.stdout!.on("data", (d: Buffer) => {
      buffer += d.toString();
      const lines = buffer.split("\n");
      buffer = lines.pop()!;
      for (const line of lines) {
        const [kind, id] = line.split(" ");
        if (kind === "add") added.push(id!);
        if (kind === "del") deleted.push(id!);
      }
      if (!armed && added.length >= minAcks) {
        armed = true;
        setTimeout(() => child.kill("SIGKILL"), delayMs);
      }
    });
    child.stderr!.on("data", (d: Buffer) => (log += d.toString()));
    child.on("exit", (_code, signal) => {
      if (signal === "SIGKILL") resolve({ added, deleted });
      else reject(new Error(`child exited on its own:\n${log}`));
    });
  });
}

test(`kill -9 while adding, ${ROUNDS} rounds: every acknowledged write survives, nothing torn is served`, { timeout: 300_000 }, async (t) => {
  const dataDir = await tempDir("wal-crash");
  const random = rng(18);
  const live = new Set<string>();
  const gone = new Set<string>();
  let first = 0;
  let snapshots = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const { added, deleted } = await crashRun(dataDir, first, 20 + Math.floor(random() * 150), Math.floor(random() * 120));
    added.forEach((id) => live.add(id));
    deleted.forEach((id) => {
      live.delete(id);
      gone.add(id);
    });
    first += 100_000;

    const backend = new EmbeddedBackend(dataDir, { params: { m: 8, efConstruction: 32, efSearch: 32 }, snapshotMinRecords: 1e9, snapshotFraction: 1 });
    const view = await backend.open();
    assert.ok(view, `round ${round}: nothing loads`);
    const items = await view.items();
    const present = new Set(items.map((m) => m.id));
    for (const id of [...live]) {
      // The child deletes every id with n % 7 == 3 right after its add: a delete cut off by the
      // kill may or may not have landed.
      if (!present.has(id) && Number(id.slice(1)) % 7 === 3) live.delete(id);
      else assert.ok(present.has(id), `round ${round}: acknowledged add ${id} lost`);
    }
    for (const id of gone) assert.ok(!present.has(id), `round ${round}: acknowledged delete ${id} undone`);
    // Unacknowledged writes may or may not be there, but each one is whole: its exact vector.
    for (const meta of items) {
      const n = Number(meta.id.slice(1));
      const [hit] = await view.search(randomUnit(DIM, n), 1, 64);
      assert.ok(hit && hit.similarity > 0.999, `round ${round}: ${meta.id} is not served with its own vector`);
      if (!live.has(meta.id)) live.add(meta.id);
    }
    snapshots = backend.status().generation;
    await backend.close();
  }
  t.diagnostic(`${live.size} images after ${ROUNDS} crashes; last snapshot generation ${snapshots}`);
  assert.ok(snapshots > 2, "background snapshots were taken during the rounds");
});
