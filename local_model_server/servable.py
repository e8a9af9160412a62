"""One loaded model version: a SavedModel loaded with ``tf.saved_model.load`` and its signatures."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, prediction_log_pb2

from local_model_server.batching import BatchingOptions, BatchScheduler
from local_model_server.errors import Code, ServingError, invalid

log = logging.getLogger("local_model_server")

DEFAULT_SIGNATURE = "serving_default"
SAVED_MODEL_PB = "saved_model.pb"
WARMUP_FILE = Path("assets.extra") / "tf_serving_warmup_requests"
MAX_WARMUP_RECORDS = 1000  # TF Serving's limit


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: tf.DType
    shape: tuple[int | None, ...] | None  # None: unknown rank


@dataclass
class Signature:
    name: str
    fn: Any  # a ConcreteFunction
    inputs: dict[str, TensorSpec]
    outputs: dict[str, TensorSpec]


def _spec(name: str, info: Any) -> TensorSpec:
    shape = info.tensor_shape
    dims = None if shape.unknown_rank else tuple(None if d.size < 0 else int(d.size) for d in shape.dim)
    return TensorSpec(name, tf.dtypes.as_dtype(info.dtype), dims)


def _code_of(exc: BaseException) -> Code:
    if isinstance(exc, tf.errors.OpError):
        return Code(exc.error_code)
    if isinstance(exc, FileNotFoundError | OSError):
        return Code.NOT_FOUND
    if isinstance(exc, DecodeError):
        return Code.DATA_LOSS
    if isinstance(exc, ServingError):
        return exc.code
    return Code.UNKNOWN


class Servable:
    """A loaded version. ``run`` is thread-safe."""

    def __init__(
        self, model_name: str, version: int, path: Path, batching: BatchingOptions | None = None
    ) -> None:
        self.model_name = model_name
        self.version = version
        self.path = path
        self.inflight = 0  # requests holding this version; guarded by the manager's lock
        self._batching = batching
        self._schedulers: dict[str, BatchScheduler] = {}
        self._schedulers_lock = threading.Lock()
        pb = path / SAVED_MODEL_PB
        if not pb.is_file():
            raise ServingError(
                Code.NOT_FOUND,
                f"Could not find SavedModel .pb or .pbtxt at supplied export directory path: {path}",
            )
        proto = saved_model_pb2.SavedModel()
        try:
            proto.ParseFromString(pb.read_bytes())
        except DecodeError as exc:
            raise ServingError(Code.DATA_LOSS, f"Can't parse {pb} as binary proto") from exc
        if not proto.meta_graphs:
            raise ServingError(Code.DATA_LOSS, f"{pb}: no MetaGraphDef in the SavedModel")
        # What TF Serving returns as metadata: the meta graph's whole signature_def map.
        self.signature_def_map = get_model_metadata_pb2.SignatureDefMap()
        for key, sig_def in proto.meta_graphs[0].signature_def.items():
            self.signature_def_map.signature_def[key].CopyFrom(sig_def)
        self.metadata_json = json_format.MessageToDict(
            self.signature_def_map,
            always_print_fields_with_no_presence=True,
            preserving_proto_field_name=True,
        )
        self._module = tf.saved_model.load(str(path))
        self.signatures: dict[str, Signature] = {}
        for key, fn in self._module.signatures.items():
            sig_def = proto.meta_graphs[0].signature_def[key]
            self.signatures[key] = Signature(
                name=key,
                fn=fn,
                inputs={k: _spec(k, v) for k, v in sig_def.inputs.items()},
                outputs={k: _spec(k, v) for k, v in sig_def.outputs.items()},
            )

    # -- requests ------------------------------------------------------------------------------
    def signature(self, name: str, *, rest: bool = False) -> Signature:
        key = name or DEFAULT_SIGNATURE
        sig = self.signatures.get(key)
        if sig is None:
            if rest:  # HttpRestApiHandler::GetInfoMap
                raise invalid(f'Serving signature name: "{key}" not found in signature def')
            raise ServingError(Code.FAILED_PRECONDITION, f'Serving signature key "{key}" not found.')
        return sig

    def run(
        self, sig: Signature, inputs: dict[str, np.ndarray], output_filter: list[str] | None = None
    ) -> dict[str, np.ndarray]:
        sent, wanted = set(inputs), set(sig.inputs)
        if sent != wanted:
            raise invalid(
                f"input size does not match signature: {len(sent)}!={len(wanted)} "
                f"len({{{','.join(sorted(sent))}}}) != len({{{','.join(sorted(wanted))}}}). "
                f"Sent extra: {{{','.join(sorted(sent - wanted))}}}. "
                f"Missing but required: {{{','.join(sorted(wanted - sent))}}}."
            )
        args: dict[str, tf.Tensor] = {}
        for i, (name, spec) in enumerate(sorted(sig.inputs.items())):
            arr = inputs[name]
            if tf.dtypes.as_dtype(arr.dtype) != spec.dtype:
                raise invalid(
                    f"Expects arg[{i}] to be {spec.dtype.name} but "
                    f"{tf.dtypes.as_dtype(arr.dtype).name} is provided"
                )
            if spec.shape is not None and (
                arr.ndim != len(spec.shape)
                or any(d is not None and d != s for d, s in zip(spec.shape, arr.shape, strict=True))
            ):
                want = "[" + ",".join("?" if d is None else str(d) for d in spec.shape) + "]"
                raise invalid(
                    f"input '{name}' has shape {list(arr.shape)}, incompatible with the signature's {want}"
                )
            args[name] = arr
        if output_filter:
            unknown = [o for o in output_filter if o not in sig.outputs]
            if unknown:
                raise invalid(
                    f"output tensor alias not found in signature: {unknown[0]} Outputs expected to be in "
                    f"the set {{{','.join(sorted(sig.outputs))}}}."
                )
        # Server-side batching: the validated rows join a batch of concurrent requests.
        out = self._scheduler(sig).submit(args) if self._batching is not None else self._execute(sig, args)
        keys = output_filter or list(out)
        return {k: out[k] for k in keys}

    def _execute(self, sig: Signature, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the signature function once on validated arrays; every output, as arrays."""
        try:
            out = sig.fn(**{k: tf.convert_to_tensor(v, dtype=sig.inputs[k].dtype) for k, v in arrays.items()})
        except tf.errors.OpError as exc:
            raise ServingError(Code(exc.error_code), exc.message) from exc
        except (TypeError, ValueError) as exc:
            raise invalid(str(exc)) from exc
        return {k: v.numpy() for k, v in out.items()}

    def _scheduler(self, sig: Signature) -> BatchScheduler:
        """The batch queue of this signature (server-side batching), made on first use."""
        assert self._batching is not None
        with self._schedulers_lock:
            sched = self._schedulers.get(sig.name)
            if sched is None:
                sched = BatchScheduler(
                    self._batching,
                    lambda arrays: self._execute(sig, arrays),
                    f"{self.model_name}-{self.version}-{sig.name}",
                    self.model_name,
                )
                self._schedulers[sig.name] = sched
            return sched

    def close(self) -> None:
        """Stop the batch threads (after the version is unloaded)."""
        with self._schedulers_lock:
            scheds, self._schedulers = list(self._schedulers.values()), {}
        for sched in scheds:
            sched.close()

    # -- load-time warmup ----------------------------------------------------------------------
    def warmup(self) -> int:
        """Replay assets.extra/tf_serving_warmup_requests (PredictionLog records), as TF Serving does.
        A failing record fails the load, as in TF Serving."""
        path = self.path / WARMUP_FILE
        if not path.is_file():
            return 0
        count = 0
        for record in tf.data.TFRecordDataset(str(path)):
            count += 1
            if count > MAX_WARMUP_RECORDS:
                raise invalid(
                    f"Number of warmup records exceeds the maximum ({MAX_WARMUP_RECORDS}) at {path}"
                )
            entry = prediction_log_pb2.PredictionLog.FromString(record.numpy())
            if entry.WhichOneof("log_type") != "predict_log":
                raise ServingError(
                    Code.UNIMPLEMENTED, f"Unsupported log_type for warmup: {entry.WhichOneof('log_type')}"
                )
            request = entry.predict_log.request
            sig = self.signature(request.model_spec.signature_name)
            inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
            self.run(sig, inputs, list(request.output_filter) or None)
        return count


def load(
    model_name: str,
    version: int,
    path: Path,
    enable_warmup: bool,
    batching: BatchingOptions | None = None,
) -> Servable:
    """Load a version or raise ServingError with the code TF Serving would report."""
    try:
        servable = Servable(model_name, version, path, batching)
        try:
            n = servable.warmup() if enable_warmup else 0
        except BaseException:
            servable.close()
            raise
        if n:
            log.info(
                "Finished reading warmup data for model at %s. Number of warmup records read: %d.",
                path,
                n,
            )
        return servable
    except ServingError:
        raise
    except Exception as exc:
        raise ServingError(_code_of(exc), f"{type(exc).__name__}: {exc}") from exc
