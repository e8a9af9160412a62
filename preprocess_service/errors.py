"""Typed errors and the one place that maps them to status codes and the one JSON error shape."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import ClassVar

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("preprocess_service")


class JsonResponse(JSONResponse):
    """JSON through orjson, for responses built by hand (errors, probes)."""

    def render(self, content: object) -> bytes:
        return orjson.dumps(content)


class ServiceError(Exception):
    status_code = 500
    code = "internal"
    headers: ClassVar[dict[str, str] | None] = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(ServiceError):
    status_code, code = 422, "invalid_input"


class PayloadTooLarge(ServiceError):
    status_code, code = 413, "payload_too_large"
    # the rest of the body stays unread on the connection: it cannot carry another request
    headers: ClassVar[dict[str, str] | None] = {"Connection": "close"}


class Unauthorized(ServiceError):
    status_code, code = 401, "unauthorized"
    headers: ClassVar[dict[str, str] | None] = {"WWW-Authenticate": "Bearer"}


class NotReady(ServiceError):
    """No model version is servable yet, or TF Serving cannot be reached: worth retrying."""

    status_code, code = 503, "not_ready"
    headers: ClassVar[dict[str, str] | None] = {"Retry-After": "2"}


class VersionUnavailable(NotReady):
    """TF Serving answered that it cannot serve this version now (unloaded, or not loaded yet): the
    declaration may have moved on before this sidecar read it (the lifecycle looks again)."""


class NotFound(ServiceError):
    """An unknown model or version (the Open Inference Protocol names them in the path)."""

    status_code, code = 404, "not_found"


class UpstreamTimeout(ServiceError):
    status_code, code = 504, "upstream_timeout"


class UpstreamError(ServiceError):
    """TF Serving answered, but with an error that retrying will not fix."""

    status_code, code = 502, "upstream_error"


# The Open Inference Protocol (routes under /v2) has its own error shape, ``{"error": "<message>"}``,
# and answers bad input with 400 where the sidecar API uses 422.
OIP_PREFIX = "/v2"


def is_oip(path: str) -> bool:
    return path == OIP_PREFIX or path.startswith(OIP_PREFIX + "/")


def oip_response(status: int, message: str, headers: Mapping[str, str] | None = None) -> JsonResponse:
    return JsonResponse({"error": message}, 400 if status == 422 else status, headers=headers)


# The gRPC binding's status for each HTTP status (names of grpc.StatusCode; errors.py stays free of grpc).
_GRPC_CODES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    404: "NOT_FOUND",
    413: "RESOURCE_EXHAUSTED",
    422: "INVALID_ARGUMENT",
    502: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def grpc_code(status: int) -> str:
    return _GRPC_CODES.get(status, "INTERNAL")


def error_body(code: str, message: str, request: Request) -> dict[str, object]:
    return {
        "error": {"code": code, "message": message, "request_id": getattr(request.state, "request_id", None)}
    }


def error_response(exc: ServiceError, request_id: str | None, path: str = "") -> JsonResponse:
    """The one error shape for a typed error, also where no Request exists (the ASGI middleware)."""
    if is_oip(path):
        return oip_response(exc.status_code, exc.message, exc.headers)
    body = {"error": {"code": exc.code, "message": exc.message, "request_id": request_id}}
    return JsonResponse(body, exc.status_code, headers=exc.headers)


def _human(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        if err.get("type") == "json_invalid":
            return "the request body is not valid JSON"
        parts.append(f"{loc or 'body'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts[:5]) or "invalid request"


def install(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service(request: Request, exc: ServiceError) -> JsonResponse:
        return error_response(exc, getattr(request.state, "request_id", None), request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JsonResponse:
        if is_oip(request.url.path):
            return oip_response(400, _human(exc))
        return JsonResponse(error_body("invalid_input", _human(exc), request), 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JsonResponse:
        if is_oip(request.url.path):
            return oip_response(exc.status_code, str(exc.detail), exc.headers)
        if exc.status_code == 400:
            # FastAPI's 400 "There was an error parsing the body": a body that json.loads rejects with
            # something other than JSONDecodeError (not UTF-8, nested too deep, an integer over Python's
            # digit limit). Bad input is 422 everywhere (the sidecar API contract), and 400 is not in the
            # OpenAPI.
            message = "the request body is not valid JSON (or not UTF-8, or nested too deeply)"
            return JsonResponse(error_body("invalid_input", message, request), 422)
        code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
            exc.status_code, "http_error"
        )
        return JsonResponse(error_body(code, str(exc.detail), request), exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JsonResponse:
        log.exception("unhandled error", extra={"request_id": getattr(request.state, "request_id", None)})
        if is_oip(request.url.path):
            return oip_response(500, "internal error; see the server log")
        return JsonResponse(error_body("internal", "internal error; see the server log", request), 500)
