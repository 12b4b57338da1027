/**
 * HTTP benchmark of the real server (server/main.ts in a child process, loopback only):
 * search p50/p99 and requests/s at several concurrencies, plain vs count-aware, rerank latency
 * for 8 images of 512x512, and (--recall-vs fp32) recall@10 of the serving precision's search
 * against servers on the same index with TEXT_PRECISION=fp32: at the server's ef, near-exact
 * (quantisation alone), and the ANN's own recall for the same queries (recallAgainst).
 *
 *   npm run bench:service -- --model BUNDLE_DIR --data DATA_DIR
 *       [--connections 1,10,50] [--duration 10] [--rerank-runs 10] [--recall-vs fp32]
 *       [--recall-queries 200] [--json out.json]
 *
 * The server's settings come from the environment (THREADS, TEXT_PRECISION, TEXT_BATCH_MAX,
 * BATCH_WINDOW_MS, MAX_QUEUE_WAIT_MS ...; see server/README.md) and are echoed in the result.
 * Refused requests (503 overloaded, back-pressure) are counted apart from errors, and the
 * latency percentiles and served req/s are those of the answered (2xx) requests only.
 *
 * DATA_DIR normally holds a synthetic index saved for BUNDLE_DIR by scripts/benchmarks/bench-index.ts
 * (--save/--save-model), so the server loads it instead of indexing a gallery.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import autocannon from "autocannon";
import sharp from "sharp";
import { fmt, percentile } from "./bench-lib.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

const { values } = parseArgs({
  options: {
    model: { type: "string" },
    data: { type: "string" },
    connections: { type: "string", default: "1,10,50" },
    duration: { type: "string", default: "10" },
    "rerank-runs": { type: "string", default: "10" },
    "recall-vs": { type: "string" },
    "recall-queries": { type: "string", default: "200" },
    json: { type: "string" },
  },
});
if (!values.model || !values.data) throw new Error("usage: bench-service --model BUNDLE_DIR --data DATA_DIR");

/**
 * Queries rotate so the count-prompt cache sees several nouns, as in real traffic, and each
 * request gets a unique suffix so no layer can answer it from a cache of query embeddings.
 */
const COUNT_QUERIES = ["three cats", "a photo of five balloons", "two dogs on a sofa", "seven red apples", "four cars", "six birds on a wire"];
const PLAIN_QUERIES = ["cats", "a photo of balloons", "dogs on a sofa", "red apples", "cars", "birds on a wire"];

const SCENARIOS: Record<string, Array<Record<string, unknown>>> = {
  "plain, no count in query": PLAIN_QUERIES.map((query) => ({ query, k: 10, countAware: false })),
  "plain, count in query (posterior for k hits)": COUNT_QUERIES.map((query) => ({ query, k: 10, countAware: false })),
  "count-aware (rerank 50 candidates)": COUNT_QUERIES.map((query) => ({ query, k: 10, countAware: true })),
};

let counter = 0;
/** A fresh letters-only word per request ("baa", "bab", ...): never parsed as a count. */
function uniqueWord(): string {
  let n = counter++ + 26 * 26;
  let word = "";
  while (n > 0) {
    word = String.fromCharCode(97 + (n % 26)) + word;
    n = Math.floor(n / 26);
  }
  return word;
}

/** The environment that tunes the server, echoed in the result so a figure names its settings. */
const TUNING = ["THREADS", "ORT_SPINNING", "ORT_WORKER", "TEXT_PRECISION", "VISION_PRECISION", "TEXT_BATCH_MAX", "BATCH_WINDOW_MS", "MAX_QUEUE_WAIT_MS", "HNSW_EF_SEARCH", "UV_THREADPOOL_SIZE"];

function startServer(overrides: Record<string, string> = {}): Promise<{ child: ChildProcess; url: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", path.join(ROOT, "server/main.ts")], {
      env: {
        ...process.env,
        ...overrides,
        PORT: "0",
        HOST: "127.0.0.1",
        MODEL_DIR: path.resolve(values.model!),
        DATA_DIR: path.resolve(values.data!),
        GALLERY_DIR: path.join(path.resolve(values.data!), "no-gallery"),
      },
      stdio: ["ignore", "pipe", "inherit"],
    });
    let log = "";
    child.stdout!.on("data", (d: Buffer) => {
      log += d.toString();
      const m = /listening on (http:\/\/[\d.]+:\d+)/.exec(log);
      if (m) resolve({ child, url: m[1]! });
    });
    child.on("exit", (code) => reject(new Error(`server exited ${code}: ${log}`)));
  });
}

