/**
 * Benchmark: findCount throughput on CountBench captions, one core (not a test).
 *
 *   node --import tsx scripts/benchmarks/bench-counts.ts [--countbench ../shared/countbench/CountBench.json]
 *
 * Every CountBench caption holds a count, so no caption takes a fast path. Prints the best
 * of several timed passes over all captions, in captions per second of process CPU time
 * (the same measure as scripts/benchmarks/bench_counts.py), and `reference_ms`: the best CPU time of a
 * fixed 10^6-step integer loop (about 1 ms on an idle modern core), so figures from a loaded
 * or shared machine can be judged.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { findCount } from "../../server/counts/counts.ts";

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

function cpuSeconds(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
}

function bestRate(captions: readonly string[], passes: number, repeats: number): number {
  let best = 0;
  let sink = 0; // keeps the calls observable
  for (let r = 0; r < repeats; r++) {
    const t0 = cpuSeconds();
    for (let p = 0; p < passes; p++) for (const text of captions) sink += findCount(text)?.count ?? 0;
    best = Math.max(best, (passes * captions.length) / (cpuSeconds() - t0));
  }
  if (sink < 0) throw new Error("unreachable");
  return best;
}

const { values } = parseArgs({
  options: {
    countbench: { type: "string", default: path.join(REPO, "..", "shared", "countbench", "CountBench.json") },
    passes: { type: "string", default: "50" },
    repeats: { type: "string", default: "5" },
  },
});
const captions = (JSON.parse(readFileSync(values.countbench!, "utf8")) as Array<{ text: string }>).map((e) => e.text);
/** Best CPU time of a fixed 10^6-step loop, in milliseconds: a yardstick for the machine's speed. */
function referenceMillis(): number {
  let best = Infinity;
  let sink = 0;
  for (let r = 0; r < 5; r++) {
    const t0 = cpuSeconds();
    for (let k = 0; k < 1000; k++) for (let i = 0; i < 1000; i++) sink += i ^ k;
    best = Math.min(best, (cpuSeconds() - t0) * 1e3);
  }
  if (sink === -1) throw new Error("unreachable");
  return best;
}

bestRate(captions, 10, 1); // warm up the JIT
const reference = referenceMillis();
const rate = bestRate(captions, Number(values.passes), Number(values.repeats));
const found = captions.filter((t) => findCount(t) !== null).length;
console.log(
  JSON.stringify({ implementation: "typescript", captions: captions.length, with_count_found: found, captions_per_s: Math.round(rate), reference_ms: Number(reference.toFixed(3)), node: process.version }),
);
