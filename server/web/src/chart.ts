/** The count posterior P(n | image, noun), n = 1..10, as a small SVG bar chart with a text equivalent. */
import type { Schemas } from "./api.ts";
import { percent } from "./dom.ts";

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 200;
const HEIGHT = 70;
const BAR_AREA = 56;

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

/** `highlight`: the count the prompt asks for (or the estimate), drawn in the accent colour. */
export function countChart(distribution: Schemas["CountProbability"][], noun: string, highlight: number | null): SVGSVGElement {
  const chart = svg("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, class: "chart", role: "img" });
  const words = distribution.map((d) => `${d.count}: ${percent(d.probability)}`).join(", ");
  chart.setAttribute("aria-label", `How many ${noun}: ${words}`);
  const slot = WIDTH / distribution.length;
  const top = Math.max(...distribution.map((d) => d.probability), 1e-9);
  for (const d of distribution) {
    const x = (d.count - 1) * slot;
    const height = Math.max(1, (d.probability / top) * (BAR_AREA - 10));
    const bar = svg("rect", { x: x + 2, y: BAR_AREA - height, width: slot - 4, height, class: d.count === highlight ? "bar hit" : "bar" });
    bar.append(svg("title", {}));
    bar.firstChild!.textContent = `${d.count}: ${percent(d.probability)}`;
    const label = svg("text", { x: x + slot / 2, y: HEIGHT - 3, "text-anchor": "middle" });
    label.textContent = String(d.count);
    chart.append(bar, label);
  }
  return chart;
}
