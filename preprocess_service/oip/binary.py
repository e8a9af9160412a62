"""The binary tensor data extension of the REST binding: a JSON header (its length in the
``Inference-Header-Content-Length`` header) followed by raw tensor bytes. Stock clients (tritonclient)
use it by default, for inputs and outputs alike. A BYTES element is a 4-byte little-endian length and
that many bytes; numeric tensors are their little-endian values, row-major."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

from preprocess_service.errors import InvalidInput

HEADER = "inference-header-content-length"
_NUMERIC = {"FP32": "<f4", "FP64": "<f8", "INT32": "<i4", "INT64": "<i8", "BOOL": "|b1"}


def split(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    """The JSON header and the binary rest of a request body."""
    if header_length is None:
        return body, b""
    if not header_length.isdigit() or int(header_length) > len(body):
        raise InvalidInput(f"{HEADER} is {header_length!r} but the body has {len(body)} bytes")
    n = int(header_length)
    return body[:n], body[n:]


def decode_bytes(raw: bytes, what: str) -> list[bytes]:
    out = []
    i = 0
    while i < len(raw):
        if i + 4 > len(raw):
            raise InvalidInput(f"{what}: truncated BYTES element length at byte {i}")
        (n,) = struct.unpack_from("<I", raw, i)
        i += 4
        if i + n > len(raw):
            raise InvalidInput(f"{what}: a BYTES element of {n} bytes runs past the end of the data")
        out.append(raw[i : i + n])
        i += n
    return out


def decode(raw: bytes, datatype: str, what: str) -> list[Any]:
    """A binary input as a flat list (BYTES: ``bytes`` elements)."""
    if datatype == "BYTES":
        return decode_bytes(raw, what)
    dtype = _NUMERIC.get(datatype)
    if dtype is None or len(raw) % np.dtype(dtype).itemsize:
        raise InvalidInput(f"{what}: {len(raw)} bytes are not a whole {datatype} tensor")
    return list(np.frombuffer(raw, dtype=dtype).tolist())


def encode(datatype: str, data: Any) -> bytes:
    if datatype == "BYTES":
        return b"".join(struct.pack("<I", len(b)) + b for b in data)
    return np.ascontiguousarray(data, dtype=_NUMERIC[datatype]).tobytes()
