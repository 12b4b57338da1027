/**
 * Search, rerank and count over one Serving (see openapi.yaml for the scoring). Pure of HTTP:
 * routes validate and translate; these functions compute.
 */
import type { components } from "../api/types.gen.ts";
import { FALLBACK_NOUN, formsOfBareNoun, type NounForms, nounForms } from "./count-prompts.ts";
import { queryNotes, readQuery } from "./query-reading.ts";
import { clampProbability, countAwareScore, type CountPosterior, countPosterior, dot, MAX_COUNT } from "./scoring.ts";
import type { Serving } from "./serving.ts";

type Schemas = components["schemas"];
export type SearchRequest = Schemas["SearchRequest"];
export type SearchResponse = Schemas["SearchResponse"];
export type RankedImage = Schemas["RankedImage"];
export type CountResponse = Schemas["CountResponse"];

export interface ParsedCount {
  /** Count as stated (may exceed 10: then it is reported but cannot be scored). */
  count: number | null;
  noun: string | null;
  forms: NounForms;
  /** The count when it is scoreable (1..10), else null. */
  scoreable: number | null;
}

export function parseCount(text: string): ParsedCount {
  const parsed = readQuery(text);
  const count = parsed.count ?? null;
  const noun = parsed.noun ?? null;
  const forms = noun ? nounForms(noun, parsed.singular, count) : FALLBACK_NOUN;
  const scoreable = count !== null && count >= 1 && count <= MAX_COUNT ? count : null;
  return { count, noun, forms, scoreable };
}

export interface SearchLimits {
  maxCandidates: number;
  /** HNSW beam width (the configured one, whatever the index was built with). */
  efSearch: number;
  /** Nouns the gallery holds (lower case), for "did you mean" notes. */
  nouns?: ReadonlySet<string>;
}

/** Candidates reranked by count-aware search: max(k, requested or max(5k, 50)), capped. */
export function candidateCount(k: number, requested: number | undefined, cap: number): number {
  return Math.max(k, Math.min(requested ?? Math.max(5 * k, 50), cap));
}

/** Milliseconds per phase of a request, reported in the Server-Timing header. */
export type Timings = Record<string, number>;

export async function search(
  serving: Serving,
  req: SearchRequest,
  limits: SearchLimits,
  timings: Timings = {},
  signal?: AbortSignal,
): Promise<SearchResponse> {
  const k = req.k ?? 10;
  const weight = req.countWeight ?? 1;
  const parsed = parseCount(req.query);
  const asked = req.countAware ?? true;
  const aware = asked && parsed.scoreable !== null;
  let mark = performance.now();
  const lap = (phase: string) => {
    const now = performance.now();
    timings[phase] = now - mark;
    mark = now;
  };
  // The count prompts (cached per noun) are embedded alongside the query, not after it.
  const [query, prompts] = await Promise.all([
    serving.embedQuery(req.query, signal),
    parsed.count !== null ? serving.countPrompts.get(parsed.forms) : undefined,
  ]);
  lap("embed");
  const neighbours = await serving.index.search(query, aware ? candidateCount(k, req.candidates, limits.maxCandidates) : k, limits.efSearch);
  lap("ann");
  const scale = serving.embedder.logitScale;
  const matches = aware ? await queryMatches(serving, neighbours.map(({ meta, similarity, vector }) => ({ id: meta.id, similarity, vector })), true) : [];
  const best = Math.max(...matches);
  const hits = neighbours.map(({ meta, similarity, vector }, i) => {
    const hit: Schemas["SearchHit"] = { id: meta.id, score: similarity, similarity, source: meta.source };
    if (!prompts) return hit;
    const posterior = countPosterior(vector, prompts, scale);
    Object.assign(hit, countFields(posterior, parsed.scoreable));
    if (aware) hit.score = countAwareScore(matches[i]!, best, posterior, parsed.scoreable, scale, weight);
    return hit;
  });
  if (aware) hits.sort((a, b) => b.score - a.score);
  lap("count");
  const response: SearchResponse = {
    modelId: serving.modelId,
    indexBuild: serving.build,
    query: { count: parsed.count, noun: parsed.noun },
    countAware: aware,
    hits: hits.slice(0, k),
  };
  const notes = queryNotes(req.query, { count: parsed.count, noun: parsed.noun, singular: parsed.forms.singular }, asked, limits.nouns ?? new Set());
  if (notes.length > 0) response.notes = notes;
  return response;
}

