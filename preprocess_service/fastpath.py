"""``POST /v1/classify`` without FastAPI's per-request machinery, for the requests that need none of it.

FastAPI's route costs about a quarter of the sidecar's CPU per request (docs/bench.md, the profile):
route matching over every route, solving the dependencies, parsing the content type with the email
module, decoding the body with the json module, validating it and wrapping the response. This ASGI
middleware, inside :class:`~preprocess_service.middleware.RequestContext` (request id, body limit,
metrics, access log) and in front of FastAPI's own outer layers (:mod:`preprocess_service.front`),
answers a well-formed, authorised ``/v1/classify`` request itself, with the same functions the route
calls (:func:`~preprocess_service.routers.classify.check_request` and
:func:`~preprocess_service.routers.classify.answer_request`), so the two cannot drift apart.

Anything else goes to the FastAPI app with the body it has read replayed: a body orjson or the request
model refuses, a refused API key, a request over the limits, no model version ready. Those checks have no
side effect, so the route answers them exactly as it always did (the same 401, 422 or 503 and message).
A typed error from answering (the model server's timeout, say) is mapped by the same
:func:`~preprocess_service.errors.error_response` as the app's handler; anything else is answered by the
app's server-error handler (:meth:`~preprocess_service.front.SidecarAPI.unexpected`) and re-raised, as it
would be from the route.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson
from pydantic import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from preprocess_service.deps import authorized
from preprocess_service.errors import InvalidInput, ServiceError, error_response
from preprocess_service.front import SidecarAPI
from preprocess_service.registry import ModelVersion
from preprocess_service.routers.classify import answer_request, check_request
from preprocess_service.schemas import ClassifyRequest

PATH = "/v1/classify"
_JSON_TYPES = (b"application/json",)


class _Route:
    path = PATH


ROUTE = _Route()


class Checked(NamedTuple):
    request: ClassifyRequest
    texts: list[str]
    model: ModelVersion
    client_key: str | None


def _is_json(content_type: bytes | None) -> bool:
    # FastAPI parses a body as JSON without a content type, or with application/json (any parameters);
    # other types (application/*+json included) are left to it
    if content_type is None:
        return True
    return content_type.partition(b";")[0].strip().lower() in _JSON_TYPES


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client left: let the app see it
            raise _Disconnected(message)
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


class _Disconnected(Exception):
    def __init__(self, message: Message) -> None:
        self.message = message


def _replay(first: Message, receive: Receive) -> Receive:
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return first
        return await receive()

    return replayed


class FastClassify:
    def __init__(self, app: ASGIApp, api: SidecarAPI) -> None:
        self.app = app
        self.api = api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        try:
            body = await _read_body(receive)
        except _Disconnected as gone:
            await self.app(scope, _replay(gone.message, receive), send)
            return
        try:
            answered = await self._answer(scope, body, send)
        except Exception as exc:  # answered as the server-error layer would, then re-raised
            await self.api.unexpected(exc, scope, _never, send)
            raise
        if not answered:
            replay = {"type": "http.request", "body": body, "more_body": False}
            await self.app(scope, _replay(replay, receive), send)

    async def _answer(self, scope: Scope, body: bytes, send: Send) -> bool:
        """Answer the request, or return False (having done nothing) for the route to answer it."""
        headers = dict(reversed(scope["headers"]))  # the first of a repeated header, as Starlette reads it
        checked = self.check(headers, body)
        if checked is None:
            return False
        req_state: dict[str, Any] = scope.setdefault("state", {})
        req_state["n_texts"] = len(checked.texts)
        scope["route"] = ROUTE  # what RequestContext names the request by in the metrics and the log
        status, response_headers, content = await self.respond(checked, req_state.get("request_id"))
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": content})
        return True

    def check(self, headers: dict[bytes, bytes], body: bytes) -> Checked | None:
        """The request, checked as the route would check it, or None (nothing done) for the route to
        answer: a content type it parses otherwise, a refused key, no version ready, a body it refuses.
        ``headers``: lower-case names, the first of a repeated header."""
        state = self.api.state
        settings = state.settings
        if not _is_json(headers.get(b"content-type")):
            return None
        if not authorized(state.api_keys, headers.get(b"authorization", b"").decode("latin-1")):
            return None
        model = state.registry.current
        if model is None:
            return None
        try:
            request = ClassifyRequest.model_validate(orjson.loads(body))
            texts = check_request(request, model, settings)
        except (orjson.JSONDecodeError, ValidationError, InvalidInput):
            return None
        key = headers.get(settings.client_key_header.lower().encode("latin-1"))
        return Checked(request, texts, model, key.decode("latin-1") if key is not None else None)

    async def respond(
        self, checked: Checked, request_id: str | None
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """The answer to a checked request: status, headers and body; a typed error (the model server's
        timeout, say) as :func:`~preprocess_service.errors.error_response` maps it. Anything else raises."""
        state = self.api.state
        try:
            content, extra = await answer_request(
                checked.request,
                checked.texts,
                checked.model,
                settings=state.settings,
                batcher=state.batcher,
                metrics=state.metrics,
                lifecycle=state.lifecycle,
                client_key=checked.client_key,
                request_id=request_id,
            )
        except ServiceError as exc:
            error = error_response(exc, request_id, PATH)
            return error.status_code, list(error.raw_headers), bytes(error.body)
        headers = [
            (b"content-length", str(len(content)).encode()),
            (b"content-type", b"application/json"),
            *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extra.items()),
        ]
        return 200, headers, content


async def _never() -> Message:
    # a response that is only sent never reads the request
    return {"type": "http.disconnect"}
