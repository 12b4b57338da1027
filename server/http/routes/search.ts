/** POST /v1/search, /v1/rerank, /v1/count. */
import { type ErrorRequestHandler, type RequestHandler, Router } from "express";
import type { components } from "../../api/types.gen.ts";
import { galleryNouns } from "../../services/gallery.ts";
import { displaySource } from "../../lib/paths.ts";
import { decodeBase64Image, embedNamedImages } from "../../services/images.ts";
import { badRequest, Problem } from "../../lib/problem.ts";
import { countDistribution, rerank, search, serverTiming, type Timings } from "../../services/search.ts";
import { OverloadedError } from "../../lib/text-batcher.ts";
import { clientGone, methodNotAllowed, type RouteContext } from "./context.ts";

type Schemas = components["schemas"];

export function searchRoutes(ctx: RouteContext): Router {
  const { api, config, service, json } = ctx;
  const router = Router();

  /**
   * Back-pressure before the body is read: when the query queue is already past its budget, a
   * refusal must cost next to nothing (no JSON, no validation), or under a retry storm the
   * refusals become the overload. A request let through is checked again by the batcher.
   */
  const admit: RequestHandler = (_req, _res, next) => {
    const budget = config.maxQueueWaitMs;
    const serving = budget > 0 && service.ready ? service.acquireUnleased() : undefined;
    const wait = serving?.queryWaitMs ?? 0;
    if (wait <= budget) return next();
    serving!.recordRefusal();
    next(new OverloadedError(wait, budget));
  };

  router.route("/v1/search").post(admit, json, api.body("search"), async (req, res) => {
    const body = req.body as Schemas["SearchRequest"];
    const k = body.k ?? 10;
    if (k > config.maxK) throw badRequest(`k=${k} exceeds this server's maximum of ${config.maxK}`, [{ path: "/k", message: `must be <= ${config.maxK}` }]);
    const timings: Timings = {};
    const signal = clientGone(res);
    const limits = { maxCandidates: config.maxCandidates, efSearch: config.hnswEfSearch, nouns: await galleryNouns(config.galleryDir) };
    const result = await service.with((serving) => search(serving, body, limits, timings, signal));
    for (const hit of result.hits) hit.source = displaySource(hit.source, config.imageRoots);
    res.setHeader("Server-Timing", serverTiming(timings));
    api.send(res, "search", 200, result);
  }).all(methodNotAllowed(["POST"]));

  router.route("/v1/rerank").post(admit, json, api.body("rerank"), async (req, res) => {
    const body = req.body as Schemas["RerankRequest"];
    if (body.images.length > config.maxRerankImages) {
      throw badRequest(`${body.images.length} images exceed this server's maximum of ${config.maxRerankImages}`, [
        { path: "/images", message: `must have at most ${config.maxRerankImages} items` },
      ]);
    }
    const ids = new Set(body.images.map((i) => i.id));
    // Well-formed JSON the schema cannot refuse (uniqueItems cannot look at one field): 422.
    if (ids.size !== body.images.length) throw new Problem(422, "Duplicate Image Id", "image ids must be unique", [{ path: "/images", message: "duplicate id" }]);
    const decoded = body.images.map((i) => ({ id: i.id, bytes: decodeBase64Image(i.data, config.maxImageBytes, `image ${i.id}`) }));
    const result = await service.with(async (serving) => {
      // One vision batch, its decoding in sharp's pool, while the prompt is embedded (search.ts).
      const images = embedNamedImages(serving.embedder, decoded).then((vectors) => decoded.map((d, i) => ({ id: d.id, vector: vectors[i]! })));
      const ranked = await rerank(serving, body.prompt, images, body.countWeight ?? 1);
      return { modelId: serving.modelId, ...ranked };
    });
    api.send(res, "rerank", 200, result);
  }).all(methodNotAllowed(["POST"]));

  router.route("/v1/count").post(json, api.body("count"), async (req, res) => {
    const body = req.body as Schemas["CountRequest"];
    const bytes = decodeBase64Image(body.image, config.maxImageBytes);
    const result = await service.with(async (serving) => {
      // One image, so its errors need no name ("image image: ..." otherwise).
      const [vector] = await serving.embedder.embedImages([bytes]);
      return countDistribution(serving, vector!, body.noun);
    });
    api.send(res, "count", 200, result);
  }).all(methodNotAllowed(["POST"]));

  // Back-pressure refusals say when to come back (RFC 9110 Retry-After, whole seconds).
  router.use(((err, _req, res, next) => {
    if (err instanceof OverloadedError) res.setHeader("Retry-After", String(err.retryAfterSeconds));
    next(err);
  }) as ErrorRequestHandler);

  return router;
}
