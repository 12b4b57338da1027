/** A few DOM helpers, so views read as what they show. */

type Attrs = Record<string, string | number | boolean | undefined>;

/** Create an element with attributes and children (strings become text, never HTML). */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Array<Node | string>): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    if (name === "class") el.className = String(value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  el.append(...children);
  return el;
}

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`the page has no #${id}`);
  return el as T;
}

/** Show `message` in an error region (role=alert), or hide it when undefined. */
export function showError(el: HTMLElement, message: string | undefined): void {
  el.hidden = message === undefined;
  el.textContent = message ?? "";
}

export function percent(p: number): string {
  return `${(100 * p).toFixed(p >= 0.1 ? 0 : 1)}%`;
}

export function fixed(x: number, digits = 3): string {
  return x.toFixed(digits);
}

/** A range input mirrored into its <output>. */
export function bindSlider(input: HTMLInputElement, output: HTMLOutputElement, onChange?: () => void): void {
  const show = () => (output.value = Number(input.value).toFixed(1));
  input.addEventListener("input", () => {
    show();
    onChange?.();
  });
  show();
}