/**
 * m(v) of each image: its similarity, less the model's hubness penalty beta * h(v) when the
 * bundle has one (hubness.ts). Count-aware ranking and its kind gate use m, not the raw cosine.
 */
async function queryMatches(
  serving: Serving,
  items: ReadonlyArray<{ id: string; similarity: number; vector: Float32Array }>,
  indexed: boolean,
): Promise<number[]> {
  if (!serving.hubness) return items.map((item) => item.similarity);
  const penalties = await serving.hubness.penalties(items, { cache: indexed });
  return items.map((item, i) => item.similarity - penalties[i]!);
}

function countFields(posterior: CountPosterior, count: number | null) {
  const fields: { estimatedCount: number; probability: number; queryCountProbability?: number } = {
    estimatedCount: posterior.estimatedCount,
    probability: clampProbability(posterior.probability),
  };
  if (count !== null) fields.queryCountProbability = clampProbability(posterior.probabilities[count - 1]!);
  return fields;
}

export function serverTiming(timings: Timings): string {
  return Object.entries(timings).map(([phase, ms]) => `${phase};dur=${ms.toFixed(2)}`).join(", ");
}

/**
 * Rank images against a prompt, best first. `images` may still be embedding: the prompt and its
 * count prompts are embedded meanwhile, so a rerank costs its vision batch, not vision + text.
 */
export async function rerank(
  serving: Serving,
  prompt: string,
  images: Promise<Array<{ id: string; vector: Float32Array }>> | Array<{ id: string; vector: Float32Array }>,
  weight: number,
): Promise<{ prompt: Schemas["ParsedQuery"]; results: RankedImage[] }> {
  const parsed = parseCount(prompt);
  const [text, prompts, embedded] = await Promise.all([serving.embedQuery(prompt), serving.countPrompts.get(parsed.forms), images]);
  const scale = serving.embedder.logitScale;
  const similarities = embedded.map(({ vector }) => dot(text, vector));
  // A rerank's images are one-off: their hub scores are not cached.
  const matches = parsed.scoreable !== null
    ? await queryMatches(serving, embedded.map(({ id, vector }, i) => ({ id, vector, similarity: similarities[i]! })), false)
    : similarities;
  const best = Math.max(...matches);
  const results = embedded.map(({ id, vector }, i): RankedImage => {
    const similarity = similarities[i]!;
    const posterior = countPosterior(vector, prompts, scale);
    const ranked: RankedImage = {
      id,
      score: countAwareScore(matches[i]!, best, posterior, parsed.scoreable, scale, weight),
      similarity,
      expectedCount: parsed.count,
      estimatedCount: posterior.estimatedCount,
      probability: clampProbability(posterior.probability),
      meanCount: meanInRange(posterior.meanCount),
      distribution: distributionOf(posterior),
    };
    if (parsed.scoreable !== null) ranked.expectedCountProbability = clampProbability(posterior.probabilities[parsed.scoreable - 1]!);
    return ranked;
  });
  results.sort((a, b) => b.score - a.score);
  return { prompt: { count: parsed.count, noun: parsed.noun }, results };
}

/** The count posterior of one embedded image for a client-supplied noun. */
export async function countDistribution(serving: Serving, vector: Float32Array, noun: string): Promise<CountResponse> {
  const prompts = await serving.countPrompts.get(formsOfBareNoun(noun));
  const posterior = countPosterior(vector, prompts, serving.embedder.logitScale);
  return {
    modelId: serving.modelId,
    noun: noun.trim(),
    distribution: distributionOf(posterior),
    estimatedCount: posterior.estimatedCount,
    probability: clampProbability(posterior.probability),
    meanCount: meanInRange(posterior.meanCount),
  };
}

function distributionOf(posterior: CountPosterior): Schemas["CountProbability"][] {
  return posterior.probabilities.map((p, i) => ({ count: i + 1, probability: clampProbability(p) }));
}

/** E[n] lies in [1, 10] mathematically; clamp float rounding so the schema holds. */
function meanInRange(mean: number): number {
  return Math.min(MAX_COUNT, Math.max(1, mean));
}