async function waitReady(url: string): Promise<Record<string, unknown>> {
  for (;;) {
    const res = await fetch(`${url}/readyz`).catch(() => undefined);
    if (res?.status === 200) return (await fetch(`${url}/v1/index`)).json() as Promise<Record<string, unknown>>;
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Server-side phase times (ms) parsed from Server-Timing headers. */
type PhaseSamples = Record<string, number[]>;

function recordTiming(samples: PhaseSamples, header: unknown): void {
  const value = Array.isArray(header) ? header.join(",") : String(header ?? "");
  for (const m of value.matchAll(/(\w+);dur=([\d.]+)/g)) (samples[m[1]!] ??= []).push(Number(m[2]));
}

function summarise(samples: PhaseSamples): Record<string, { p50ms: number; meanMs: number }> {
  return Object.fromEntries(Object.entries(samples).map(([phase, xs]) => {
    const sorted = [...xs].sort((a, b) => a - b);
    const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
    return [phase, { p50ms: Number(fmt(percentile(sorted, 50))), meanMs: Number(fmt(mean)) }];
  }));
}

/** Per-connection state autocannon hands to setupRequest/onResponse (one request in flight each). */
interface Ctx { sentAt?: number }

/**
 * CPU seconds the server process (all its threads) has used, from /proc (Linux; undefined
 * elsewhere). CPU per request does not depend on what else the machine runs, so on a shared
 * machine it says what wall-clock figures cannot: the capacity of two idle cores.
 */
function serverCpuSeconds(pid: number | undefined): number | undefined {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /, "").split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in USER_HZ (100 on Linux)
  } catch {
    return undefined;
  }
}

let serverPid: number | undefined;

async function load(url: string, bodies: Array<Record<string, unknown>>, connections: number, duration: number) {
  const samples: PhaseSamples = {};
  const cpuBefore = serverCpuSeconds(serverPid);
  const clientBefore = process.cpuUsage();
  const served: number[] = [];
  let refused = 0;
  let failed = 0;
  const result = await autocannon({
    url: `${url}/v1/search`,
    connections,
    duration,
    requests: bodies.map((b) => ({
      method: "POST",
      headers: { "content-type": "application/json" },
      setupRequest: (req: autocannon.Request, context: Ctx) => {
        context.sentAt = performance.now();
        return { ...req, body: JSON.stringify({ ...b, query: `${String(b["query"])}, ref ${uniqueWord()}` }) };
      },
      onResponse: (status: number, _body: string, context: Ctx, headers?: autocannon.Request["headers"]) => {
        if (status === 503) refused++;
        else if (status !== 200) failed++;
        else {
          served.push(performance.now() - (context.sentAt ?? performance.now()));
          recordTiming(samples, headers?.["Server-Timing"] ?? headers?.["server-timing"]);
        }
      },
    })),
  });
  served.sort((a, b) => a - b);
  const cpuAfter = serverCpuSeconds(serverPid);
  const client = process.cpuUsage(clientBefore);
  const answered = Math.max(1, served.length + refused);
  return {
    connections,
    // Answered requests only: refusals are fast by design and must not flatter either figure.
    requestsPerSecond: Number((served.length / duration).toFixed(1)),
    p50ms: Number(fmt(percentile(served, 50))),
    p99ms: Number(fmt(percentile(served, 99))),
    refused,
    refusedPerSecond: Number((refused / duration).toFixed(1)),
    errors: result.errors + result.timeouts + failed,
    served: served.length,
    serverTiming: summarise(samples),
    // CPU per answered or refused request: server (all threads) and this process (autocannon).
    serverCpuMsPerRequest: cpuBefore === undefined || cpuAfter === undefined ? null : Number(((cpuAfter - cpuBefore) * 1000 / answered).toFixed(2)),
    clientCpuMsPerRequest: Number(((client.user + client.system) / 1000 / answered).toFixed(2)),
  };
}

/** Hit ids of plain top-10 searches for a fixed query list (same texts on every server). */
async function topTen(url: string, queries: string[]): Promise<string[][]> {
  const out: string[][] = [];
  for (const query of queries) {
    const res = await fetch(`${url}/v1/search`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query, k: 10, countAware: false }) });
    if (res.status !== 200) throw new Error(`recall query: ${res.status} ${await res.text()}`);
    out.push(((await res.json()) as { hits: Array<{ id: string }> }).hits.map((h) => h.id));
  }
  return out;
}

function recallQueries(n: number): string[] {
  const base = [...PLAIN_QUERIES, ...COUNT_QUERIES];
  return Array.from({ length: n }, (_, i) => `${base[i % base.length]!} number ${i}`);
}

function meanRecall(got: string[][], want: string[][]): number {
  // An empty reference (an empty index) is matched by an empty answer: recall 1, not 0.
  const per = got.map((hits, i) => (want[i]!.length === 0 ? Number(hits.length === 0) : hits.filter((id) => want[i]!.includes(id)).length / want[i]!.length));
  return Number((per.reduce((a, b) => a + b, 0) / per.length).toFixed(4));
}

