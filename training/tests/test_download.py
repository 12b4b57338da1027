"""The downloader against a local HTTP server that misbehaves in every way the web does."""

from __future__ import annotations

import io
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from countclip.evaluation import countbench
from countclip.evaluation.download import DownloadConfig, fetch_all, write_download_report


def _png(size=(40, 30), color=(200, 10, 10)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (10, 200, 10)).save(buffer, format="JPEG")
    return buffer.getvalue()


def _noise_png(side: int = 100) -> bytes:
    import numpy as np

    buffer = io.BytesIO()
    pixels = np.random.default_rng(0).integers(0, 256, size=(side, side, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


PNG, JPEG, BIG_PNG, NOISE_PNG = _png(), _jpeg(), _png((300, 300)), _noise_png()


class Handler(BaseHTTPRequestHandler):
    hits: dict[str, int] = {}

    def log_message(self, *args):  # keep pytest output clean
        pass

    def _send(self, code: int, body: bytes, content_type: str, length: int | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # noqa: N802 (http.server's name)
        path = self.path
        Handler.hits[path] = Handler.hits.get(path, 0) + 1
        route = ROUTES.get(path.split("?")[0])
        if route is None:
            self._send(404, b"not here", "text/plain")
        else:
            route(self)


def _drip(handler):
    handler.send_response(200)
    handler.send_header("Content-Type", "image/png")
    handler.send_header("Content-Length", "5000")
    handler.end_headers()
    try:
        for _ in range(100):
            handler.wfile.write(b"x" * 10)
            handler.wfile.flush()
            time.sleep(0.05)
    except OSError:
        pass


def _truncated(handler, with_length: bool):
    handler.send_response(200)
    handler.send_header("Content-Type", "image/png")
    if with_length:
        handler.send_header("Content-Length", str(len(NOISE_PNG)))
    handler.send_header("Connection", "close")
    handler.end_headers()
    handler.wfile.write(NOISE_PNG[: len(NOISE_PNG) // 2])
    handler.close_connection = True


def _stream_forever_small_chunks(handler):
    handler.send_response(200)
    handler.send_header("Content-Type", "image/jpeg")
    handler.send_header("Connection", "close")
    handler.end_headers()
    try:
        for _ in range(64):
            handler.wfile.write(b"\xff" * 4096)
    except OSError:
        pass
    handler.close_connection = True


def _flaky(handler):
    if Handler.hits[handler.path] == 1:
        handler._send(503, b"busy", "text/plain")
    else:
        handler._send(200, PNG, "image/png")


def _redirect(handler):
    handler.send_response(302)
    handler.send_header("Location", "/good.png")
    handler.send_header("Content-Length", "0")
    handler.end_headers()


def _reset(handler):
    handler.close_connection = True  # close without any response


ROUTES = {
    "/good.png": lambda h: h._send(200, PNG, "image/png"),
    "/good.jpg": lambda h: h._send(200, JPEG, "image/jpeg; charset=binary"),
    "/octet.png": lambda h: h._send(200, PNG, "application/octet-stream"),
    "/redirect": _redirect,
    "/gone": lambda h: h._send(410, b"gone", "text/plain"),
    "/forbidden": lambda h: h._send(403, b"no", "text/plain"),
    "/slow": lambda h: (time.sleep(4.0), h._send(200, PNG, "image/png")),
    "/drip": _drip,
    "/html": lambda h: h._send(200, b"<html>a photo</html>", "text/html"),
    "/truncated": lambda h: _truncated(h, True),
    "/truncated-nolength": lambda h: _truncated(h, False),
    "/big": lambda h: h._send(200, b"", "image/png", length=50_000_000),
    "/big-nolength": _stream_forever_small_chunks,
    "/garbage.png": lambda h: h._send(200, b"\x89PNG but not really" * 10, "image/png"),
    "/huge-pixels.png": lambda h: h._send(200, BIG_PNG, "image/png"),
    "/flaky": _flaky,
    "/always-500": lambda h: h._send(500, b"oops", "text/plain"),
    "/reset": _reset,
}

EXPECTED = {
    "/good.png": "ok", "/good.jpg": "ok", "/octet.png": "ok", "/redirect": "ok", "/flaky": "ok",
    "/missing": "not_found", "/gone": "not_found", "/forbidden": "http_error",
    "/slow": "timeout", "/drip": "timeout", "/html": "bad_content_type",
    "/truncated": "truncated", "/truncated-nolength": "truncated",
    "/big": "too_large", "/big-nolength": "too_large", "/garbage.png": "undecodable",
    "/huge-pixels.png": "too_many_pixels", "/always-500": "server_error", "/reset": "connection_error",
}
# Timeouts leave fast answers ample room on a loaded CI machine; /slow (4 s) and /drip (5 s) exceed them.
CONFIG = DownloadConfig(timeout=1.5, deadline=2.5, max_bytes=100_000, max_pixels=20_000, retries=1, backoff=0.01,
                        workers=8)


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):  # clients hang up on purpose (timeouts, caps)
        pass


@pytest.fixture(scope="module")
def server():
    httpd = QuietServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_every_case_is_classified_and_nothing_hangs(server, tmp_path):
    Handler.hits.clear()
    urls = [server + path for path in EXPECTED] + ["ftp://example.com/x.png", "http://127.0.0.1:1/refused.png"]
    started = time.monotonic()
    results = fetch_all(urls, tmp_path / "cache", CONFIG)
    elapsed = time.monotonic() - started
    got = {r.url.removeprefix(server): r.status for r in results}
    want = {**EXPECTED, "ftp://example.com/x.png": "invalid_url", "http://127.0.0.1:1/refused.png": "connection_error"}
    assert got == want
    # Bounded: every request is capped at deadline + timeout, and they run in parallel.
    assert elapsed < 12.0, f"took {elapsed:.1f}s"
    by_url = {r.url.removeprefix(server): r for r in results}
    assert by_url["/flaky"].attempts == 2
    assert by_url["/always-500"].attempts == 2 and by_url["/missing"].attempts == 1
    assert by_url["/gone"].http_status == 410
    good = by_url["/good.png"]
    assert Path(good.path).read_bytes() == PNG and good.sha256 is not None


def test_cache_reuses_images_and_remembers_dead_links(server, tmp_path):
    cache = tmp_path / "cache"
    urls = [server + "/good.png", server + "/missing", server + "/slow"]
    fetch_all(urls, cache, CONFIG)
    Handler.hits.clear()
    second = fetch_all(urls, cache, CONFIG)
    assert [r.status for r in second] == ["cached", "not_found", "timeout"]
    assert Handler.hits.get("/good.png") is None and Handler.hits.get("/missing") is None
    assert Handler.hits.get("/slow") == 2  # transient failures are not cached: retried (once) again
    # A cached file that changed on disk is fetched again, not trusted.
    Path(second[0].path).write_bytes(b"corrupt")
    third = fetch_all(urls[:1], cache, CONFIG)
    assert third[0].status == "ok" and Path(third[0].path).read_bytes() == PNG
    # retry_failed forgets remembered dead links.
    from dataclasses import replace

    assert fetch_all(urls[1:2], cache, replace(CONFIG, retry_failed=True))[0].detail == "HTTP 404 Not Found"


def test_dead_link_report(server, tmp_path):
    results = fetch_all([server + "/good.png", server + "/missing", server + "/html"], tmp_path / "c", CONFIG)
    report = write_download_report(results, tmp_path / "dead_links.json")
    assert report == json.loads((tmp_path / "dead_links.json").read_text())
    assert report["total"] == 3 and report["ok"] == 1
    assert report["by_status"] == {"bad_content_type": 1, "not_found": 1, "ok": 1}
    assert {f["url"].removeprefix(server) for f in report["failed"]} == {"/missing", "/html"}


def test_duplicate_urls_are_fetched_once(server, tmp_path):
    Handler.hits.clear()
    results = fetch_all([server + "/good.jpg"] * 3, tmp_path / "c", CONFIG)
    assert [r.status for r in results] == ["ok"] * 3 and Handler.hits["/good.jpg"] == 1


def test_countbench_json_with_urls_skips_dead_links(server, tmp_path):
    entries = [{"image_url": server + "/good.png", "text": "three red squares", "number": 3},
               {"image_url": server + "/missing", "text": "two cats", "number": 2},
               {"image_url": server + "/html", "text": "four dogs", "number": 4}]
    (tmp_path / "CountBench.json").write_text(json.dumps(entries))
    options = countbench.LoadOptions(cache_dir=tmp_path / "cache", download=CONFIG, report_dir=tmp_path / "out",
                                     log=lambda *_: None)
    data = countbench.load(str(tmp_path / "CountBench.json"), options)
    assert [s.number for s in data.samples] == [3]
    assert data.samples[0].image().size == (40, 30)
    assert sorted(s["reason"] for s in data.skipped) == ["download:bad_content_type", "download:not_found"]
    assert json.loads((tmp_path / "out" / "dead_links.json").read_text())["ok"] == 1


def test_unresolvable_host_is_a_dns_error_not_retried_nor_cached(server, tmp_path, monkeypatch):
    import socket

    real = socket.getaddrinfo

    def fake_getaddrinfo(host, *args, **kwargs):
        if host == "dead.invalid":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    first = fetch_all(["http://dead.invalid/x.png"], tmp_path / "c", CONFIG)[0]
    assert (first.status, first.attempts) == ("dns_error", 1)
    assert not list((tmp_path / "c").rglob("*.json"))  # offline must not poison the cache


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares width x height but carries almost no data: a bomb's calling card."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("side", [5_000, 100_000])  # our cap, and beyond PIL's own bomb limit
def test_decompression_bombs_are_refused_before_decoding(side):
    from countclip.evaluation.images import ImageRejected, decode_image

    with pytest.raises(ImageRejected) as rejected:
        decode_image(_png_header_only(side, side), max_pixels=1_000_000)
    assert rejected.value.reason == "too_many_pixels"
