/**
 * Offline study (not shipped): gallery search scored as the service's count-aware search scores
 * it (exact top-50 candidates, server/services/scoring.ts), against the same with a hubness
 * correction: cos(query, v) - beta * h(v), h(v) the mean of the K highest cosines of image v to a
 * bank of object prompts (CSLS / querybank-normalisation style), before the count term and gate.
 *
 *   npx tsx scripts/benchmarks/sweep_hub_correction.ts GALLERY_DIR   # bank: the gallery's nouns
 *   VOCAB=coco KS=10 BETAS=0.4 npx tsx scripts/benchmarks/sweep_hub_correction.ts GALLERY_DIR
 *
 * TAUS (kind-gate temperature, default the service's) and WEIGHTS (count weight, default 1) sweep
 * the rest of the count-aware score with it.
 *
 * Tune on another gallery (countclip synth gallery --seed 101 --count 1800 --size 160 --out G),
 * then score the committed one once. Figures (2026-12-04) are in the closing note of that session:
 * COCO bank, K 10, beta 0.4: committed gallery 77.3/88.2/73.8 -> 79.5/87.7/80.1 (top-1 exact,
 * exact within 5, right kind of 5).
 */
import { promises as fs } from "node:fs";
import path from "node:path";
import { loadEmbedder } from "../../server/model/embedder.ts";
import { parseCount } from "../../server/services/search.ts";
import { countPrompts } from "../../server/services/count-prompts.ts";
import { countPosterior, dot, KIND_GATE_TEMPERATURE } from "../../server/services/scoring.ts";

const galleryDir = process.argv[2]!;
const NUM = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"];
const labels = (await fs.readFile(path.join(galleryDir, "gallery.jsonl"), "utf8")).split("\n").filter(Boolean).map((l) => JSON.parse(l) as { id: string; file: string; kind: string; count: number; noun: string });
const emb = await loadEmbedder(new URL("../../server/assets/default-model", import.meta.url).pathname);
const images: Float32Array[] = [];
for (let i = 0; i < labels.length; i += 64) {
  const bufs = await Promise.all(labels.slice(i, i + 64).map((l) => fs.readFile(path.join(galleryDir, l.file))));
  images.push(...(await emb.embedImages(bufs)));
}
const pairs = new Map<string, { kind: string; count: number; query: string }>();
for (const l of labels) if (!pairs.has(`${l.kind}|${l.count}`)) pairs.set(`${l.kind}|${l.count}`, { kind: l.kind, count: l.count, query: `${NUM[l.count]} ${l.noun}` });
const COCO = "person bicycle car motorcycle airplane bus train truck boat traffic-light fire-hydrant stop-sign parking-meter bench bird cat dog horse sheep cow elephant bear zebra giraffe backpack umbrella handbag tie suitcase frisbee skis snowboard ball kite baseball-bat baseball-glove skateboard surfboard tennis-racket bottle wine-glass cup fork knife spoon bowl banana apple sandwich orange broccoli carrot hot-dog pizza donut cake chair couch potted-plant bed dining-table toilet tv laptop mouse remote keyboard cell-phone microwave oven toaster sink refrigerator book clock vase scissors teddy-bear hair-drier toothbrush".split(" ").map((w) => w.replace(/-/g, " "));
const galleryNouns = [...new Set(labels.map((l) => l.noun))];
const nouns = process.env.VOCAB === "coco" ? COCO : galleryNouns;
console.log("vocab", process.env.VOCAB ?? "gallery", nouns.length, "overlap with gallery nouns", nouns.filter((n) => galleryNouns.includes(n)).length);
// The bank: "a photo of a/an {noun}" per COCO category (VOCAB=coco), else "a photo of {noun}" per gallery noun as
// the count core reads it after "two" (the gallery's nouns: an upper bound, they are the queries' own kinds).
const article = (n: string) => (/^[aeiou]/.test(n) ? "an" : "a");
const vocab = await emb.embedTexts(process.env.VOCAB === "coco" ? nouns.map((n) => `a photo of ${article(n)} ${n}`) : nouns.map((n) => `a photo of ${parseCount(`two ${n}`).forms.plural}`));
const simsToVocab = images.map((v) => vocab.map((t) => dot(v, t)).sort((a, b) => b - a));
const hubScore = (K: number) => simsToVocab.map((s) => s.slice(0, K).reduce((a, b) => a + b, 0) / K);
const queries = [...pairs.values()];
const qv = await emb.embedTexts(queries.map((q) => q.query));
const prompts = new Map<string, Float32Array[]>();
for (const q of queries) {
  const p = parseCount(q.query);
  const key = p.forms.plural;
  if (!prompts.has(key)) prompts.set(key, await emb.embedTexts(countPrompts(p.forms)));
}
const scale = emb.logitScale;

/** The service's count-aware score (scoring.ts) with the gate temperature and count weight free. */
function score(m: number, best: number, p: number, tau: number, w: number) {
  const gate = Math.exp(tau * scale * Math.min(0, m - best));
  return m + (w / scale) * Math.log(Math.max(gate * p + (1 - gate) / 10, 1e-12));
}

function run(penalty: number[] | null, beta: number, aware = true, tau = KIND_GATE_TEMPERATURE, w = 1) {
  let top1 = 0, within = 0, kindShare = 0;
  queries.forEach((q, qi) => {
    const parsed = parseCount(q.query);
    const tp = prompts.get(parsed.forms.plural)!;
    const raw = images.map((v) => dot(v, qv[qi]!));
    const cand = raw.map((s, i) => [s, i] as const).sort((a, b) => b[0] - a[0]).slice(0, 50)
      .map(([s, i]) => [s - (penalty ? beta * penalty[i]! : 0), i] as const).sort((a, b) => b[0] - a[0]);
    const best = cand[0]![0];
    const scored = cand.map(([s, i]) => [aware ? score(s, best, countPosterior(images[i]!, tp, scale).probabilities[q.count - 1]!, tau, w) : s, i] as const)
      .sort((a, b) => b[0] - a[0]).slice(0, 5);
    const shown = scored.map(([, i]) => labels[i]!);
    if (shown[0]!.kind === q.kind && shown[0]!.count === q.count) top1++;
    if (shown.some((l) => l.kind === q.kind && l.count === q.count)) within++;
    kindShare += shown.filter((l) => l.kind === q.kind).length / 5;
  });
  const n = queries.length;
  return `top1 ${(100 * top1 / n).toFixed(1)} within5 ${(100 * within / n).toFixed(1)} kind ${(100 * kindShare / n).toFixed(1)}`;
}
console.log(galleryDir, "queries", queries.length, "images", images.length);
console.log("current count-aware", run(null, 0), "| plain", run(null, 0, false));
const list = (name: string, fallback: string) => (process.env[name] ?? fallback).split(",").map(Number);
for (const K of list("KS", "3,10,20,1000")) for (const beta of list("BETAS", "0.25,0.5,0.75")) {
  for (const tau of list("TAUS", String(KIND_GATE_TEMPERATURE))) for (const w of list("WEIGHTS", "1")) {
    console.log(`hub K=${K} beta=${beta} tau=${tau} w=${w}`, run(hubScore(K), beta, true, tau, w));
  }
}
await emb.close();
