/**
 * What went wrong, as RFC 7807 problem details say it: a status, a title and a detail. Every
 * layer throws `Problem`s (or the helpers below) for errors a client caused; http/
 * (problem-details.ts) renders any error as `application/problem+json`. Only genuine server
 * faults become 500, and their internals are logged, never sent. Nothing here knows Express.
 */
import { STATUS_CODES } from "node:http";

export interface FieldError {
  path: string;
  message: string;
}

export class Problem extends Error {
  /** The problem type: its URI is PROBLEM_BASE + slug (http/problem-details.ts), one slug per title. */
  readonly slug: string;
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail?: string,
    readonly errors?: FieldError[],
  ) {
    super(detail ?? title);
    this.slug = slugOf(title);
  }
}

/** The type is derived from the title, so one title never hides two types nor one type two titles. */
export function slugOf(title: string): string {
  return title.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "");
}

export const badRequest = (detail: string, errors?: FieldError[]) => new Problem(400, "Bad Request", detail, errors);
export const unauthorized = (detail: string) => new Problem(401, "Unauthorized", detail);
export const forbidden = (detail: string) => new Problem(403, "Forbidden", detail);
export const notFound = (detail: string) => new Problem(404, "Not Found", detail);
export const conflict = (detail: string) => new Problem(409, "Conflict", detail);
export const unavailable = (detail: string) => new Problem(503, "Service Unavailable", detail);

/** Errors from other modules that know their HTTP status and title (ImageInputError). */
function fromStatusError(err: unknown): Problem | undefined {
  if (!(err instanceof Error)) return undefined;
  const { status, title } = err as { status?: unknown; title?: unknown };
  if (typeof status !== "number" || status < 400 || status >= 500) return undefined;
  return new Problem(status, typeof title === "string" ? title : STATUS_CODES[status] ?? "Bad Request", err.message);
}

/**
 * Any error as the problem a client is told of: a Problem as it is, an error that knows its 4xx
 * status (ImageInputError) with its own title, anything else a 500 that reveals nothing.
 */
export function toProblem(err: unknown): Problem {
  if (err instanceof Problem) return err;
  return fromStatusError(err) ?? new Problem(500, "Internal Server Error", "the server failed to handle the request; see its log");
}
