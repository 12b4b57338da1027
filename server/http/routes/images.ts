/** POST /v1/images, GET and DELETE /v1/images/{id}. */
import { createHash } from "node:crypto";
import { Router } from "express";
import type { components } from "../../api/types.gen.ts";
import { decodeBase64Image } from "../../services/images.ts";
import { displayPath, displaySource, readConfinedFile } from "../../lib/paths.ts";
import { badRequest, notFound } from "../../lib/problem.ts";
import { methodNotAllowed, type RouteContext } from "./context.ts";

type AddImage = components["schemas"]["AddImageRequest"];
const ID = /^[A-Za-z0-9][A-Za-z0-9._:-]*$/;

function checkId(id: string): string {
  if (id.length > 128 || !ID.test(id)) throw badRequest(`invalid image id ${JSON.stringify(id)}`, [{ path: "id", message: "must match ^[A-Za-z0-9][A-Za-z0-9._:-]*$ (at most 128 characters)" }]);
  return id;
}

export function imageRoutes(ctx: RouteContext): Router {
  const { api, config, service, json, auth } = ctx;
  const router = Router();

  router.route("/v1/images").post(auth, json, api.body("addImage"), async (req, res) => {
    const body = req.body as AddImage;
    const { bytes, source } = body.path !== undefined
      ? await readConfinedFile(body.path, config.imageRoots, config.maxImageBytes).then((f) => ({ bytes: f.bytes, source: `path:${displayPath(f.real, config.imageRoots)}` }))
      : { bytes: decodeBase64Image(body.data!, config.maxImageBytes), source: "upload" };
    // Without a client id the content names the image, so a re-upload is a 409, not a duplicate.
    const id = body.id ?? `img-${createHash("sha256").update(bytes).digest("hex").slice(0, 16)}`;
    const { meta, modelId } = await service.add(id, bytes, source);
    res.location(`/v1/images/${encodeURIComponent(id)}`);
    api.send(res, "addImage", 201, { ...meta, modelId });
  }).all(methodNotAllowed(["POST"]));

  router.route("/v1/images/:id")
    .get(async (req, res) => {
      const id = checkId(req.params["id"] as string);
      const serving = service.acquireUnleased();
      const meta = await serving.index.get(id);
      if (!meta) throw notFound(`no image ${id}`);
      api.send(res, "getImage", 200, { ...meta, source: displaySource(meta.source, config.imageRoots), modelId: serving.modelId });
    })
    .delete(auth, async (req, res) => {
      await service.remove(checkId(req.params["id"] as string));
      res.status(204).end();
    })
    .all(methodNotAllowed(["GET", "DELETE"]));

  return router;
}
