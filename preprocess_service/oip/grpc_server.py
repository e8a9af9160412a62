"""The Open Inference Protocol's gRPC binding: a ``grpc.aio`` server in the sidecar's own process and
event loop, on its own port (``SIDECAR_OIP_GRPC_PORT``), started and stopped with the app's lifespan.

Its messages come from ``grpc_predict_v2.proto``, generated when the project is installed; the handlers
are registered by method name, so the image needs protobuf and grpcio only (no generated service
stubs, no client library). The same registry, batcher, API keys and limits as the HTTP routes serve
it; a call's deadline bounds its inference."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import numpy as np

from contracts import version_state
from preprocess_service import errors
from preprocess_service.api_keys import ApiKeys
from preprocess_service.batching import Batcher
from preprocess_service.config import Settings
from preprocess_service.deps import authorized
from preprocess_service.errors import InvalidInput, NotReady, ServiceError, Unauthorized, UpstreamTimeout
from preprocess_service.lifecycle.routing import Lifecycle
from preprocess_service.metrics import Metrics
from preprocess_service.oip import binary, core
from preprocess_service.registry import Registry

try:
    from preprocess_service.oip import grpc_predict_v2_pb2 as pb
except ImportError as exc:  # pragma: no cover - a build that skipped the generation step
    raise ImportError(
        "the Open Inference Protocol gRPC messages were not generated: run `make oip-stubs` "
        "(grpc_tools.protoc -I . --python_out=. --pyi_out=. preprocess_service/oip/grpc_predict_v2.proto)"
    ) from exc

log = logging.getLogger("preprocess_service.oip")
SERVICE = "inference.GRPCInferenceService"
_CONTENTS = {
    "BOOL": "bool_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}


def _param(p: Any) -> object:
    which = p.WhichOneof("parameter_choice")
    return getattr(p, which) if which else None


class Servicer:
    def __init__(
        self,
        registry: Registry,
        batcher: Batcher,
        metrics: Metrics,
        settings: Settings,
        api_keys: ApiKeys,
        lifecycle: Lifecycle | None = None,
    ) -> None:
        self.registry, self.batcher, self.metrics = registry, batcher, metrics
        self.settings, self.api_keys, self.lifecycle = settings, api_keys, lifecycle

    def _authorize(self, context: grpc.aio.ServicerContext) -> None:
        header = dict(context.invocation_metadata() or ()).get("authorization", "")
        if not authorized(self.api_keys, header if isinstance(header, str) else header.decode()):
            raise Unauthorized("a valid API key is required: send 'authorization: Bearer <key>' metadata")

    async def _is_ready(self) -> bool:
        model = self.registry.current
        if model is None:
            return False
        return await self.registry.upstream.version_state(model.version) == version_state.AVAILABLE

    async def server_live(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return pb.ServerLiveResponse(live=True)

    async def server_ready(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return pb.ServerReadyResponse(ready=await self._is_ready())

    async def server_metadata(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return pb.ServerMetadataResponse(**core.server_metadata())

    async def model_ready(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self._authorize(context)
        try:
            model = core.served_model(self.registry, request.name, request.version)
        except (errors.NotFound, NotReady):
            return pb.ModelReadyResponse(ready=False)
        if model is not self.registry.current:  # the canary, named by its version
            state = await self.registry.upstream.version_state(model.version)
            return pb.ModelReadyResponse(ready=state == version_state.AVAILABLE)
        return pb.ModelReadyResponse(ready=await self._is_ready())

    async def model_metadata(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self._authorize(context)
        model = core.served_model(self.registry, request.name, request.version)
        versions = core.served_versions(self.registry) if not request.version else [str(model.version)]
        meta = core.model_metadata(model, versions)
        return pb.ModelMetadataResponse(
            name=meta["name"],
            versions=meta["versions"],
            platform=meta["platform"],
            inputs=[pb.ModelMetadataResponse.TensorMetadata(**t) for t in meta["inputs"]],
            outputs=[pb.ModelMetadataResponse.TensorMetadata(**t) for t in meta["outputs"]],
        )

    def _tensors(self, request: Any) -> list[core.Tensor]:
        raw = list(request.raw_input_contents)
        if raw and len(raw) != len(request.inputs):
            raise InvalidInput(f"{len(raw)} raw_input_contents for {len(request.inputs)} inputs")
        out = []
        for i, t in enumerate(request.inputs):
            what = f"input '{t.name}'"
            if raw:
                data: list[Any] = binary.decode(raw[i], t.datatype, what)
            else:
                field = _CONTENTS.get(t.datatype)
                data = list(getattr(t.contents, field)) if field else []
            out.append(core.Tensor(t.name, t.datatype, list(t.shape), data))
        return out

    async def model_infer(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self._authorize(context)
        model = core.served_model(self.registry, request.model_name, request.model_version)
        tensors = self._tensors(request)
        params = {k: _param(v) for k, v in request.parameters.items()}
        wanted = [o.name for o in request.outputs]
        remaining = context.time_remaining()
        common = (model, tensors, params, wanted, self.batcher, self.metrics, self.settings)
        if not request.model_version:  # routed like /v1/classify: stable, or the canary for its share
            meta = dict(context.invocation_metadata() or ())
            key = meta.get(self.settings.client_key_header.lower())
            key = key.decode() if isinstance(key, bytes) else key
            work = core.infer(*common, lifecycle=self.lifecycle, client_key=key)
        else:
            work = core.infer(*common, role=core.role_of(self.registry, model))
        try:
            result = await asyncio.wait_for(work, timeout=remaining)
        except TimeoutError as exc:
            raise UpstreamTimeout(f"no answer within the call's deadline ({remaining:.3f}s)") from exc
        model = result.model
        response = pb.ModelInferResponse(
            model_name=model.name, model_version=str(model.version), id=request.id
        )
        context.set_trailing_metadata(
            (("x-model-version", str(model.version)), ("x-model-role", result.role))
        )
        for o in result.outputs:
            response.outputs.add(name=o.name, datatype=o.datatype, shape=o.shape)
            data = o.data if o.datatype == "BYTES" else np.asarray(o.data).reshape(-1)
            response.raw_output_contents.append(binary.encode(o.datatype, data))
        return response


Handler = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]


def _guarded(fn: Handler) -> Handler:
    """Typed errors become the status codes errors.py names for them; nothing else escapes as UNKNOWN."""

    async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await fn(request, context)
        except ServiceError as exc:
            await context.abort(getattr(grpc.StatusCode, errors.grpc_code(exc.status_code)), exc.message)
        except Exception:
            log.exception("unhandled error in an Open Inference Protocol gRPC call")
            await context.abort(grpc.StatusCode.INTERNAL, "internal error; see the server log")

    return call


def handlers(servicer: Servicer) -> grpc.GenericRpcHandler:
    methods: dict[str, tuple[Handler, Any]] = {
        "ServerLive": (servicer.server_live, pb.ServerLiveRequest),
        "ServerReady": (servicer.server_ready, pb.ServerReadyRequest),
        "ModelReady": (servicer.model_ready, pb.ModelReadyRequest),
        "ServerMetadata": (servicer.server_metadata, pb.ServerMetadataRequest),
        "ModelMetadata": (servicer.model_metadata, pb.ModelMetadataRequest),
        "ModelInfer": (servicer.model_infer, pb.ModelInferRequest),
    }
    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            name: grpc.unary_unary_rpc_method_handler(
                _guarded(fn),
                request_deserializer=msg.FromString,
                response_serializer=lambda m: m.SerializeToString(),
            )
            for name, (fn, msg) in methods.items()
        },
    )


async def start(
    registry: Registry,
    batcher: Batcher,
    metrics: Metrics,
    settings: Settings,
    api_keys: ApiKeys,
    lifecycle: Lifecycle | None = None,
) -> grpc.aio.Server:
    """Listening on ``host:oip_grpc_port`` when it returns; fails loudly if the port is taken."""
    limit = settings.max_body_bytes
    server = grpc.aio.server(
        options=[("grpc.max_receive_message_length", limit), ("grpc.so_reuseport", 0)],
    )
    servicer = Servicer(registry, batcher, metrics, settings, api_keys, lifecycle)
    server.add_generic_rpc_handlers((handlers(servicer),))
    address = f"{settings.host}:{settings.oip_grpc_port}"
    if server.add_insecure_port(address) == 0:
        raise RuntimeError(f"cannot listen on {address} for the Open Inference Protocol gRPC service")
    await server.start()
    log.info("Open Inference Protocol gRPC service listening", extra={"address": address})
    return server
