/**
 * The relevancy map dialog: asks POST /v1/explain for the occlusion weights and draws them
 * over the part of the image the model sees. Used by every view's "Explain" button.
 */
import { isAbort, postJson, type Schemas } from "./api.ts";
import { byId, percent, showError } from "./dom.ts";

export type ExplainSubject =
  | { kind: "indexed"; id: string; src: string; query?: string; noun?: string; count?: number }
  | { kind: "upload"; data: string; src: string; label: string; query?: string; noun?: string; count?: number };

const SIDE = 320;
const MAX_ALPHA = 0.65;

let controller: AbortController | undefined;
let opener: HTMLElement | null = null;

function loadImage(src: string): Promise<HTMLImageElement> {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error("the image could not be loaded"));
    img.src = src;
  });
}

/** Heat cells, one pixel each, enlarged smoothly by drawImage. */
function heatCanvas(map: Schemas["ExplainResponse"]): HTMLCanvasElement {
  const cells = document.createElement("canvas");
  cells.width = map.grid;
  cells.height = map.grid;
  const ctx = cells.getContext("2d")!;
  const pixels = ctx.createImageData(map.grid, map.grid);
  map.weights.forEach((row, r) => row.forEach((w, c) => {
    const p = (r * map.grid + c) * 4;
    const [red, green, blue] = w >= 0 ? [220, 30, 30] : [30, 90, 230];
    pixels.data.set([red, green, blue, map.maxAbs > 0 ? Math.round(255 * MAX_ALPHA * Math.min(1, Math.abs(w) / map.maxAbs)) : 0], p);
  }));
  ctx.putImageData(pixels, 0, 0);
  return cells;
}

function draw(canvas: HTMLCanvasElement, img: HTMLImageElement, map: Schemas["ExplainResponse"]): void {
  const ctx = canvas.getContext("2d")!;
  ctx.clearRect(0, 0, SIDE, SIDE);
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, SIDE, SIDE);
  // The map covers the model's centre crop, given in the image's own pixels.
  const scaleX = img.naturalWidth / map.image.width;
  const scaleY = img.naturalHeight / map.image.height;
  // In grey, so the red and blue of the map cannot be confused with the picture's own colours.
  ctx.filter = "grayscale(100%) contrast(0.8) brightness(1.1)";
  ctx.drawImage(img, map.crop.x * scaleX, map.crop.y * scaleY, map.crop.width * scaleX, map.crop.height * scaleY, 0, 0, SIDE, SIDE);
  ctx.filter = "none";
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(heatCanvas(map), 0, 0, SIDE, SIDE);
}

/** Words for the strongest cell: "top left", "centre", ... */
function place(row: number, col: number, grid: number): string {
  const third = (i: number) => Math.min(2, Math.floor((3 * i) / grid));
  const v = ["top", "middle", "bottom"][third(row)]!;
  const h = ["left", "centre", "right"][third(col)]!;
  return v === "middle" && h === "centre" ? "centre" : `${v} ${h}`;
}

function summary(map: Schemas["ExplainResponse"]): string {
  let best = { w: -Infinity, r: 0, c: 0 };
  map.weights.forEach((row, r) => row.forEach((w, c) => {
    if (w > best.w) best = { w, r, c };
  }));
  const whole = `P(${map.count} ${map.noun}) = ${percent(map.probability)} for the whole image (the model’s estimate: ${map.estimatedCount}).`;
  if (!(best.w > 0)) return `${whole} No region raises the model’s belief in ${map.count}.`;
  return `${whole} The region that most supports ${map.count} is at the ${place(best.r, best.c, map.grid)}. ${map.passes} passes through the vision encoder, ${map.grid}×${map.grid} cells.`;
}

/** Defaults (grid, window, format) left to the server. */
function request(subject: ExplainSubject): Partial<Schemas["ExplainRequest"]> {
  const body: Partial<Schemas["ExplainRequest"]> = subject.kind === "indexed" ? { id: subject.id } : { image: subject.data };
  if (subject.query) body.query = subject.query;
  if (subject.noun) body.noun = subject.noun;
  if (subject.count !== undefined) body.count = subject.count;
  return body;
}

export async function openExplain(subject: ExplainSubject, from: HTMLElement | null): Promise<void> {
  const dialog = byId<HTMLDialogElement>("explain");
  const canvas = byId<HTMLCanvasElement>("explain-canvas");
  const status = byId("explain-status");
  const error = byId("explain-error");
  const label = subject.kind === "indexed" ? subject.id : subject.label;
  opener = from;
  controller?.abort();
  controller = new AbortController();
  const signal = controller.signal;
  byId("explain-title").textContent = `Relevancy map: ${label}`;
  byId("explain-summary").textContent = "";
  canvas.removeAttribute("data-ready");
  showError(error, undefined);
  status.textContent = "Computing the relevancy map…";
  if (!dialog.open) dialog.showModal();
  try {
    const [map, img] = await Promise.all([postJson<Schemas["ExplainResponse"]>("/v1/explain", request(subject), { signal }), loadImage(subject.src)]);
    draw(canvas, img, map);
    const text = summary(map);
    canvas.setAttribute("aria-label", `Relevancy map of ${map.count} ${map.noun} over ${label}. ${text}`);
    canvas.dataset["ready"] = "true";
    canvas.dataset["cells"] = String(map.grid * map.grid);
    canvas.dataset["count"] = String(map.count);
    byId("explain-title").textContent = `Where the model sees ${map.count} ${map.noun}: ${label}`;
    byId("explain-summary").textContent = text;
    status.textContent = "";
  } catch (err) {
    if (isAbort(err)) return;
    status.textContent = "";
    showError(error, `Could not compute the relevancy map: ${(err as Error).message}`);
  }
}

export function setupExplainDialog(): void {
  const dialog = byId<HTMLDialogElement>("explain");
  byId("explain-close").addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => {
    controller?.abort();
    opener?.focus();
  });
  // A click on the backdrop (outside the dialog's box) closes it too.
  dialog.addEventListener("click", (e) => {
    if (e.target === dialog) {
      const box = dialog.getBoundingClientRect();
      const inside = e.clientX >= box.left && e.clientX <= box.right && e.clientY >= box.top && e.clientY <= box.bottom;
      if (!inside) dialog.close();
    }
  });
}
