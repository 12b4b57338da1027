/**
 * The image as the model sees it: EXIF-oriented, converted to RGB and resized so its shortest
 * edge is the bundle's `size`, exactly as preprocessing does, plus the centre square that
 * preprocessing crops. Occluded copies are made of this view and encoded losslessly, so the
 * encoder's own preprocessing of them is the identity resize followed by the same crop: the
 * baseline and every occluded copy go through one pipeline.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import sharp from "sharp";
import { canDecodeResized, decodeImage, decodeResized, inspectImage, type ImageLimits } from "../../model/image-input.ts";
import { parsePreprocessConfig, resizeShortestEdge, shortestEdgeSize, toRgb, type PreprocessConfig, type RgbImage } from "../../model/preprocess.ts";
import { cellSpan, type OcclusionPlan, type WindowPosition } from "./occlusion.ts";

export interface ModelView {
  /** The resized image (shortest edge = preprocess size). */
  rgb: RgbImage;
  /** The centre crop inside `rgb`, in its pixels (may extend past it when the crop is larger). */
  crop: { left: number; top: number; side: number };
  /** The original's oriented size. */
  original: { width: number; height: number };
  /** Mean colour of preprocessing: zero after normalisation, so an occluder carries no signal. */
  fill: [number, number, number];
}

const configs = new Map<string, Promise<PreprocessConfig>>();

/** preprocess.json of a bundle (already verified when the embedder loaded it). */
export function preprocessOf(bundleDir: string): Promise<PreprocessConfig> {
  let config = configs.get(bundleDir);
  if (!config) {
    config = readFile(path.join(bundleDir, "preprocess.json"), "utf8").then((text) => parsePreprocessConfig(JSON.parse(text)));
    config.catch(() => configs.delete(bundleDir));
    configs.set(bundleDir, config);
  }
  return config;
}

/** Same branches as preprocessInto (model/preprocess.ts), stopping before the crop. */
export async function modelView(bytes: Uint8Array, config: PreprocessConfig, limits: ImageLimits): Promise<ModelView> {
  const info = await inspectImage(bytes, limits);
  const target = shortestEdgeSize(info.orientedWidth, info.orientedHeight, config.size);
  const rgb = config.size < Math.min(info.orientedWidth, info.orientedHeight) && canDecodeResized(info)
    ? await decodeResized(bytes, info, target.width, target.height, limits)
    : await resizeShortestEdge(toRgb(await decodeImage(bytes, limits, info), config.background), config.size);
  const side = config.cropSize;
  return {
    rgb,
    crop: { left: Math.floor((rgb.width - side) / 2), top: Math.floor((rgb.height - side) / 2), side },
    original: { width: info.orientedWidth, height: info.orientedHeight },
    fill: config.mean.map((m) => Math.round(m * 255)) as [number, number, number],
  };
}

/** A lossless PNG of the view with one occluder window filled; no window: the view itself. */
export async function occludedPng(view: ModelView, plan: OcclusionPlan, at?: WindowPosition): Promise<Buffer> {
  const { rgb, crop, fill } = view;
  const data = Buffer.from(rgb.data);
  if (at) {
    const [y0, y1] = cellSpan(at.row, plan.window, plan.grid, crop.side);
    const [x0, x1] = cellSpan(at.col, plan.window, plan.grid, crop.side);
    for (let y = Math.max(0, crop.top + y0); y < Math.min(rgb.height, crop.top + y1); y++) {
      for (let x = Math.max(0, crop.left + x0); x < Math.min(rgb.width, crop.left + x1); x++) {
        const p = (y * rgb.width + x) * 3;
        data[p] = fill[0];
        data[p + 1] = fill[1];
        data[p + 2] = fill[2];
      }
    }
  }
  // Compression level 0: these PNGs live for one forward pass; speed beats size.
  return sharp(data, { raw: { width: rgb.width, height: rgb.height, channels: 3 } }).png({ compressionLevel: 0 }).toBuffer();
}

/** The crop square in the original image's pixels (the view is the original scaled uniformly). */
export function cropInOriginal(view: ModelView): { x: number; y: number; width: number; height: number } {
  const scale = Math.min(view.original.width, view.original.height) / Math.min(view.rgb.width, view.rgb.height);
  const side = view.crop.side * scale;
  return { x: view.crop.left * scale, y: view.crop.top * scale, width: side, height: side };
}
