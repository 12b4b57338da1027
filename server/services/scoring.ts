/**
 * Count-aware scoring, as documented in openapi.yaml:
 *
 *   P(n | image, noun) = softmax_n( s * cos(v, t_n) ),  n = 1..10
 *   score              = cos(query, v) + (w / s) * ln P(c | image, noun)
 *
 * v is the unit image embedding, t_n the embedding of the n-th count prompt, s the model's
 * logit scale, c the count the query states and w the count weight. s * score is the log of
 * exp(s * cos(query, v)) * P(c | image, noun)^w: a product of the query-match and count experts.
 */

export const MAX_COUNT = 10;

/** Probabilities below this are clamped before the log, so one hopeless count can't be -Infinity. */
const MIN_PROBABILITY = 1e-12;

export function dot(a: Float32Array, b: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i]! * b[i]!;
  return sum;
}

export interface CountPosterior {
  /** probabilities[n - 1] = P(n | image, noun), n = 1..10. */
  probabilities: number[];
  estimatedCount: number;
  /** P(estimatedCount | image, noun). */
  probability: number;
  /** E[n] under the posterior. */
  meanCount: number;
}

/** Numerically stable softmax. */
export function softmax(logits: number[]): number[] {
  const max = Math.max(...logits);
  const exps = logits.map((x) => Math.exp(x - max));
  const total = exps.reduce((a, b) => a + b, 0);
  return exps.map((x) => x / total);
}

/** P(n | image, noun) for n = 1..prompts.length from the count-prompt embeddings. */
export function countPosterior(image: Float32Array, prompts: Float32Array[], logitScale: number): CountPosterior {
  const probabilities = softmax(prompts.map((t) => logitScale * dot(image, t)));
  let best = 0;
  let mean = 0;
  probabilities.forEach((p, i) => {
    if (p > probabilities[best]!) best = i;
    mean += (i + 1) * p;
  });
  return { probabilities, estimatedCount: best + 1, probability: probabilities[best]!, meanCount: mean };
}

/** The count-aware score; with no stated count (or a count outside 1..10) it is the similarity. */
export function countAwareScore(
  similarity: number,
  posterior: CountPosterior,
  count: number | null,
  logitScale: number,
  weight: number,
): number {
  if (count === null || count < 1 || count > posterior.probabilities.length || weight === 0) return similarity;
  const p = Math.max(posterior.probabilities[count - 1]!, MIN_PROBABILITY);
  return similarity + (weight / logitScale) * Math.log(p);
}

/** Clamp a probability into [0, 1] against float rounding (the schema says so). */
export function clampProbability(p: number): number {
  return Math.min(1, Math.max(0, p));
}
