/**
 * Relevancy maps of a count (POST /v1/explain): which regions of an image raise the model's
 * belief in the stated count against the other counts. See occlusion.ts for the method and
 * openapi.yaml for the contract. Pure of HTTP.
 */
import type { components } from "../../api/types.gen.ts";
import { FALLBACK_NOUN, formsOfBareNoun, type NounForms } from "../count-prompts.ts";
import type { ImageLimits } from "../../model/image-input.ts";
import { Problem } from "../../lib/problem.ts";
import { clampProbability, countPosterior } from "../scoring.ts";
import { parseCount } from "../search.ts";
import type { Serving } from "../serving.ts";
import { cellWeights, countContrast, type OcclusionPlan, windowPositions } from "./occlusion.ts";
import { renderOverlay } from "./render.ts";
import { cropInOriginal, modelView, occludedPng, preprocessOf } from "./view.ts";

type ExplainRequest = components["schemas"]["ExplainRequest"];
export type ExplainResponse = components["schemas"]["ExplainResponse"];

export const DEFAULT_PLAN: OcclusionPlan = { grid: 8, window: 2 };

export interface Target {
  forms: NounForms;
  /** The count to explain; undefined: the image's estimated count. */
  count: number | undefined;
}

/** count: `count`, else the query's scoreable count; noun: `noun`, else the query's, else "objects". */
export function targetOf(req: Pick<ExplainRequest, "query" | "noun" | "count">): Target {
  const parsed = req.query !== undefined ? parseCount(req.query) : undefined;
  const forms = req.noun !== undefined ? formsOfBareNoun(req.noun) : parsed?.noun ? parsed.forms : FALLBACK_NOUN;
  return { forms, count: req.count ?? parsed?.scoreable ?? undefined };
}

export function planOf(req: Pick<ExplainRequest, "grid" | "window">): OcclusionPlan {
  const plan = { grid: req.grid ?? DEFAULT_PLAN.grid, window: req.window ?? DEFAULT_PLAN.window };
  // Each field is within the schema; only their combination is wrong, which the schema cannot say: 422.
  if (plan.window > plan.grid) throw new Problem(422, "Window Exceeds Grid", `window ${plan.window} exceeds grid ${plan.grid}`, [{ path: "/window", message: "must be <= grid" }]);
  return plan;
}

export interface Explanation {
  response: ExplainResponse;
  /** Renders the map over the model's view (only when asked for a PNG). */
  png(): Promise<Buffer>;
}

export async function explain(serving: Serving, bytes: Uint8Array, target: Target, plan: OcclusionPlan, limits: ImageLimits): Promise<Explanation> {
  const { embedder } = serving;
  const view = await modelView(bytes, await preprocessOf(embedder.bundleDir), limits);
  const positions = windowPositions(plan);
  const pngs = await Promise.all([occludedPng(view, plan), ...positions.map((at) => occludedPng(view, plan, at))]);
  const [prompts, vectors] = await Promise.all([serving.countPrompts.get(target.forms), embedder.embedImages(pngs)]);
  const scale = embedder.logitScale;
  const posterior = countPosterior(vectors[0]!, prompts, scale);
  const count = target.count ?? posterior.estimatedCount;
  const baseline = countContrast(vectors[0]!, prompts, scale, count);
  const drops = vectors.slice(1).map((v) => baseline - countContrast(v, prompts, scale, count));
  const weights = cellWeights(plan, drops);
  const maxAbs = Math.max(0, ...weights.flat().map(Math.abs));
  const response: ExplainResponse = {
    modelId: serving.modelId,
    method: "occlusion",
    noun: count === 1 ? target.forms.singular : target.forms.plural,
    count,
    estimatedCount: posterior.estimatedCount,
    probability: clampProbability(posterior.probabilities[count - 1]!),
    contrast: baseline,
    grid: plan.grid,
    window: plan.window,
    passes: pngs.length,
    image: view.original,
    crop: cropInOriginal(view),
    weights,
    maxAbs,
  };
  return { response, png: () => renderOverlay(view, weights, maxAbs) };
}
