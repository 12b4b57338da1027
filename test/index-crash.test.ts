/**
 * kill -9 during index saves: a child process grows and saves an index in a loop; it is
 * killed at arbitrary moments (mostly mid-save, where it spends its time). After each kill the
 * store must load the last generation the child reported complete (or a newer one), with its
 * checksum intact and its contents exactly as the child built them.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { IndexStore } from "../index/embedded/persist.ts";
import { randomUnit } from "../index/shared/synthetic.ts";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const CHILD = path.join(HERE, "helpers", "index-crash-child.ts");
const DIM = 64;
let dataDir = "";
after(() => rm(dataDir, { recursive: true, force: true }));

/** Run the child until it has reported `saves` more completed saves plus `extraMs`, then SIGKILL. */
function runAndKill(saves: number, extraMs: number): Promise<{ lastGeneration: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", CHILD, dataDir, String(DIM), "4000", "200"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let lastGeneration = 0;
    let seen = 0;
    let stderr = "";
    let buffer = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.stdout.on("data", (d: Buffer) => {
      buffer += d.toString();
      const lines = buffer.split("\n");
      buffer = lines.pop()!;
      for (const line of lines) {
        const m = /^saved (\d+) (\d+)$/.exec(line);
        if (!m) continue;
        lastGeneration = Number(m[1]);
        if (++seen === saves) setTimeout(() => child.kill("SIGKILL"), extraMs);
      }
    });
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      if (signal === "SIGKILL") resolve({ lastGeneration });
      else reject(new Error(`child exited ${code}: ${stderr}`));
    });
  });
}

test("kill -9 during saves never loses the last complete index or corrupts it", { timeout: 120_000 }, async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), "countclip-crash-"));
  let previousSize = 0;
  for (const [round, extraMs] of [0, 9, 31].entries()) {
    const { lastGeneration } = await runAndKill(2, extraMs);
    const store = new IndexStore(dataDir);
    await store.open(); // removes the interrupted save's temp directory
    const loaded = await store.load();
    assert.ok(loaded, `round ${round}: nothing loads`);
    assert.ok(loaded.meta.generation >= lastGeneration, `round ${round}: loaded ${loaded.meta.generation} < reported ${lastGeneration}`);
    // Contents are exactly what the child built: every stored vector is the seeded one.
    const { index } = loaded;
    assert.ok(index.size > previousSize, `round ${round}: index did not grow across restarts`);
    previousSize = index.size;
    for (const id of ["v0", `v${Math.floor(index.size / 2)}`]) {
      const stored = index.vector(id);
      assert.ok(stored, `round ${round}: ${id} missing`);
      const expected = randomUnit(DIM, Number(id.slice(1)));
      const cos = stored.reduce((s, x, i) => s + x * expected[i]!, 0);
      assert.ok(cos > 0.9999, `round ${round}: ${id} vector differs (cos ${cos})`);
    }
    assert.equal(index.search(randomUnit(DIM, 5), 1)[0]?.meta.id, "v5");
  }
});
