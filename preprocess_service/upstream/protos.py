"""TF Serving's generated protobuf and gRPC modules, without TensorFlow.

``tensorflow_serving.apis.*_pb2`` import ``tensorflow.core.framework.*_pb2``: generated code that
needs only ``google.protobuf``. But importing anything under ``tensorflow`` first runs
``tensorflow/__init__.py``, which loads all of TensorFlow (~600 MB RSS, seconds of start-up). So the
``tensorflow`` package is stood in for, while the generated modules load, by an empty package whose
search path is the installed one: the modules are the installed ones (the same descriptors as
TensorFlow's), nothing else runs. The stand-in leaves ``sys.modules`` afterwards, so a later
``import tensorflow`` in the same process (tests) still gets the real package, which then finds these
generated modules already loaded, as it would have loaded them itself.

The tensor codec below follows the protos: the ``DataType`` of each numpy dtype comes from
``types_pb2``'s own enum names, and a tensor is decoded from ``tensor_content`` or from the repeated
``*_val`` field TensorProto defines for its dtype."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from functools import cache
from typing import Any

import numpy as np

_TF = "tensorflow"
MODULES = {
    "tensor_pb2": "tensorflow.core.framework.tensor_pb2",
    "tensor_shape_pb2": "tensorflow.core.framework.tensor_shape_pb2",
    "types_pb2": "tensorflow.core.framework.types_pb2",
    "get_model_status_pb2": "tensorflow_serving.apis.get_model_status_pb2",
    "model_pb2": "tensorflow_serving.apis.model_pb2",
    "model_service_pb2_grpc": "tensorflow_serving.apis.model_service_pb2_grpc",
    "predict_pb2": "tensorflow_serving.apis.predict_pb2",
    "prediction_service_pb2_grpc": "tensorflow_serving.apis.prediction_service_pb2_grpc",
}


@cache
def load() -> types.SimpleNamespace:
    """The generated modules by short name (``protos.load().predict_pb2``)."""
    if _TF in sys.modules:  # TensorFlow is loaded already: nothing to save
        return _import_all()
    spec = importlib.util.find_spec(_TF)
    if spec is None or spec.submodule_search_locations is None:
        raise ImportError("the generated TensorFlow protobuf modules are not installed", name=_TF)
    if spec.origin is None:  # a namespace package (only the generated modules): importing it is free
        return _import_all()
    stand_in = types.ModuleType(_TF, "stands in for tensorflow/__init__.py while protobuf modules load")
    stand_in.__path__ = list(spec.submodule_search_locations)
    sys.modules[_TF] = stand_in
    try:
        return _import_all()
    finally:
        if sys.modules.get(_TF) is stand_in:
            del sys.modules[_TF]


def _import_all() -> types.SimpleNamespace:
    return types.SimpleNamespace(**{k: importlib.import_module(v) for k, v in MODULES.items()})


# numpy dtypes that TensorFlow names differently from numpy (DT_FLOAT is float32, ...); every other
# DT_<NAME> is numpy's <name> where numpy has it
_RENAMED = {"FLOAT": "float32", "DOUBLE": "float64", "HALF": "float16", "BOOL": "bool"}
# which repeated field of TensorProto holds the values of a dtype when tensor_content is empty
_VALUE_FIELDS = {
    "float32": "float_val", "float64": "double_val", "float16": "half_val", "bool": "bool_val",
    "int8": "int_val", "int16": "int_val", "int32": "int_val", "uint8": "int_val", "uint16": "int_val",
    "int64": "int64_val", "uint32": "uint32_val", "uint64": "uint64_val",
}  # fmt: skip


@cache
def _dtypes() -> tuple[dict[np.dtype[Any], int], dict[int, np.dtype[Any]]]:
    to_enum: dict[np.dtype[Any], int] = {}
    for name, value in load().types_pb2.DataType.items():
        if not name.startswith("DT_") or name.endswith("_REF"):
            continue
        base = name[3:]
        try:
            dtype = np.dtype(_RENAMED.get(base, base.lower()))
        except TypeError:  # DT_STRING, DT_RESOURCE, DT_BFLOAT16, ...: not numpy dtypes
            continue
        if dtype.name in _VALUE_FIELDS:
            to_enum.setdefault(dtype, value)
    return to_enum, {v: k for k, v in to_enum.items()}


def to_tensor_proto(array: np.ndarray) -> Any:
    """A TensorProto of ``array``: its DataType, shape, and its bytes as ``tensor_content``."""
    p = load()
    to_enum, _ = _dtypes()
    try:
        dtype = to_enum[array.dtype]
    except KeyError:
        raise TypeError(f"no TensorFlow DataType for numpy dtype {array.dtype}") from None
    dims = [p.tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in array.shape]
    return p.tensor_pb2.TensorProto(
        dtype=dtype,
        tensor_shape=p.tensor_shape_pb2.TensorShapeProto(dim=dims),
        tensor_content=np.ascontiguousarray(array).tobytes(),
    )


def to_numpy(tensor: Any) -> np.ndarray:
    """The array of a TensorProto, whichever way its values were written."""
    _, to_dtype = _dtypes()
    try:
        dtype = to_dtype[tensor.dtype]
    except KeyError:
        raise TypeError(f"unsupported TensorProto dtype {tensor.dtype}") from None
    shape = [d.size for d in tensor.tensor_shape.dim]
    if tensor.tensor_content:
        return np.frombuffer(tensor.tensor_content, dtype=dtype).reshape(shape)
    values = getattr(tensor, _VALUE_FIELDS[dtype.name])
    if dtype == np.float16:  # half_val holds the float16 bit patterns as ints
        flat = np.asarray(values, dtype=np.uint16).view(np.float16)
    else:
        flat = np.asarray(values, dtype=dtype)
    size = int(np.prod(shape)) if shape else 1
    if flat.size == 1 and size != 1:  # TensorProto's shorthand: one value fills the whole tensor
        flat = np.full(size, flat[0], dtype=dtype)
    return flat.reshape(shape)
