/**
 * Child process for the kill -9 test: grows an index and saves it in a loop, printing
 * "saved <generation> <size>" after every completed save, until it is killed.
 *
 *   tsx test/helpers/index-crash-child.ts <dataDir> <dim> <initial> <step>
 */
import { IndexStore } from "../../index/embedded/persist.ts";
import { VectorIndex } from "../../index/embedded/vector-index.ts";
import { randomUnit } from "../../index/shared/synthetic.ts";

const [dataDir, dimArg, initialArg, stepArg] = process.argv.slice(2);
const dim = Number(dimArg);
const params = { m: 8, efConstruction: 32, efSearch: 32 };
const store = new IndexStore(dataDir!);
await store.open();
const loaded = await store.load();
const index = loaded?.index ?? new VectorIndex(dim, params);
let next = index.size;
const add = (n: number) => {
  for (let i = 0; i < n; i++, next++) {
    index.add({ id: `v${next}`, source: "synthetic", sha256: "0".repeat(64), addedAt: "2026-01-01T00:00:00.000Z" }, randomUnit(dim, next));
  }
};
add(Number(initialArg));
for (;;) {
  const generation = await store.save(index, { modelId: "synthetic", modelDir: "/nonexistent", startModelDir: "/nonexistent", build: 1 });
  process.stdout.write(`saved ${generation} ${index.size}\n`);
  add(Number(stepArg));
  // Deletions too, so tombstones are part of what must survive.
  index.remove(`v${next - 1}`);
}
