/**
 * HTTP benchmark of the real server (server/main.ts in a child process, loopback only):
 * search p50/p99 and requests/s at several concurrencies, plain vs count-aware, and rerank
 * latency for 8 images of 512x512.
 *
 *   npm run bench:service -- --model BUNDLE_DIR --data DATA_DIR
 *       [--connections 10,50] [--duration 10] [--rerank-runs 10] [--json out.json]
 *
 * DATA_DIR normally holds a synthetic index saved for BUNDLE_DIR by scripts/bench-index.ts
 * (--save/--save-model), so the server loads it instead of indexing a gallery.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import autocannon from "autocannon";
import sharp from "sharp";
import { fmt, percentile } from "./bench-lib.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

const { values } = parseArgs({
  options: {
    model: { type: "string" },
    data: { type: "string" },
    connections: { type: "string", default: "10,50" },
    duration: { type: "string", default: "10" },
    "rerank-runs": { type: "string", default: "10" },
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

function startServer(): Promise<{ child: ChildProcess; url: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", path.join(ROOT, "server/main.ts")], {
      env: {
        ...process.env,
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

async function load(url: string, bodies: Array<Record<string, unknown>>, connections: number, duration: number) {
  const samples: PhaseSamples = {};
  const result = await autocannon({
    url: `${url}/v1/search`,
    connections,
    duration,
    requests: bodies.map((b) => ({
      method: "POST",
      headers: { "content-type": "application/json" },
      setupRequest: (req: autocannon.Request) => ({ ...req, body: JSON.stringify({ ...b, query: `${String(b["query"])}, ref ${uniqueWord()}` }) }),
      onResponse: (_status: number, _body: string, _context: object, headers?: autocannon.Request["headers"]) => recordTiming(samples, headers?.["Server-Timing"] ?? headers?.["server-timing"]),
    })),
  });
  return {
    connections,
    requestsPerSecond: Number(result.requests.average.toFixed(1)),
    p50ms: result.latency.p50,
    p99ms: result.latency.p99,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
    total: result.requests.total,
    serverTiming: summarise(samples),
  };
}

/** One request after a run: returns once work abandoned by the previous run has drained. */
async function settle(url: string): Promise<void> {
  await fetch(`${url}/v1/search`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query: "settle", k: 1 }) });
}

async function rerankLatency(url: string, runs: number) {
  const images = await Promise.all(Array.from({ length: 8 }, async (_, i) => {
    const dots = Array.from({ length: i + 1 }, (_, j) => `<circle cx="${60 + ((j * 97) % 400)}" cy="${60 + ((j * 151) % 400)}" r="40" fill="#c33"/>`).join("");
    const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="512" height="512"><rect width="100%" height="100%" fill="#8ac"/>${dots}</svg>`;
    return { id: `img${i}`, data: (await sharp(Buffer.from(svg)).png().toBuffer()).toString("base64") };
  }));
  const body = JSON.stringify({ prompt: "a photo of five red balloons", images });
  const times: number[] = [];
  for (let i = 0; i <= runs; i++) {
    const t = performance.now();
    const res = await fetch(`${url}/v1/rerank`, { method: "POST", headers: { "content-type": "application/json" }, body });
    if (res.status !== 200) throw new Error(`rerank: ${res.status} ${await res.text()}`);
    await res.json();
    if (i > 0) times.push(performance.now() - t); // the first run warms caches
  }
  times.sort((a, b) => a - b);
  return { images: 8, size: "512x512", runs, p50ms: Number(fmt(percentile(times, 50))), p99ms: Number(fmt(percentile(times, 99))), bodyBytes: body.length };
}

const started = performance.now();
const { child, url } = await startServer();
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
  const result = { model: status["modelId"], dim: status["dim"], vectors: status["size"], loadSeconds: Number(loadSeconds.toFixed(1)), durationSeconds: duration, search, rerank };
  console.log(JSON.stringify(result));
  console.error(`\n| vectors | scenario | clients | req/s | p50 ms | p99 ms | errors |\n|---|---|---|---|---|---|---|`);
  for (const r of search) console.error(`| ${result.vectors} | ${r["scenario"]} | ${r["connections"]} | ${r["requestsPerSecond"]} | ${r["p50ms"]} | ${r["p99ms"]} | ${Number(r["errors"]) + Number(r["non2xx"])} |`);
  console.error(`rerank 8 x 512x512: p50 ${rerank.p50ms} ms, p99 ${rerank.p99ms} ms (${rerank.runs} runs)`);
  if (values.json) await writeFile(values.json, JSON.stringify(result, null, 2));
} finally {
  child.kill("SIGTERM");
}
