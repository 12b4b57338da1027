/**
 * HNSW index benchmark on synthetic vectors: build rate, search latency and recall@10 against
 * exact search, for a sweep of ef values.
 *
 *   npm run bench:index -- --n 100000 --dim 512 [--queries 200] [--ef 64,128,256]
 *     [--m 16] [--ef-construction 200] [--distribution clustered|uniform] [--clusters 1000]
 *     [--save DATA_DIR --save-model BUNDLE_DIR]   also persist the index as BUNDLE_DIR's index in
 *                                                 DATA_DIR, for scripts/benchmarks/bench-service.ts
 *
 * "clustered" vectors (n/clusters per concept, the default) resemble image embeddings;
 * "uniform" random directions are the adversarial worst case for any ANN index. Both backends
 * at 1M, import included, are measured by scripts/benchmarks/bench-scale.ts.
 */
import { parseArgs } from "node:util";
import { exactTopK, recallAtK } from "../../index/shared/exact.ts";
import { loadEmbedder } from "../../server/model/embedder.ts";
import { buildSynthetic, type Distribution, fmt, percentile, QUERY_SEED, saveAsModelIndex, syntheticVector } from "./bench-lib.ts";

const { values } = parseArgs({
  options: {
    n: { type: "string", default: "100000" },
    dim: { type: "string", default: "512" },
    queries: { type: "string", default: "200" },
    ef: { type: "string", default: "64,128,256" },
    m: { type: "string", default: "16" },
    "ef-construction": { type: "string", default: "200" },
    distribution: { type: "string", default: "clustered" },
    clusters: { type: "string", default: "1000" },
    json: { type: "string" },
    save: { type: "string" },
    "save-model": { type: "string" },
  },
});

const spec = {
  n: Number(values.n),
  dim: Number(values.dim),
  params: { m: Number(values.m), efConstruction: Number(values["ef-construction"]), efSearch: 64 },
  distribution: values.distribution as Distribution,
  clusters: Number(values.clusters),
};
const queries = Number(values.queries);
if (values.save && !values["save-model"]) throw new Error("--save needs --save-model");
console.error(`building ${spec.n} x ${spec.dim} (${spec.distribution}, M=${spec.params.m}, efConstruction=${spec.params.efConstruction})`);
const { index, matrix, seconds } = buildSynthetic(spec, true);
console.error(`built in ${seconds.toFixed(1)} s; exact top-10 for ${queries} queries...`);
const qs = Array.from({ length: queries }, (_, i) => syntheticVector(spec, QUERY_SEED + i));
const exact = qs.map((q) => exactTopK(matrix!, spec.dim, q, 10));

const rows = values.ef.split(",").map(Number).map((ef) => {
  const latencies: number[] = [];
  let recall = 0;
  qs.forEach((q, i) => {
    const t = performance.now();
    const hits = index.search(q, 10, ef);
    latencies.push(performance.now() - t);
    recall += recallAtK(hits.map((h) => Number(h.meta.id)), exact[i]!) / queries;
  });
  latencies.sort((a, b) => a - b);
  return { ef, recallAt10: Number(recall.toFixed(4)), p50ms: Number(fmt(percentile(latencies, 50))), p99ms: Number(fmt(percentile(latencies, 99))) };
});

// Resident memory with the graph, its vector copy and the exact-search matrix all held.
const rssGiB = Number((process.memoryUsage().rss / 2 ** 30).toFixed(2));
const result = { ...spec, queries, buildSeconds: Number(seconds.toFixed(1)), insertsPerSecond: Math.round(spec.n / seconds), rssGiB, rows };
console.log(JSON.stringify(result));
console.error(`\n| n | dim | ef | recall@10 | p50 ms | p99 ms |\n|---|---|---|---|---|---|`);
for (const r of rows) console.error(`| ${spec.n} | ${spec.dim} | ${r.ef} | ${r.recallAt10} | ${r.p50ms} | ${r.p99ms} |`);
if (values.json) await import("node:fs/promises").then((fs) => fs.writeFile(values.json!, JSON.stringify(result, null, 2)));

if (values.save) {
  const embedder = await loadEmbedder(values["save-model"]!);
  if (embedder.dim !== spec.dim) throw new Error(`model has dimension ${embedder.dim}, index ${spec.dim}`);
  const t = performance.now();
  const generation = await saveAsModelIndex(index, values.save, embedder.modelId, embedder.bundleDir);
  console.error(`saved generation ${generation} for ${embedder.modelId} in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  await embedder.close();
}
