/**
 * The TypeScript tree in layers (issue 17): every relative import of every .ts file under
 * server/, index/, scripts/ and test/ (type-only imports, re-exports and import() included, as
 * the TypeScript compiler's own scanner reads them) must point down the order below or stay in
 * its layer, and no file may reach itself again. A new module lands in a layer by its path;
 * a path in no layer fails, so a new folder is placed here on purpose.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import ts from "typescript";
import { REPO_ROOT } from "./helpers/bundle.ts";

interface Layer {
  name: string;
  /** Repo-relative files, or folders ending in "/"; a file belongs to its longest match. */
  paths: string[];
  /** Imports nothing outside its own layer (the index is usable without the service). */
  standalone?: boolean;
}

/**
 * Top to bottom. A file may import its own layer and any layer of a later row; layers of one
 * row are peers and import neither each other nor anything above.
 */
const LAYERS: Layer[][] = [
  // The test files: may import anything, and nothing imports them.
  [{ name: "tests", paths: ["test/"] }],
  // Benchmarks and generators, run by hand or by npm scripts (gen:api); they borrow the test
  // helpers' throwaway PostgreSQL and browser.
  [{ name: "scripts", paths: ["scripts/"] }],
  // What several tests share: bundles exported on demand, service apps, PostgreSQL, a browser.
  [{ name: "test helpers", paths: ["test/helpers/"] }],
  // The CLIs: the service's entry point and the count core's command line (the Python parity
  // test runs it as a process; nothing imports it but its own test).
  [{ name: "entry points", paths: ["server/main.ts", "server/counts/cli.ts"] }],
  // HTTP: the Express app, routes, auth, slow-client limits, request metrics, contract
  // validation, RFC 7807 rendering. Translates requests into service calls and back.
  [{ name: "http", paths: ["server/http/"] }],
  // The service's work: search and count-aware scoring, count prompts, the index service
  // (model/index pairing, mutations, import, rebuild and swap, their jobs), explain, and the
  // configuration every one of them is built from. The page (server/web) beside it: its
  // bundle build and static serving, which http mounts; it knows nothing of the service.
  [{ name: "services", paths: ["server/services/"] }, { name: "web", paths: ["server/web/"] }],
  // What the services stand on, each independent of the others: the model (bundle, tokenizer,
  // preprocessing, onnxruntime), the count core, and the index (storage behind one interface).
  [
    { name: "model", paths: ["server/model/"] },
    { name: "counts", paths: ["server/counts/"] },
    { name: "index", paths: ["index/"], standalone: true },
  ],
  // Small parts with no opinion on the product: LRU, root confinement, the query batcher, the
  // Problem error every layer throws.
  [{ name: "lib", paths: ["server/lib/"] }],
  // The contract: types generated from openapi.yaml (npm run gen:api), imported by services,
  // http and the page alike; it imports nothing.
  [{ name: "api", paths: ["server/api/"] }],
];

/** The index inside: the two backends side by side on the interface, which stands on shared pieces. */
const INDEX_LAYERS: Layer[][] = [
  // The backends: hnswlib in this process (write-ahead log, snapshots, blob files) and
  // PostgreSQL + pgvector; neither imports the other.
  [{ name: "embedded backend", paths: ["index/embedded/"] }, { name: "pgvector backend", paths: ["index/pgvector/"] }],
  // The interface both implement and the vector-bundle import format both load.
  [{ name: "index interface", paths: ["index/backend.ts", "index/vector-bundle.ts"] }],
  // Atomic writes and hashes, exact top-k, synthetic vectors: no backend's own.
  [{ name: "index shared", paths: ["index/shared/"] }],
];

/** Files (not folders) allowed at server/'s root: entry points only, so the layers are the folders. */
const MAX_SERVER_ROOT_MODULES = 8;

const ROOTS = ["server", "index", "scripts", "test"];
const SKIP_DIRS = new Set(["node_modules", "dist", "assets"]);

/** Every .ts file under the roots, repo-relative with "/" separators. */
function tsFiles(): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const entry of readdirSync(path.join(REPO_ROOT, rel), { withFileTypes: true })) {
      const child = `${rel}/${entry.name}`;
      if (entry.isDirectory()) {
        if (!SKIP_DIRS.has(entry.name)) walk(child);
      } else if (/\.(ts|mts|cts|tsx)$/.test(entry.name)) {
        out.push(child);
      }
    }
  };
  for (const root of ROOTS) walk(root);
  return out.sort();
}

/** The relative import specifiers of one source text, as the compiler's pre-processor finds them. */
function specifiers(text: string): string[] {
  return ts.preProcessFile(text, true, true).importedFiles.map((f) => f.fileName).filter((s) => s.startsWith("."));
}

/** file -> the repo-relative files it imports. */
export type ImportGraph = Map<string, string[]>;

function importGraph(files: string[]): ImportGraph {
  return new Map(files.map((file) => {
    const text = readFileSync(path.join(REPO_ROOT, file), "utf8");
    return [file, specifiers(text).map((s) => path.posix.normalize(path.posix.join(path.posix.dirname(file), s)))];
  }));
}

interface Placed {
  layer: Layer;
  row: number;
}

