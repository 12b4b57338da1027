/** GET /v1/images/{id}/content: an indexed image's stored bytes, for showing it in a page. */
import { Router } from "express";
import sharp from "sharp";
import { badRequest } from "../../lib/problem.ts";
import { storedBytes } from "../../services/stored-images.ts";
import { methodNotAllowed, type RouteContext } from "./context.ts";

const ID = /^[A-Za-z0-9][A-Za-z0-9._:-]*$/;

/** Formats every browser shows, by their magic bytes. */
export function browserType(bytes: Buffer): string | undefined {
  if (bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return "image/jpeg";
  if (bytes.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) return "image/png";
  if (bytes.subarray(0, 4).toString("latin1") === "GIF8") return "image/gif";
  if (bytes.subarray(0, 4).toString("latin1") === "RIFF" && bytes.subarray(8, 12).toString("latin1") === "WEBP") return "image/webp";
  return undefined;
}

export function imageContentRoutes(ctx: RouteContext): Router {
  const { config, service } = ctx;
  const router = Router();

  router.route("/v1/images/:id/content").get(async (req, res) => {
    const id = req.params["id"] as string;
    if (id.length > 128 || !ID.test(id)) throw badRequest(`invalid image id ${JSON.stringify(id)}`, [{ path: "id", message: "must match ^[A-Za-z0-9][A-Za-z0-9._:-]*$ (at most 128 characters)" }]);
    const { bytes, sha256 } = await service.with((serving) => storedBytes(service, serving, id));
    const etag = `"${sha256}"`;
    // An id can be deleted and re-added with other bytes: revalidate hourly, never immutable.
    res.setHeader("ETag", etag);
    res.setHeader("Cache-Control", "public, max-age=3600");
    if (req.headers["if-none-match"] === etag) {
      res.status(304).end();
      return;
    }
    const type = browserType(bytes);
    if (type) {
      res.type(type).send(bytes);
      return;
    }
    // TIFF and AVIF (accepted for indexing) are not shown by every browser: send PNG.
    res.type("png").send(await sharp(bytes, { limitInputPixels: config.maxPixels, autoOrient: true }).png().toBuffer());
  }).all(methodNotAllowed(["GET"]));

  return router;
}
