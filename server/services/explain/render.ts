/**
 * A relevancy map drawn over the model's view of the image, as PNG: red where a region
 * supports the explained count, blue where it argues against it, opacity by |weight|.
 */
import sharp from "sharp";
import type { ModelView } from "./view.ts";

/** Smallest side of the rendered PNG; small model inputs (48 px) are enlarged to be seen. */
const MIN_SIDE = 256;
const MAX_ALPHA = 0.65;
const SUPPORTS: [number, number, number] = [220, 30, 30];
const AGAINST: [number, number, number] = [30, 90, 230];

/** grid x grid RGBA heat cells, one pixel per cell. */
export function heatPixels(weights: readonly number[][], maxAbs: number): Buffer {
  const grid = weights.length;
  const out = Buffer.alloc(grid * grid * 4);
  weights.forEach((row, r) => row.forEach((w, c) => {
    const colour = w >= 0 ? SUPPORTS : AGAINST;
    const p = (r * grid + c) * 4;
    out.set(colour, p);
    out[p + 3] = maxAbs > 0 ? Math.round(255 * MAX_ALPHA * Math.min(1, Math.abs(w) / maxAbs)) : 0;
  }));
  return out;
}

export async function renderOverlay(view: ModelView, weights: readonly number[][], maxAbs: number): Promise<Buffer> {
  const { rgb, crop } = view;
  const side = crop.side * Math.max(1, Math.ceil(MIN_SIDE / crop.side));
  // The crop may extend past a narrow image (PIL pads with black): extend with black too.
  const padded = await sharp(Buffer.from(rgb.data), { raw: { width: rgb.width, height: rgb.height, channels: 3 } })
    .extend({
      top: Math.max(0, -crop.top), bottom: Math.max(0, crop.top + crop.side - rgb.height),
      left: Math.max(0, -crop.left), right: Math.max(0, crop.left + crop.side - rgb.width),
      background: { r: 0, g: 0, b: 0 },
    })
    .raw()
    .toBuffer({ resolveWithObject: true });
  const base = await sharp(padded.data, { raw: { width: padded.info.width, height: padded.info.height, channels: 3 } })
    .extract({ left: Math.max(0, crop.left), top: Math.max(0, crop.top), width: crop.side, height: crop.side })
    .resize(side, side, { kernel: "nearest" })
    // In grey, so the map's red and blue cannot be confused with the picture's own colours.
    .greyscale()
    .toColourspace("srgb")
    .png()
    .toBuffer();
  const grid = weights.length;
  const heat = await sharp(heatPixels(weights, maxAbs), { raw: { width: grid, height: grid, channels: 4 } })
    .resize(side, side, { kernel: "cubic" })
    .png()
    .toBuffer();
  return sharp(base).composite([{ input: heat }]).png().toBuffer();
}
