/**
 * The countclip page: four views (search, rerank, count, index) in one document, switched by
 * ?view=… so every view has a URL and works with Back/Forward; a relevancy-map dialog shared by all.
 */
import { byId } from "./dom.ts";
import { setupCount } from "./count-view.ts";
import { setupExplainDialog } from "./explain-dialog.ts";
import { setupIndex, showIndexView } from "./index-view.ts";
import { setupRerank } from "./rerank-view.ts";
import { readSearchUrl, searchNow, setupSearch } from "./search-view.ts";

const VIEWS = ["search", "rerank", "count", "index"] as const;
type View = (typeof VIEWS)[number];

function viewOf(params: URLSearchParams): View {
  const v = params.get("view");
  return (VIEWS as readonly string[]).includes(v ?? "") ? (v as View) : "search";
}

function show(view: View, focus: boolean): void {
  for (const v of VIEWS) byId(`view-${v}`).hidden = v !== view;
  for (const link of document.querySelectorAll<HTMLAnchorElement>("nav a[data-view]")) {
    if (link.dataset["view"] === view) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = `countclip: ${view}`;
  if (view === "index") void showIndexView();
  // Keyboard and screen-reader users land on the new view's first control.
  if (focus) byId(`${view}-title`).parentElement?.querySelector<HTMLElement>("input, button")?.focus();
}

function navigate(view: View): void {
  const url = new URL(location.href);
  if (view === "search") url.searchParams.delete("view");
  else url.searchParams.set("view", view);
  history.pushState(null, "", url);
  show(view, true);
}

function start(): void {
  setupExplainDialog();
  setupSearch();
  setupRerank();
  setupCount();
  setupIndex();
  for (const link of document.querySelectorAll<HTMLAnchorElement>("nav a[data-view]")) {
    link.addEventListener("click", (e) => {
      if (e.metaKey || e.ctrlKey || e.shiftKey) return; // let "open in new tab" work
      e.preventDefault();
      navigate(link.dataset["view"] as View);
    });
  }
  window.addEventListener("popstate", () => {
    const params = new URLSearchParams(location.search);
    readSearchUrl(params);
    show(viewOf(params), false);
  });
  const params = new URLSearchParams(location.search);
  readSearchUrl(params);
  show(viewOf(params), false);
  searchNow();
}

start();
