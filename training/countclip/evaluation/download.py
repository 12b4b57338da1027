"""A downloader for benchmark images on the open web, where links die and hosts misbehave.

    results = fetch_all(urls, cache_dir, DownloadConfig(workers=16))
    write_download_report(results, "dead_links.json")

Guarantees: every URL ends with exactly one classified `FetchResult`; no request outlives
`timeout` per socket operation and `deadline` per attempt (slow-drip bodies included); bodies
are capped at `max_bytes`; only image content types are accepted and every image is fully
decoded with a pixel cap (decompression bombs) before it is cached; transient failures
(timeouts, resets, 429, 5xx) are retried with exponential backoff and jitter; threads work in
parallel, so one bad host costs one worker a bounded time and never stops the run.

Cache: `<cache>/<k[:2]>/<k>.img` with `k = sha256(url)`, and `<k>.json` recording the URL, the
content's sha256 and the outcome. A cached image is reused only when its sha256 still matches;
permanent failures (404, not an image ...) are remembered so reruns do not hammer dead hosts
(`retry_failed=True` forgets them).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import random
import socket
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from countclip.evaluation.images import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, ImageRejected, decode_image

# Outcomes. OK_STATUSES carry an image; RETRYABLE ones may succeed later; PERMANENT ones are cached;
# "dns_error" is neither (a dead domain, or no network at all: not worth retrying now, worth it later).
OK_STATUSES = ("ok", "cached")
RETRYABLE = frozenset({"timeout", "connection_error", "server_error", "rate_limited"})
PERMANENT = frozenset({"not_found", "http_error", "bad_content_type", "too_large", "too_many_pixels",
                       "truncated", "undecodable", "invalid_url"})
# S3 and some CDNs label images as generic bytes; the decode check decides for those.
GENERIC_TYPES = frozenset({"application/octet-stream", "binary/octet-stream"})


@dataclass(frozen=True)
class DownloadConfig:
    timeout: float = 10.0          # seconds per socket operation (connect, each read)
    deadline: float = 30.0         # seconds per attempt, whole body included (slow drip)
    max_bytes: int = DEFAULT_MAX_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS
    retries: int = 2               # extra attempts for RETRYABLE outcomes
    backoff: float = 1.0           # seconds before the first retry, doubled each time, +-50% jitter
    workers: int = 16
    retry_failed: bool = False     # ignore cached permanent failures
    user_agent: str = "countclip-eval/0.1 (CountBench image fetcher)"


@dataclass
class FetchResult:
    url: str
    status: str
    path: str | None = None
    sha256: str | None = None
    bytes: int = 0
    http_status: int | None = None
    content_type: str | None = None
    detail: str = ""
    attempts: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status in OK_STATUSES


class _Failure(Exception):
    def __init__(self, status: str, detail: str, http_status: int | None = None,
                 content_type: str | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.http_status, self.content_type = status, detail, http_status, content_type


# --- One HTTP attempt --------------------------------------------------------------------------

def _read_body(response: Any, config: DownloadConfig, started: float) -> bytes:
    chunks, total = [], 0
    while True:
        if time.monotonic() - started > config.deadline:
            raise _Failure("timeout", f"body not complete after {config.deadline:g}s (slow transfer)")
        # read1: at most one socket read, so a trickling body cannot hold us past the deadline
        # (read(n) keeps reading until n bytes arrive, however slowly they come).
        chunk = response.read1(64 * 1024)
        if not chunk:
            return b"".join(chunks)
        total += len(chunk)
        if total > config.max_bytes:
            raise _Failure("too_large", f"body exceeds {config.max_bytes} bytes")
        chunks.append(chunk)


def _http_failure(error: urllib.error.HTTPError) -> _Failure:
    code = error.code
    status = ("not_found" if code in (404, 410) else "rate_limited" if code == 429
              else "server_error" if code >= 500 else "http_error")
    return _Failure(status, f"HTTP {code} {error.reason}", http_status=code)


def _attempt(url: str, config: DownloadConfig) -> tuple[bytes, str, int]:
    """(body, content type, HTTP status) or raises _Failure."""
    request = urllib.request.Request(url, headers={"User-Agent": config.user_agent, "Accept": "image/*"})
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=config.timeout) as response:
            content_type = response.headers.get_content_type()
            if not (content_type.startswith("image/") or content_type in GENERIC_TYPES):
                raise _Failure("bad_content_type", f"content type {content_type!r} is not an image",
                               response.status, content_type)
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > config.max_bytes:
                raise _Failure("too_large", f"Content-Length {declared} exceeds {config.max_bytes} bytes",
                               response.status, content_type)
            body = _read_body(response, config, started)
            if declared and declared.isdigit() and len(body) < int(declared):
                # read(amt) returns short at EOF instead of raising IncompleteRead: check ourselves.
                raise _Failure("truncated", f"connection closed after {len(body)} of {declared} bytes",
                               response.status, content_type)
            return body, content_type, response.status
    except _Failure:
        raise
    except urllib.error.HTTPError as error:
        raise _http_failure(error) from error
    except http.client.IncompleteRead as error:
        raise _Failure("truncated", f"connection closed after {len(error.partial)} bytes, "
                                    f"{error.expected} more expected") from error
    except (socket.timeout, TimeoutError) as error:
        raise _Failure("timeout", f"no response within {config.timeout:g}s") from error
    except urllib.error.URLError as error:
        if isinstance(error.reason, (socket.timeout, TimeoutError)):
            raise _Failure("timeout", f"no connection within {config.timeout:g}s") from error
        if isinstance(error.reason, socket.gaierror):
            # Dead domains are common in old benchmarks; not retried, and not cached (offline looks the same).
            raise _Failure("dns_error", f"cannot resolve host ({error.reason})") from error
        raise _Failure("connection_error", str(error.reason)) from error
    except (http.client.HTTPException, OSError, ValueError) as error:
        raise _Failure("connection_error", f"{type(error).__name__}: {error}") from error


# --- Cache ---------------------------------------------------------------------------------------

def url_key(url: str) -> str:
    return hashlib.sha256(url.encode("utf-8")).hexdigest()


class ImageCache:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def paths(self, url: str) -> tuple[Path, Path]:
        key = url_key(url)
        folder = self.root / key[:2]
        return folder / f"{key}.img", folder / f"{key}.json"

    def lookup(self, url: str, config: DownloadConfig) -> FetchResult | None:
        image_path, meta_path = self.paths(url)
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None
        if meta.get("url") != url:
            return None
        if meta.get("status") in OK_STATUSES:
            if image_path.is_file() and _sha256_file(image_path) == meta.get("sha256"):
                return FetchResult(url, "cached", str(image_path), meta["sha256"], image_path.stat().st_size,
                                   meta.get("http_status"), meta.get("content_type"), "from cache")
            return None  # the cached file went missing or changed: fetch again
        if meta.get("status") in PERMANENT and not config.retry_failed:
            return FetchResult(url, meta["status"], http_status=meta.get("http_status"),
                               content_type=meta.get("content_type"), detail=f"{meta.get('detail', '')} (cached)")
        return None

    def store(self, result: FetchResult, body: bytes | None) -> None:
        image_path, meta_path = self.paths(result.url)
        image_path.parent.mkdir(parents=True, exist_ok=True)
        if body is not None:
            _write_atomic(image_path, body)
            result.path = str(image_path)
        meta = {k: v for k, v in asdict(result).items() if k not in ("path", "extra")}
        meta["fetched_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        _write_atomic(meta_path, json.dumps(meta, indent=1).encode("utf-8"))


def _sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --- Fetching --------------------------------------------------------------------------------------

def _validated(url: str, config: DownloadConfig) -> FetchResult:
    """One URL end to end: attempts with backoff, then the decode check."""
    if not isinstance(url, str) or not url.lower().startswith(("http://", "https://")):
        return FetchResult(str(url), "invalid_url", detail="only http(s) URLs are fetched")
    attempts = 0
    while True:
        attempts += 1
        try:
            body, content_type, http_status = _attempt(url, config)
            break
        except _Failure as failure:
            if failure.status in RETRYABLE and attempts <= config.retries:
                time.sleep(config.backoff * 2 ** (attempts - 1) * random.uniform(0.5, 1.5))
                continue
            return FetchResult(url, failure.status, http_status=failure.http_status,
                               content_type=failure.content_type, detail=failure.detail, attempts=attempts)
    result = FetchResult(url, "ok", sha256=hashlib.sha256(body).hexdigest(), bytes=len(body),
                         http_status=http_status, content_type=content_type, attempts=attempts)
    try:
        image = decode_image(body, config.max_pixels)
        result.extra["size"] = list(image.size)
    except ImageRejected as rejected:
        result.status, result.detail = rejected.reason, rejected.detail
    result.extra["body"] = body if result.ok else None
    return result


def fetch(url: str, cache: ImageCache, config: DownloadConfig) -> FetchResult:
    cached = cache.lookup(url, config)
    if cached is not None:
        return cached
    try:
        result = _validated(url, config)
    except Exception as error:  # a bug or an exotic error must cost one URL, never the run
        return FetchResult(url, "connection_error", detail=f"unexpected {type(error).__name__}: {error}")
    body = result.extra.pop("body", None)
    if result.ok or result.status in PERMANENT:
        cache.store(result, body)
    return result


def fetch_all(urls: Iterable[str], cache_dir: str | Path, config: DownloadConfig = DownloadConfig(),
              progress: Callable[[int, int, FetchResult], None] | None = None) -> list[FetchResult]:
    """Fetch every distinct URL in parallel; results in the order of `urls` (duplicates share one fetch)."""
    urls = list(urls)
    unique = list(dict.fromkeys(urls))
    cache = ImageCache(cache_dir)
    done: dict[str, FetchResult] = {}
    with ThreadPoolExecutor(max_workers=max(1, config.workers), thread_name_prefix="fetch") as pool:
        futures = {pool.submit(fetch, url, cache, config): url for url in unique}
        for index, future in enumerate(as_completed(futures)):
            result = future.result()
            done[futures[future]] = result
            if progress:
                progress(index + 1, len(unique), result)
    return [done[url] for url in urls]


def summarize(results: list[FetchResult]) -> dict[str, Any]:
    by_status: dict[str, int] = {}
    for result in results:
        by_status[result.status] = by_status.get(result.status, 0) + 1
    return {"total": len(results), "ok": sum(r.ok for r in results), "by_status": dict(sorted(by_status.items()))}


def write_download_report(results: list[FetchResult], path: str | Path) -> dict[str, Any]:
    """The dead-link report: counts by outcome and every failed URL with its reason."""
    report = {**summarize(results),
              "failed": [{"url": r.url, "status": r.status, "http_status": r.http_status, "detail": r.detail,
                          "attempts": r.attempts} for r in results if not r.ok]}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(path, json.dumps(report, indent=2).encode("utf-8"))
    return report
