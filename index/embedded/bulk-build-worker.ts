/**
 * Worker-thread side of bulk-build.ts: builds one graph segment from rows of a shared matrix,
 * writes each row's unit vector into the shared output, and saves the graph to a file (an
 * hnswlib index cannot cross threads; its file can).
 */
import { parentPort, workerData } from "node:worker_threads";
import hnswlib from "hnswlib-node";
import { type SegmentJob, type SegmentReply, threadCpuSeconds } from "./bulk-build.ts";
import { normalize } from "./vector-index.ts";

const port = parentPort!;
const job = workerData as SegmentJob;
const reply = (message: SegmentReply) => port.postMessage(message);
/** Progress is posted every this many rows: often enough for a status line, cheap to send. */
const PROGRESS_EVERY = 1024;

try {
  const started = performance.now();
  const cpu = threadCpuSeconds();
  const { vectors, out, from, to, capacity, dim, params, seed, file } = job;
  const graph = new hnswlib.HierarchicalNSW("cosine", dim);
  graph.initIndex({ maxElements: capacity, m: params.m, efConstruction: params.efConstruction, randomSeed: seed });
  let pending = 0;
  for (let label = from; label < to; label++) {
    const row = vectors.subarray(label * dim, (label + 1) * dim);
    // The same calls, in the same order, as VectorIndex.add: one segment equals an inline build.
    graph.addPoint(Array.from(row), label);
    out.set(normalize(Float32Array.from(row)), label * dim);
    if (++pending === PROGRESS_EVERY) {
      reply({ kind: "progress", rows: pending });
      pending = 0;
    }
  }
  if (pending > 0) reply({ kind: "progress", rows: pending });
  await graph.writeIndex(file);
  const used = threadCpuSeconds();
  reply({ kind: "done", seconds: (performance.now() - started) / 1000, cpuSeconds: used === undefined || cpu === undefined ? undefined : used - cpu });
} catch (err) {
  reply({ kind: "failed", message: err instanceof Error ? err.message : String(err) });
}
