/** GET /v1/index, POST /v1/index/rebuild, GET /v1/model, GET /v1/gallery. */
import { Router } from "express";
import type { components } from "../../api/types.gen.ts";
import type { ItemMeta } from "../../../index/backend.ts";
import { type GalleryLabel, galleryLabels } from "../../services/gallery.ts";
import { confine, displayPath, redactRoots } from "../../lib/paths.ts";
import type { IndexService } from "../../services/index-service.ts";
import { methodNotAllowed, type RouteContext } from "./context.ts";

type IndexStatus = components["schemas"]["IndexStatus"];
type GallerySummary = components["schemas"]["GallerySummary"];

/** Items per second over a job's run (so far, while it runs). */
function rateOf(done: number, startedAt: string | undefined, finishedAt: string | undefined): number {
  if (!startedAt) return 0;
  const seconds = ((finishedAt ? Date.parse(finishedAt) : Date.now()) - Date.parse(startedAt)) / 1000;
  return seconds > 0 ? done / seconds : 0;
}

export async function indexStatus(service: IndexService): Promise<IndexStatus> {
  const rebuild = service.rebuild;
  const roots = service.config.modelRoots;
  const status: IndexStatus = {
    ready: service.ready,
    size: 0,
    rebuild: {
      ...rebuild,
      progress: rebuild.total > 0 ? rebuild.done / rebuild.total : rebuild.state === "succeeded" ? 1 : 0,
      rate: rateOf(rebuild.done, rebuild.startedAt, rebuild.finishedAt),
    },
    import: service.imports.current,
  };
  if (rebuild.modelDir !== undefined) status.rebuild.modelDir = displayPath(rebuild.modelDir, roots);
  if (rebuild.error !== undefined) status.rebuild.error = redactRoots(rebuild.error, roots);
  if (!service.ready) return status;
  const serving = service.acquireUnleased();
  const backend = service.backend.status();
  return {
    ...status,
    backend: backend.kind,
    ...(backend.walRecords === undefined ? {} : { walRecords: backend.walRecords }),
    size: await serving.index.size(),
    modelId: serving.modelId,
    modelDir: displayPath(serving.modelDir, roots),
    indexBuild: serving.build,
    generation: service.generation,
    dim: serving.index.dim,
  };
}

export function indexRoutes(ctx: RouteContext): Router {
  const { api, config, service, json, auth } = ctx;
  const router = Router();

  router.route("/v1/index").get(async (_req, res) => {
    api.send(res, "getIndex", 200, await indexStatus(service));
  }).all(methodNotAllowed(["GET"]));

  router.route("/v1/index/rebuild").post(auth, json, api.body("rebuildIndex"), async (req, res) => {
    const requested = (req.body as components["schemas"]["RebuildRequest"]).modelDir;
    const modelDir = requested === undefined ? undefined : await confine(requested, config.modelRoots, "model dir");
    await service.startRebuild(modelDir);
    api.send(res, "rebuildIndex", 202, await indexStatus(service));
  }).all(methodNotAllowed(["POST"]));

  router.route("/v1/index/import").post(auth, json, api.body("importIndex"), async (req, res) => {
    const requested = (req.body as components["schemas"]["ImportRequest"]).path;
    await service.startImport(await confine(requested, config.importRoots, "import path"));
    api.send(res, "importIndex", 202, await indexStatus(service));
  }).all(methodNotAllowed(["POST"]));

  router.route("/v1/model").get((_req, res) => {
    const { embedder } = service.acquireUnleased();
    api.send(res, "getModel", 200, {
      modelId: embedder.modelId,
      modelDir: displayPath(embedder.bundleDir, config.modelRoots),
      dim: embedder.dim,
      logitScale: embedder.logitScale,
      manifest: embedder.manifest as Record<string, unknown>,
    });
  }).all(methodNotAllowed(["GET"]));

  router.route("/v1/gallery").get(async (_req, res) => {
    const labels = await galleryLabels(config.galleryDir);
    api.send(res, "getGallery", 200, gallerySummary(labels, await service.acquireUnleased().index.items()));
  }).all(methodNotAllowed(["GET"]));

  return router;
}

/** Kinds and counts of the gallery images the index holds now (deleted ones are not listed). */
export function gallerySummary(labels: Map<string, GalleryLabel>, items: ItemMeta[]): GallerySummary {
  const kinds = new Map<string, { noun: string | null; images: number; counts: Map<number, number> }>();
  let labelled = 0;
  for (const item of items) {
    const label = labels.get(item.id);
    // The id may have been deleted and reused by an upload: only the gallery's own image counts.
    if (!label || item.source !== `gallery:${label.file}`) continue;
    labelled++;
    const key = label.kind ?? label.noun ?? "unknown";
    const kind = kinds.get(key) ?? { noun: label.noun, images: 0, counts: new Map() };
    kind.images++;
    if (label.count !== null) kind.counts.set(label.count, (kind.counts.get(label.count) ?? 0) + 1);
    kinds.set(key, kind);
  }
  return {
    images: labelled,
    unlabelled: items.length - labelled,
    kinds: [...kinds].sort(([a], [b]) => a.localeCompare(b)).map(([kind, k]) => ({
      kind,
      noun: k.noun,
      images: k.images,
      counts: [...k.counts].sort(([a], [b]) => a - b).map(([count, images]) => ({ count, images })),
    })),
  };
}
