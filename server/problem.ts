/**
 * RFC 7807 problem details. Handlers throw `Problem`s (or helpers below); one Express error
 * handler turns any error into `application/problem+json`. Errors a client caused map to 4xx;
 * only genuine server faults become 500, and their internals are logged, never sent.
 */
import type { ErrorRequestHandler, RequestHandler } from "express";

export interface FieldError {
  path: string;
  message: string;
}

export class Problem extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail?: string,
    readonly errors?: FieldError[],
    readonly slug: string = slugOf(title),
  ) {
    super(detail ?? title);
  }
}

function slugOf(title: string): string {
  return title.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "");
}

export const badRequest = (detail: string, errors?: FieldError[]) => new Problem(400, "Bad Request", detail, errors);
export const unauthorized = (detail: string) => new Problem(401, "Unauthorized", detail);
export const forbidden = (detail: string) => new Problem(403, "Forbidden", detail);
export const notFound = (detail: string) => new Problem(404, "Not Found", detail);
export const conflict = (detail: string) => new Problem(409, "Conflict", detail);
export const unprocessable = (detail: string, slug = "unprocessable-image") => new Problem(422, "Unprocessable Content", detail, undefined, slug);
export const unavailable = (detail: string) => new Problem(503, "Service Unavailable", detail);

/** Body-parser errors carry `type` and `status`; map them to client problems. */
function fromBodyParser(err: { type?: unknown; status?: unknown; message?: string }): Problem | undefined {
  switch (err.type) {
    case "entity.parse.failed":
      return new Problem(400, "Malformed JSON", `request body is not valid JSON: ${err.message ?? ""}`.trim());
    case "entity.too.large":
      return new Problem(413, "Payload Too Large", "request body exceeds the configured limit");
    case "encoding.unsupported":
    case "charset.unsupported":
      return new Problem(415, "Unsupported Media Type", err.message);
    case "request.aborted":
      return new Problem(400, "Bad Request", "request aborted by the client");
    default:
      if (typeof err.status === "number" && err.status >= 400 && err.status < 500) {
        return new Problem(err.status, "Bad Request", err.message);
      }
      return undefined;
  }
}

/** Errors from other modules that know their HTTP status (ImageInputError: 4xx). */
function fromStatusError(err: unknown): Problem | undefined {
  if (!(err instanceof Error)) return undefined;
  const status = (err as { status?: unknown }).status;
  const code = (err as { code?: unknown }).code;
  if (typeof status !== "number" || status < 400 || status >= 500) return undefined;
  const title = status === 413 ? "Payload Too Large" : status === 415 ? "Unsupported Media Type" : "Unprocessable Content";
  return new Problem(status, title, err.message, undefined, typeof code === "string" ? code.replace(/_/g, "-") : slugOf(title));
}

export function toProblem(err: unknown): Problem {
  if (err instanceof Problem) return err;
  const mapped = fromBodyParser(err as never) ?? fromStatusError(err);
  if (mapped) return mapped;
  return new Problem(500, "Internal Server Error", "the server failed to handle the request; see its log");
}

export function sendProblem(res: Parameters<RequestHandler>[1], problem: Problem, instance?: string): void {
  const body: Record<string, unknown> = {
    type: `https://countclip.dev/problems/${problem.slug}`,
    title: problem.title,
    status: problem.status,
  };
  if (problem.detail !== undefined) body["detail"] = problem.detail;
  if (instance !== undefined) body["instance"] = instance;
  if (problem.errors) body["errors"] = problem.errors;
  res.status(problem.status).type("application/problem+json").send(JSON.stringify(body));
}

export const problemHandler: ErrorRequestHandler = (err, req, res, _next) => {
  const problem = toProblem(err);
  if (problem.status >= 500 && !(err instanceof Problem)) console.error(`${req.method} ${req.originalUrl}:`, err);
  if (res.headersSent) {
    res.end();
    return;
  }
  sendProblem(res, problem, req.originalUrl);
};

export const notFoundHandler: RequestHandler = (req, _res, next) => {
  next(notFound(`no route for ${req.method} ${req.path}`));
};