async function metricValue(url: string, name: string): Promise<number | undefined> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = new RegExp(`^${name} (\\S+)$`, "m").exec(text);
  return m ? Number(m[1]) : undefined;
}

/** One request after a run: returns once work abandoned by the previous run has drained. */
async function settle(url: string): Promise<void> {
  for (;;) {
    const res = await fetch(`${url}/v1/search`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query: "settle", k: 1 }) });
    await res.arrayBuffer();
    if (res.status !== 503) return;
    await new Promise((r) => setTimeout(r, 100)); // refused: the queue has not drained yet
  }
}

async function rerankLatency(url: string, runs: number) {
  const images = await Promise.all(Array.from({ length: 8 }, async (_, i) => {
    const dots = Array.from({ length: i + 1 }, (_, j) => `<circle cx="${60 + ((j * 97) % 400)}" cy="${60 + ((j * 151) % 400)}" r="40" fill="#c33"/>`).join("");
    const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="512" height="512"><rect width="100%" height="100%" fill="#8ac"/>${dots}</svg>`;
    return { id: `img${i}`, data: (await sharp(Buffer.from(svg)).png().toBuffer()).toString("base64") };
  }));
  const body = JSON.stringify({ prompt: "a photo of five red balloons", images });
  const times: number[] = [];
  let cpuStart: number | undefined;
  for (let i = 0; i <= runs; i++) {
    if (i === 1) cpuStart = serverCpuSeconds(serverPid);
    const t = performance.now();
    const res = await fetch(`${url}/v1/rerank`, { method: "POST", headers: { "content-type": "application/json" }, body });
    if (res.status !== 200) throw new Error(`rerank: ${res.status} ${await res.text()}`);
    await res.json();
    if (i > 0) times.push(performance.now() - t); // the first run warms caches
  }
  times.sort((a, b) => a - b);
  const cpuEnd = serverCpuSeconds(serverPid);
  const serverCpuMsPerRerank = cpuStart === undefined || cpuEnd === undefined ? null : Number(((cpuEnd - cpuStart) * 1000 / runs).toFixed(1));
  return { images: 8, size: "512x512", runs, p50ms: Number(fmt(percentile(times, 50))), p99ms: Number(fmt(percentile(times, 99))), serverCpuMsPerRerank, bodyBytes: body.length };
}

/** count-aware p50/p99 and req/s over plain (no count in query) at each concurrency. */
function costRatios(search: Array<Record<string, unknown>>) {
  const rows = (scenario: string) => search.filter((r) => String(r["scenario"]).startsWith(scenario));
  return rows("count-aware").map((aware) => {
    const plain = rows("plain, no count").find((r) => r["connections"] === aware["connections"]);
    const ratio = (k: string) => (plain ? Number((Number(aware[k]) / Number(plain[k])).toFixed(2)) : null);
    return { connections: aware["connections"], p50: ratio("p50ms"), p99: ratio("p99ms"), throughput: plain ? Number((Number(plain["requestsPerSecond"]) / Number(aware["requestsPerSecond"])).toFixed(2)) : null };
  });
}

/** Top-10 of the recall queries from a server started with `overrides` (then stopped). */
async function topTenOf(overrides: Record<string, string>, queries: string[]): Promise<string[][]> {
  const server = await startServer(overrides);
  try {
    await waitReady(server.url);
    return await topTen(server.url, queries);
  } finally {
    server.child.kill("SIGTERM");
    await new Promise((r) => server.child.once("exit", r));
  }
}

/**
 * The HNSW ef at which the recall servers search "near-exactly": on the bench index, random-init
 * text queries sit far from every item (cosine ~0.16, top-10 within 0.02), the ANN's worst case:
 * fp32 ANN recall@10 against exact search was 0.70 at ef 128, 0.96 at 512, 0.997 at 2048.
 */
const NEAR_EXACT_EF = "4096";

/**
 * recall@10 of this server's plain search against servers on the same index at another text
 * precision. Three figures, because through an approximate index the first mixes two effects:
 *  - `recallAt10`: both at this server's ef, what a user sees (quantisation + ANN instability:
 *    near-tied neighbourhoods make the graph walk itself sensitive to a tiny query change);
 *  - `quantisationRecallAt10`: both at ef NEAR_EXACT_EF, the quantisation's own effect;
 *  - `annRecallAt10`: the reference precision at this server's ef against itself near-exact,
 *    the ANN's own recall for these queries (what bounds the first figure).
 */
async function recallAgainst(primaryTopTen: string[][], queries: string[], precision: string) {
  const ef = process.env["HNSW_EF_SEARCH"];
  const reference = await topTenOf({ TEXT_PRECISION: precision }, queries);
  const referenceExact = await topTenOf({ TEXT_PRECISION: precision, HNSW_EF_SEARCH: NEAR_EXACT_EF }, queries);
  const primaryExact = await topTenOf({ HNSW_EF_SEARCH: NEAR_EXACT_EF }, queries);
  return {
    against: `TEXT_PRECISION=${precision}`, queries: queries.length, ef: ef ?? "server default", nearExactEf: Number(NEAR_EXACT_EF),
    recallAt10: meanRecall(primaryTopTen, reference),
    quantisationRecallAt10: meanRecall(primaryExact, referenceExact),
    annRecallAt10: meanRecall(reference, referenceExact),
  };
}

const started = performance.now();
const { child, url } = await startServer();
serverPid = child.pid;
let exited = false;
child.once("exit", () => {
  exited = true;
});
try {
  const status = await waitReady(url);
  const loadSeconds = (performance.now() - started) / 1000;
  console.error(`server ready in ${loadSeconds.toFixed(1)} s: ${status["size"]} vectors, model ${status["modelId"]} (dim ${status["dim"]})`);
  const duration = Number(values.duration);
  const search: Array<Record<string, unknown>> = [];
  for (const [scenario, bodies] of Object.entries(SCENARIOS)) {
    await load(url, bodies, 4, 2); // warm-up: JIT, count-prompt cache
    for (const connections of values.connections.split(",").map(Number)) {
      await settle(url);
      const row = { scenario, ...(await load(url, bodies, connections, duration)) };
      console.error(JSON.stringify(row));
      search.push(row);
    }
  }
  const rerank = await rerankLatency(url, Number(values["rerank-runs"]));
  const countPromptCache = { hitRatio: await metricValue(url, "countclip_count_prompt_cache_hit_ratio"), hits: await metricValue(url, "countclip_count_prompt_cache_hits"), misses: await metricValue(url, "countclip_count_prompt_cache_misses") };
  const precisionText = await (await fetch(`${url}/metrics`)).text();
  const precision = Object.fromEntries([...precisionText.matchAll(/^countclip_model_precision\{tower="(\w+)",precision="(\w+)"\} 1$/gm)].map((m) => [m[1]!, m[2]!]));
  const queries = recallQueries(Number(values["recall-queries"]));
  const primaryTopTen = values["recall-vs"] ? await topTen(url, queries) : [];
  // One server at a time on DATA_DIR: the second opens the index only after the first has exited.
  child.kill("SIGTERM");
  if (!exited) await new Promise((r) => child.once("exit", r));
  const recall = values["recall-vs"] ? await recallAgainst(primaryTopTen, queries, values["recall-vs"]) : undefined;
  const settings = Object.fromEntries(TUNING.filter((k) => process.env[k] !== undefined).map((k) => [k, process.env[k]!]));
  const result = {
    model: status["modelId"], dim: status["dim"], vectors: status["size"], precision, settings, loadSeconds: Number(loadSeconds.toFixed(1)),
    durationSeconds: duration, search, countAwareOverPlain: costRatios(search), countPromptCache, rerank, recall,
  };
  console.log(JSON.stringify(result));
  console.error(`\nsettings ${JSON.stringify(settings)}, precision ${JSON.stringify(precision)}`);
  console.error(`| vectors | scenario | clients | served req/s | p50 ms | p99 ms | refused/s | errors | server CPU ms/req | client CPU ms/req |\n|---|---|---|---|---|---|---|---|---|---|`);
  for (const r of search) console.error(`| ${result.vectors} | ${r["scenario"]} | ${r["connections"]} | ${r["requestsPerSecond"]} | ${r["p50ms"]} | ${r["p99ms"]} | ${r["refusedPerSecond"]} | ${r["errors"]} | ${r["serverCpuMsPerRequest"]} | ${r["clientCpuMsPerRequest"]} |`);
  console.error(`count-aware / plain: ${JSON.stringify(result.countAwareOverPlain)}; count-prompt cache ${JSON.stringify(countPromptCache)}`);
  console.error(`rerank 8 x 512x512: p50 ${rerank.p50ms} ms, p99 ${rerank.p99ms} ms (${rerank.runs} runs), server CPU ${rerank.serverCpuMsPerRerank} ms per rerank`);
  if (recall) {
    console.error(`recall@10 vs ${recall.against} (${recall.queries} queries): ${recall.recallAt10} at ef ${recall.ef}; `
      + `quantisation alone (both at ef ${recall.nearExactEf}) ${recall.quantisationRecallAt10}; the ANN's own recall at ef ${recall.ef} `
      + `(${recall.against} against itself at ef ${recall.nearExactEf}) ${recall.annRecallAt10}`);
  }
  if (values.json) await writeFile(values.json, JSON.stringify(result, null, 2));
} finally {
  if (!exited) child.kill("SIGTERM");
}
