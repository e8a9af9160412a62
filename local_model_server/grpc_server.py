"""TF Serving's gRPC services with the stubs from tensorflow-serving-api: PredictionService.Predict and
GetModelMetadata, ModelService.GetModelStatus and HandleReloadConfigRequest. Other methods answer
UNIMPLEMENTED (the generated base classes do that). Served by grpc's thread-pool server."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent import futures
from typing import Any, TypeVar

import grpc
import tensorflow as tf
from tensorflow_serving.apis import (
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from local_model_server import protocol
from local_model_server.core import ServerCore
from local_model_server.errors import Code, ServingError, grpc_status, invalid
from local_model_server.metrics import Metrics

T = TypeVar("T")


def _spec(model_spec: Any) -> tuple[str, int | None, str | None]:
    choice = model_spec.WhichOneof("version_choice")
    version = model_spec.version.value if choice == "version" else None
    label = model_spec.version_label if choice == "version_label" else None
    return model_spec.name, version, label


class _Base:
    def __init__(self, manager: ServerCore, metrics: Metrics) -> None:
        self.manager = manager
        self.metrics = metrics

    def _call(self, api: str, name: str, context: grpc.ServicerContext, fn: Callable[[], T]) -> T:
        started = time.perf_counter()
        try:
            result = fn()
        except ServingError as exc:
            self.metrics.observe(name, api, "GRPC", exc.code.name, time.perf_counter() - started)
            if api == "predict":
                protocol.log_predict(name, exc.code.name, _request_id(context), exc.message)
            context.abort(grpc_status(exc.code), exc.message)
        self.metrics.observe(name, api, "GRPC", "OK", time.perf_counter() - started)
        if api == "predict" and protocol.log.isEnabledFor(logging.DEBUG):
            protocol.log_predict(name, "OK", _request_id(context))
        return result


def _request_id(context: grpc.ServicerContext) -> str:
    """The caller's request id from the call's metadata (the sidecar forwards its own)."""
    for key, value in context.invocation_metadata() or ():
        if key == "x-request-id":
            return str(value)[:1024]
    return "-"


class PredictionService(_Base, prediction_service_pb2_grpc.PredictionServiceServicer):
    def Predict(self, request: predict_pb2.PredictRequest, context: grpc.ServicerContext) -> Any:
        return self._call("predict", request.model_spec.name, context, lambda: self._predict(request))

    def _predict(self, request: predict_pb2.PredictRequest) -> predict_pb2.PredictResponse:
        name, version, label = _spec(request.model_spec)
        with self.manager.handle(name, version, label) as servable:
            sig = servable.signature(request.model_spec.signature_name)
            inputs = {}
            for key, proto in request.inputs.items():
                try:
                    inputs[key] = tf.make_ndarray(proto)
                except Exception as exc:
                    raise invalid(f"Cannot parse input tensor '{key}': {exc}") from exc
            t0 = time.perf_counter()
            outputs = servable.run(sig, inputs, list(request.output_filter) or None)
            self.metrics.observe_runtime(name, "predict", "GRPC", time.perf_counter() - t0)
            response = predict_pb2.PredictResponse()
            response.model_spec.name = name
            response.model_spec.version.value = servable.version
            response.model_spec.signature_name = sig.name
            for key, arr in outputs.items():
                response.outputs[key].CopyFrom(tf.make_tensor_proto(arr))
            return response

    def GetModelMetadata(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._call(
            "get_model_metadata", request.model_spec.name, context, lambda: self._metadata(request)
        )

    def _metadata(self, request: Any) -> Any:
        if not request.metadata_field:
            raise invalid("GetModelMetadataRequest must specify at least one metadata_field")
        for field in request.metadata_field:
            if field != protocol.SIGNATURE_DEF_FIELD:
                raise invalid(f"Metadata field {field} is not supported")
        name, version, label = _spec(request.model_spec)
        return protocol.model_metadata(self.manager, name, version, label, request.model_spec.signature_name)


class ModelService(_Base, model_service_pb2_grpc.ModelServiceServicer):
    def GetModelStatus(self, request: Any, context: grpc.ServicerContext) -> Any:
        def run() -> Any:
            if not request.HasField("model_spec"):
                raise invalid("Missing ModelSpec")
            name, version, label = _spec(request.model_spec)
            return protocol.model_status(self.manager, name, version, label)

        return self._call("get_model_status", request.model_spec.name, context, run)

    def HandleReloadConfigRequest(self, request: Any, context: grpc.ServicerContext) -> Any:
        """Replace the model config; a refused config leaves the previous one serving."""

        def run() -> Any:
            if request.config.WhichOneof("config") != "model_config_list":
                raise invalid(
                    "ServerModelConfig type not supported by HandleReloadConfigRequest. "
                    "Only ModelConfigList is currently supported"
                )
            self.manager.reload(request.config)
            return model_management_pb2.ReloadConfigResponse()

        return self._call("handle_reload_config_request", "", context, run)


def create_server(manager: ServerCore, metrics: Metrics, address: str, max_workers: int) -> grpc.Server:
    """A started server bound to ``address``; raises RuntimeError if the port cannot be bound."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="grpc"),
        options=[
            ("grpc.so_reuseport", 0),  # a port already taken is an error, not a silent second listener
            ("grpc.max_receive_message_length", -1),  # TF Serving accepts messages up to INT_MAX
            ("grpc.max_send_message_length", -1),
        ],
    )
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(manager, metrics), server
    )
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(manager, metrics), server)
    try:
        port = server.add_insecure_port(address)
    except RuntimeError as exc:
        raise RuntimeError(f"cannot bind gRPC to {address}: {exc}") from exc
    if port == 0:
        raise RuntimeError(f"cannot bind gRPC to {address}")
    server.start()
    return server


__all__ = ["Code", "create_server"]
