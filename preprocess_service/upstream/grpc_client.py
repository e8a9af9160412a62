"""TF Serving's gRPC API: one channel and stub per process, a deadline on every call, explicit shapes.

The generated protobuf modules are loaded without TensorFlow itself (``protos``): the process stays
at the REST transport's memory (docs/bench.md), and tensors go through the protos' own codec."""

from __future__ import annotations

import grpc
import numpy as np

from contracts import version_state
from contracts.signature import PROBABILITIES, SIGNATURE, TOKEN_IDS, TOKEN_WEIGHTS
from preprocess_service import logs
from preprocess_service.errors import NotReady, UpstreamError, UpstreamTimeout, VersionUnavailable
from preprocess_service.upstream import protos

_pb = protos.load()


class GrpcUpstream:
    transport = "grpc"

    def __init__(self, target: str, model_name: str, timeout_s: float) -> None:
        self.model_name = model_name
        self.timeout_s = timeout_s
        self._channel = grpc.aio.insecure_channel(
            target,
            options=[
                ("grpc.max_receive_message_length", 64 << 20),
                ("grpc.max_send_message_length", 64 << 20),
                # TF Serving is in the same pod: after it restarts, reconnect within a second instead of
                # gRPC's default exponential backoff (up to 120 s), which kept the sidecar answering 503
                # for seconds after the server was back
                ("grpc.initial_reconnect_backoff_ms", 200),
                ("grpc.min_reconnect_backoff_ms", 200),
                ("grpc.max_reconnect_backoff_ms", 1000),
            ],
        )
        self._predict = _pb.prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self._models = _pb.model_service_pb2_grpc.ModelServiceStub(self._channel)

    async def predict(self, version: int, ids: np.ndarray, weights: np.ndarray) -> np.ndarray:
        req = _pb.predict_pb2.PredictRequest(
            model_spec=_pb.model_pb2.ModelSpec(name=self.model_name, signature_name=SIGNATURE),
            output_filter=[PROBABILITIES],
        )
        req.model_spec.version.value = version
        req.inputs[TOKEN_IDS].CopyFrom(protos.to_tensor_proto(np.asarray(ids, np.int64)))
        req.inputs[TOKEN_WEIGHTS].CopyFrom(protos.to_tensor_proto(np.asarray(weights, np.float32)))
        try:
            rid = logs.request_id.get()
            metadata = ((logs.REQUEST_ID_HEADER, rid),) if rid else None
            resp = await self._predict.Predict(req, timeout=self.timeout_s, metadata=metadata)
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise UpstreamTimeout(f"TF Serving did not answer within {self.timeout_s}s") from exc
            if code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION):
                msg = f"TF Serving cannot serve version {version} now: {exc.details()}"
                raise VersionUnavailable(msg) from exc
            if code == grpc.StatusCode.UNAVAILABLE:  # also what an unreachable server gives
                raise NotReady(f"TF Serving cannot serve version {version} now: {exc.details()}") from exc
            raise UpstreamError(f"TF Serving refused the request ({code.name}): {exc.details()}") from exc
        return protos.to_numpy(resp.outputs[PROBABILITIES])

    async def version_state(self, version: int) -> str:
        spec = _pb.model_pb2.ModelSpec(name=self.model_name)
        req = _pb.get_model_status_pb2.GetModelStatusRequest(model_spec=spec)
        req.model_spec.version.value = version
        try:
            resp = await self._models.GetModelStatus(req, timeout=min(self.timeout_s, 2.0))
        except grpc.aio.AioRpcError as exc:
            unreachable = exc.code() == grpc.StatusCode.UNAVAILABLE
            return version_state.UNREACHABLE if unreachable else version_state.UNKNOWN
        for st in resp.model_version_status:
            if st.version == version:
                return version_state.name_of(st.state)
        return version_state.UNKNOWN

    async def aclose(self) -> None:
        await self._channel.close()
