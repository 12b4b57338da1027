/** GET /healthz (liveness), /readyz (readiness), /metrics (Prometheus). */
import { Router } from "express";
import { unavailable } from "../../lib/problem.ts";
import { methodNotAllowed, type RouteContext } from "./context.ts";

export function opsRoutes(ctx: RouteContext): Router {
  const { api, service, metrics } = ctx;
  const router = Router();

  router.route("/healthz").get((_req, res) => {
    api.send(res, "healthz", 200, { status: "ok" });
  }).all(methodNotAllowed(["GET"]));

  router.route("/readyz").get((_req, res) => {
    if (!service.ready) throw unavailable("the model and index are still loading");
    const serving = service.acquireUnleased();
    api.send(res, "readyz", 200, { status: "ready", modelId: serving.modelId, indexBuild: serving.build });
  }).all(methodNotAllowed(["GET"]));

  router.route("/metrics").get(async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  }).all(methodNotAllowed(["GET"]));

  return router;
}
