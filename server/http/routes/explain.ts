/** POST /v1/explain: a count's relevancy map as JSON weights or a PNG overlay. */
import { Router } from "express";
import type { components } from "../../api/types.gen.ts";
import { explain, planOf, targetOf } from "../../services/explain/explain.ts";
import { decodeBase64Image } from "../../services/images.ts";
import { storedBytes } from "../../services/stored-images.ts";
import { methodNotAllowed, type RouteContext } from "./context.ts";

type ExplainRequest = components["schemas"]["ExplainRequest"];

export function explainRoutes(ctx: RouteContext): Router {
  const { api, config, service, json } = ctx;
  const router = Router();
  const limits = { maxPixels: config.maxPixels, maxInputBytes: config.maxImageBytes };

  router.route("/v1/explain").post(json, api.body("explain"), async (req, res) => {
    const body = req.body as ExplainRequest;
    const plan = planOf(body);
    const target = targetOf(body);
    const uploaded = body.image !== undefined ? decodeBase64Image(body.image, config.maxImageBytes) : undefined;
    await service.with(async (serving) => {
      const bytes = uploaded ?? (await storedBytes(service, serving, body.id!)).bytes;
      const result = await explain(serving, bytes, target, plan, limits);
      if (body.format === "png") {
        res.type("png").setHeader("Cache-Control", "no-store");
        res.send(await result.png());
      } else {
        api.send(res, "explain", 200, result.response);
      }
    });
  }).all(methodNotAllowed(["POST"]));

  return router;
}
