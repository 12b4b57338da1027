/** GET /v1/index, POST /v1/index/rebuild, GET /v1/model. */
import { Router } from "express";
import type { components } from "../api/types.gen.ts";
import { confine } from "../paths.ts";
import type { IndexService } from "../service.ts";
import { methodNotAllowed, type RouteContext } from "./context.ts";

type IndexStatus = components["schemas"]["IndexStatus"];

export function indexStatus(service: IndexService): IndexStatus {
  const rebuild = service.rebuild;
  const status: IndexStatus = {
    ready: service.ready,
    size: 0,
    rebuild: { ...rebuild, progress: rebuild.total > 0 ? rebuild.done / rebuild.total : rebuild.state === "succeeded" ? 1 : 0 },
  };
  if (!service.ready) return status;
  const serving = service.acquireUnleased();
  return {
    ...status,
    size: serving.index.size,
    modelId: serving.modelId,
    modelDir: serving.modelDir,
    indexBuild: serving.build,
    generation: service.generation,
    dim: serving.index.dim,
  };
}

export function indexRoutes(ctx: RouteContext): Router {
  const { api, config, service, json, auth } = ctx;
  const router = Router();

  router.route("/v1/index").get((_req, res) => {
    api.send(res, "getIndex", 200, indexStatus(service));
  }).all(methodNotAllowed(["GET"]));

  router.route("/v1/index/rebuild").post(auth, json, api.body("rebuildIndex"), async (req, res) => {
    const requested = (req.body as components["schemas"]["RebuildRequest"]).modelDir;
    const modelDir = requested === undefined ? undefined : await confine(requested, config.modelRoots, "model dir");
    service.startRebuild(modelDir);
    api.send(res, "rebuildIndex", 202, indexStatus(service));
  }).all(methodNotAllowed(["POST"]));

  router.route("/v1/model").get((_req, res) => {
    const { embedder } = service.acquireUnleased();
    api.send(res, "getModel", 200, {
      modelId: embedder.modelId,
      modelDir: embedder.bundleDir,
      dim: embedder.dim,
      logitScale: embedder.logitScale,
      manifest: embedder.manifest as Record<string, unknown>,
    });
  }).all(methodNotAllowed(["GET"]));

  return router;
}
