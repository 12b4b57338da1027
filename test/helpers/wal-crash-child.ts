/**
 * Child process for the embedded backend's kill -9 test: opens the backend on <dataDir>, then
 * adds synthetic images (8 in flight at a time) and deletes some, forever, printing
 * "add <id>" / "del <id>" only once the backend acknowledged the write. Small snapshot
 * thresholds make background snapshots (log rotation, overlay, fold) happen every few
 * hundred writes, so kills land inside them too.
 *
 *   tsx test/helpers/wal-crash-child.ts <dataDir> <dim> <firstId>
 */
import { EmbeddedBackend } from "../../index/embedded/backend.ts";
import { randomUnit } from "../../index/shared/synthetic.ts";

const [dataDir, dimArg, firstArg] = process.argv.slice(2);
const dim = Number(dimArg);
const backend = new EmbeddedBackend(dataDir!, { params: { m: 8, efConstruction: 32, efSearch: 32 }, snapshotMinRecords: 150, snapshotFraction: 0.3 });
let view = await backend.open();
if (!view) {
  const origin = { modelId: "synthetic", modelDir: "/nonexistent", startModelDir: "/nonexistent", build: 1 };
  const builder = await backend.createBuilder(origin, dim);
  view = await backend.commit(builder, undefined, async () => []);
}
const active = view;
process.stdout.write("ready\n");
let next = Number(firstArg);
const worker = async () => {
  for (;;) {
    const n = next++;
    const id = `v${n}`;
    await backend.add(active, { meta: { id, source: "synthetic", sha256: "0".repeat(64), addedAt: "2026-01-01T00:00:00.000Z" }, vector: randomUnit(dim, n) });
    process.stdout.write(`add ${id}\n`);
    if (n % 7 === 3) {
      await backend.remove(active, id);
      process.stdout.write(`del ${id}\n`);
    }
  }
};
await Promise.all(Array.from({ length: 8 }, worker));
