/**
 * Gallery search as a user meets it: for every (kind, count) pair the gallery holds, ask a
 * running service for "<count> <kind>" ("three cats", "one apple"), count-aware and plain, and
 * score the first k hits against gallery.jsonl's labels. Starts nothing itself.
 *
 *   npx tsx scripts/benchmarks/eval_gallery_search.ts [--url http://127.0.0.1:8080] [--gallery server/assets/gallery]
 *                                          [--k 5] [--count-weight W] [--concurrency 4] [--json out.json]
 *
 * --count-weight sends that `countWeight` with the count-aware queries (default: the service's).
 *
 * Figures, for each mode:
 *   top-1 exact       the first hit shows the asked kind at the asked count
 *   exact within k    some hit of the first k does
 *   right kind        the share of the first k hits that show the asked kind (any count)
 *   count off by <=1  the first hit of the right kind is within one of the asked count
 * They are given over all pairs and over counts 2..10 (what CountBench asks) apart.
 */
import { promises as fs } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";

const NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"];

interface Label {
  id: string;
  kind: string;
  count: number;
  noun: string;
}

interface Pair {
  kind: string;
  count: number;
  query: string;
}

interface Hit {
  id: string;
}

interface Outcome {
  pair: Pair;
  exactTop1: boolean;
  exactWithinK: boolean;
  rightKindShare: number;
  offByAtMostOne: boolean;
}

interface Figures {
  queries: number;
  top1Exact: number;
  exactWithinK: number;
  rightKindShare: number;
  countOffByAtMostOne: number;
}

async function readLabels(galleryDir: string): Promise<Map<string, Label>> {
  const text = await fs.readFile(path.join(galleryDir, "gallery.jsonl"), "utf8");
  const labels = new Map<string, Label>();
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    const row = JSON.parse(line) as Partial<Label> & { file?: string };
    const id = row.id ?? path.parse(row.file ?? "").name;
    if (typeof row.kind !== "string" || typeof row.count !== "number" || typeof row.noun !== "string") continue;
    labels.set(id, { id, kind: row.kind, count: row.count, noun: row.noun });
  }
  if (labels.size === 0) throw new Error(`${galleryDir}/gallery.jsonl has no lines with kind, count and noun`);
  return labels;
}

/** One query per (kind, count) pair present, phrased with the gallery's own noun for that count. */
function pairsOf(labels: Map<string, Label>): Pair[] {
  const pairs = new Map<string, Pair>();
  for (const label of labels.values()) {
    const key = `${label.kind}\u0000${label.count}`;
    if (!pairs.has(key)) {
      pairs.set(key, { kind: label.kind, count: label.count, query: `${NUMBER_WORDS[label.count]} ${label.noun}` });
    }
  }
  return [...pairs.values()].sort((a, b) => a.kind.localeCompare(b.kind) || a.count - b.count);
}

async function search(url: string, query: string, k: number, countAware: boolean, countWeight?: number): Promise<Hit[]> {
  const response = await fetch(`${url}/v1/search`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ query, k, countAware, ...(countWeight === undefined ? {} : { countWeight }) }),
  });
  if (!response.ok) throw new Error(`search ${JSON.stringify(query)}: HTTP ${response.status} ${await response.text()}`);
  const body = (await response.json()) as { hits: Hit[] };
  return body.hits;
}

function score(pair: Pair, hits: Hit[], labels: Map<string, Label>, k: number): Outcome {
  const shown = hits.slice(0, k).map((hit) => labels.get(hit.id));
  const exact = (label: Label | undefined): boolean => label?.kind === pair.kind && label.count === pair.count;
  const firstOfKind = shown.find((label) => label?.kind === pair.kind);
  return {
    pair,
    exactTop1: exact(shown[0]),
    exactWithinK: shown.some(exact),
    rightKindShare: shown.filter((label) => label?.kind === pair.kind).length / k,
    offByAtMostOne: firstOfKind !== undefined && Math.abs(firstOfKind.count - pair.count) <= 1,
  };
}

function summarise(outcomes: Outcome[]): Figures {
  const n = outcomes.length;
  const mean = (f: (o: Outcome) => number): number => (n === 0 ? NaN : outcomes.reduce((s, o) => s + f(o), 0) / n);
  return {
    queries: n,
    top1Exact: mean((o) => Number(o.exactTop1)),
    exactWithinK: mean((o) => Number(o.exactWithinK)),
    rightKindShare: mean((o) => o.rightKindShare),
    countOffByAtMostOne: mean((o) => Number(o.offByAtMostOne)),
  };
}

/** Runs `task` over `items` with at most `limit` in flight, keeping the order of `items`. */
async function mapLimited<T, R>(items: T[], limit: number, task: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await task(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, limit) }, worker));
  return results;
}

const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;

function table(rows: [string, Figures][], k: number): string {
  const lines = [
    `| mode | queries | top-1 exact | exact within ${k} | right kind of ${k} | top kind-hit count ±1 |`,
    "|---|---|---|---|---|---|",
  ];
  for (const [name, f] of rows) {
    lines.push(`| ${name} | ${f.queries} | ${pct(f.top1Exact)} | ${pct(f.exactWithinK)} | ${pct(f.rightKindShare)} | ${pct(f.countOffByAtMostOne)} |`);
  }
  return lines.join("\n");
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      url: { type: "string", default: process.env.COUNTCLIP_URL ?? "http://127.0.0.1:8080" },
      gallery: { type: "string", default: "server/assets/gallery" },
      k: { type: "string", default: "5" },
      concurrency: { type: "string", default: "4" },
      "count-weight": { type: "string" },
      json: { type: "string" },
    },
  });
  const url = values.url!.replace(/\/+$/, "");
  const k = Number(values.k);
  if (!Number.isInteger(k) || k < 1) throw new Error("--k must be a positive integer");
  const countWeight = values["count-weight"] === undefined ? undefined : Number(values["count-weight"]);
  if (countWeight !== undefined && !(countWeight >= 0)) throw new Error("--count-weight must be a number >= 0");
  const labels = await readLabels(values.gallery!);
  const pairs = pairsOf(labels);
  const model = (await (await fetch(`${url}/v1/model`)).json()) as { modelId?: string };
  console.error(`${pairs.length} (kind, count) pairs of ${labels.size} gallery images; service ${url}, model ${model.modelId ?? "?"}`);

  const rows: [string, Figures][] = [];
  const report: Record<string, Figures> = {};
  for (const countAware of [true, false]) {
    const outcomes = await mapLimited(pairs, Number(values.concurrency), async (pair) =>
      score(pair, await search(url, pair.query, k, countAware, countAware ? countWeight : undefined), labels, k));
    const mode = countAware ? "count-aware" : "plain";
    const all = summarise(outcomes);
    const counted = summarise(outcomes.filter((o) => o.pair.count >= 2));
    rows.push([`${mode}, counts 1..10`, all], [`${mode}, counts 2..10`, counted]);
    report[`${mode}`] = all;
    report[`${mode}_counts_2_10`] = counted;
  }
  console.log(table(rows, k));
  if (values.json) {
    const tmp = `${values.json}.tmp`;
    await fs.writeFile(tmp, JSON.stringify({ url, k, countWeight: countWeight ?? "service default", modelId: model.modelId, pairs: pairs.length, images: labels.size, ...report }, null, 2) + "\n");
    await fs.rename(tmp, values.json);
  }
}

main().catch((err: unknown) => {
  console.error(`eval_gallery_search: ${(err as Error).message}`);
  process.exit(1);
});