function placer(rows: Layer[][]): (file: string) => Placed | undefined {
  const entries = rows.flatMap((layers, row) => layers.flatMap((layer) => layer.paths.map((p) => ({ p, layer, row }))));
  return (file) => {
    let best: { p: string; layer: Layer; row: number } | undefined;
    for (const e of entries) {
      const hit = e.p.endsWith("/") ? file.startsWith(e.p) : file === e.p;
      if (hit && (!best || e.p.length > best.p.length)) best = e;
    }
    return best && { layer: best.layer, row: best.row };
  };
}

/** Imports that run up the order, across peers, out of a standalone layer, or to no file. */
function orderViolations(graph: ImportGraph, rows: Layer[][], scope: (file: string) => boolean = () => true): string[] {
  const place = placer(rows);
  const out: string[] = [];
  for (const [file, targets] of graph) {
    if (!scope(file)) continue;
    const from = place(file);
    if (!from) {
      out.push(`${file} is in no layer`);
      continue;
    }
    for (const target of targets) {
      if (!graph.has(target)) {
        if (/\.(ts|mts|cts|tsx)$/.test(target)) out.push(`${file} imports ${target}, which does not exist`);
        continue;
      }
      if (!scope(target)) continue;
      const to = place(target);
      if (!to) continue; // reported as its own file
      if (to.layer === from.layer) continue;
      if (from.layer.standalone) out.push(`${file} (${from.layer.name}) imports ${target} (${to.layer.name}): ${from.layer.name} imports nothing outside itself`);
      else if (to.row < from.row) out.push(`${file} (${from.layer.name}) imports ${target} (${to.layer.name}), a higher layer`);
      else if (to.row === from.row) out.push(`${file} (${from.layer.name}) imports ${target} (${to.layer.name}), a peer`);
    }
  }
  return out;
}

/** Every import circle, each once, as the path that closes it. */
function cycles(graph: ImportGraph): string[] {
  const out: string[] = [];
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const visit = (file: string) => {
    state.set(file, "open");
    stack.push(file);
    for (const next of graph.get(file) ?? []) {
      if (!graph.has(next)) continue;
      const s = state.get(next);
      if (s === "open") out.push([...stack.slice(stack.indexOf(next)), next].join(" -> "));
      else if (s === undefined) visit(next);
    }
    stack.pop();
    state.set(file, "done");
  };
  for (const file of [...graph.keys()].sort()) if (!state.has(file)) visit(file);
  return out;
}

function violations(graph: ImportGraph): string[] {
  return [
    ...orderViolations(graph, LAYERS),
    ...orderViolations(graph, INDEX_LAYERS, (f) => f.startsWith("index/")),
    ...cycles(graph).map((c) => `import circle: ${c}`),
  ];
}

test("every import runs down the layers, none runs back up or round in a circle", () => {
  const files = tsFiles();
  assert.ok(files.length > 100, `found only ${files.length} .ts files under ${ROOTS.join(", ")}`);
  const problems = violations(importGraph(files));
  assert.deepEqual(problems, [], `\n${problems.join("\n")}`);
});

test(`server/ holds at most ${MAX_SERVER_ROOT_MODULES} modules at its root`, () => {
  const root = readdirSync(path.join(REPO_ROOT, "server"), { withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith(".ts")).map((e) => e.name);
  assert.ok(root.length <= MAX_SERVER_ROOT_MODULES, `server/ root: ${root.join(", ")}`);
});

test("the checks catch an upward import, a peer import, a standalone layer's escape and a circle", () => {
  const graph: ImportGraph = new Map([
    ["server/lib/lru.ts", ["server/services/config.ts"]], // lib -> services: up
    ["server/services/config.ts", ["server/model/types.ts"]], // down: fine
    ["server/model/types.ts", ["server/counts/counts.ts"]], // model -> counts: peers
    ["server/counts/counts.ts", []],
    ["index/backend.ts", ["server/lib/problem.ts", "index/embedded/backend.ts"]], // out of index; up inside it
    ["index/embedded/backend.ts", ["index/backend.ts"]],
    ["server/lib/problem.ts", ["server/lib/paths.ts"]], // same layer, but a circle
    ["server/lib/paths.ts", ["server/lib/problem.ts", "server/lib/gone.ts"]],
    ["server/stray.ts", []],
  ]);
  const found = violations(graph);
  const expect = [
    "server/lib/lru.ts (lib) imports server/services/config.ts (services), a higher layer",
    "server/model/types.ts (model) imports server/counts/counts.ts (counts), a peer",
    "index/backend.ts (index) imports server/lib/problem.ts (lib): index imports nothing outside itself",
    "server/lib/paths.ts imports server/lib/gone.ts, which does not exist",
    "server/stray.ts is in no layer",
    "index/backend.ts (index interface) imports index/embedded/backend.ts (embedded backend), a higher layer",
    "import circle: index/backend.ts -> index/embedded/backend.ts -> index/backend.ts",
    "import circle: server/lib/problem.ts -> server/lib/paths.ts -> server/lib/problem.ts",
  ];
  assert.deepEqual([...found].sort(), [...expect].sort());
});

test("the scanner reads type-only imports, re-exports and import() but not comments or strings", () => {
  const text = [
    'import type { A } from "./a.ts";',
    'export type { B } from "../b.ts";',
    'type C = typeof import("./c.ts");',
    'const d = await import("./d.ts");',
    '// import { e } from "./e.ts";',
    'const f = "import { f } from \'./f.ts\'";',
    'import express from "express";',
  ].join("\n");
  assert.deepEqual(specifiers(text), ["./a.ts", "../b.ts", "./c.ts", "./d.ts"]);
});
