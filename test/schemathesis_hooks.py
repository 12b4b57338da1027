"""Schemathesis hooks of test/schemathesis.test.ts (loaded through SCHEMATHESIS_HOOKS).

Generated image bytes are random base64: schema-valid, never a picture, so the service rightly
answers 422 and the stateful phase (add -> get -> delete, through openapi.yaml's links) would
never get past the add. Half of the generated adds and counts carry a real PNG instead (random
size and colour, so ids by content differ); the other half stay as generated.
"""

from __future__ import annotations

import base64
import re
import struct
import zlib
from pathlib import Path
from typing import Any

import yaml

import schemathesis
from hypothesis import strategies as st

# openapi.yaml's Base64Image pattern. Only a field that already matches it is replaced: in a
# negative case whose violation is this field, replacing it would make the case valid.
SPEC = yaml.safe_load((Path(__file__).resolve().parent.parent / "openapi.yaml").read_text())
BASE64 = re.compile(SPEC["components"]["schemas"]["Base64Image"]["pattern"])
# Operation and the body field holding base64 image bytes.
IMAGE_FIELDS = {("POST", "/v1/images"): "data", ("POST", "/v1/count"): "image"}


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """An 8-bit RGB PNG of one colour."""
    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(row * height)) + _chunk(b"IEND", b"")


def _png_base64() -> st.SearchStrategy[str]:
    size = st.integers(min_value=1, max_value=48)
    colour = st.tuples(*[st.integers(min_value=0, max_value=255)] * 3)
    return st.builds(lambda w, h, c: base64.b64encode(png(w, h, c)).decode("ascii"), size, size, colour)


@schemathesis.hook
def flatmap_body(ctx: Any, body: Any) -> st.SearchStrategy[Any]:
    operation = ctx.operation
    field = IMAGE_FIELDS.get((operation.method.upper(), operation.path)) if operation is not None else None
    if field is None or not isinstance(body, dict) or not isinstance(body.get(field), str) or not BASE64.search(body[field]):
        return st.just(body)
    return st.one_of(st.just(body), _png_base64().map(lambda data: {**body, field: data}))
