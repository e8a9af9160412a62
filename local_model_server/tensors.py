"""TF Serving's JSON predict formats (util/json_tensor.cc) to and from numpy arrays.

Request: ``{"signature_name": ..., "instances": [...]}`` (row format: one element per batch item,
an object of named inputs, or a plain value when the signature has one input) or ``{"inputs": ...}``
(columnar: an object of named inputs, or a plain value/list for a single input).
Response: ``{"predictions": [...]}`` for the row format (one plain value per item when there is a
single output, else one object per item), ``{"outputs": ...}`` for the columnar format (the value
itself for a single output, else an object). Numbers keep their type: an int64 input rejects 1.5;
a float input accepts integers up to 2**24 exactly. Bytes tensors named ``*_bytes`` and inputs
given as ``{"b64": ...}`` are base64 as in TF Serving."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import numpy as np
import orjson
import tensorflow as tf

from local_model_server.errors import ServingError, invalid
from local_model_server.servable import TensorSpec

ROW, COLUMNAR = "row", "columnar"
_F32_MAX_INT = (1 << 24) - 1
_F64_MAX_INT = (1 << 53) - 1


def _short(value: Any, limit: int = 200) -> str:
    try:
        text = orjson.dumps(value).decode()
    except TypeError:
        text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _is_b64(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _decode_strings(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode_strings(v) for v in value]
    if _is_b64(value):
        try:
            return base64.b64decode(value["b64"], validate=False)
        except (binascii.Error, ValueError) as exc:
            raise invalid("Unable to base64 decode") from exc
    if isinstance(value, str):
        return value.encode()
    raise invalid(f"JSON Value: {_short(value)} is not of expected type: string")


def _first_bad(value: Any, ok: Any) -> Any:
    if isinstance(value, list):
        for v in value:
            bad = _first_bad(v, ok)
            if bad is not None:
                return bad
        return None
    return None if ok(value) else value


def _type_error(value: Any, spec: TensorSpec) -> Exception:
    kind = {bool: "True" if value is True else "False", str: "String", dict: "Object", type(None): "Null"}
    jtype = kind.get(type(value), "Number")
    return invalid(f"JSON Value: {_short(value)} Type: {jtype} is not of expected type: {spec.dtype.name}")


def to_array(value: Any, spec: TensorSpec, where: str) -> np.ndarray:
    """A JSON value (scalar or nested lists) as an array of the signature's dtype, or 400."""
    if spec.dtype == tf.string:
        try:
            return np.asarray(_decode_strings(value), dtype=object)
        except ValueError as exc:
            raise invalid(f"{where}: lists at one level must all have the same length") from exc
    try:
        arr = np.asarray(value)
    except (ValueError, OverflowError) as exc:
        raise invalid(f"{where}: lists at one level must all have the same length: {exc}") from exc
    np_dtype = spec.dtype.as_numpy_dtype
    kind = arr.dtype.kind
    if arr.size == 0:
        return arr.astype(np_dtype)
    if spec.dtype.is_bool:
        if kind != "b":
            raise _type_error(_first_bad(value, lambda v: isinstance(v, bool)), spec)
        return arr
    if spec.dtype.is_integer:
        if kind not in "iu":
            raise _type_error(
                _first_bad(value, lambda v: isinstance(v, int) and not isinstance(v, bool)), spec
            )
        info = np.iinfo(np_dtype)
        # an array numpy already made in the signature's dtype holds only values that fit it (JSON
        # integers are int64 unless one overflows it): the range scan is for narrower or unsigned types
        if arr.dtype != np_dtype and (arr.min() < info.min or arr.max() > info.max):
            raise _type_error(_first_bad(value, lambda v: info.min <= v <= info.max), spec)
        return arr.astype(np_dtype, copy=False)
    if spec.dtype.is_floating:
        if kind not in "iuf":
            raise _type_error(
                _first_bad(value, lambda v: isinstance(v, int | float) and not isinstance(v, bool)), spec
            )
        target = "float" if spec.dtype == tf.float32 else "double"
        if kind in "iu":
            limit = _F32_MAX_INT if spec.dtype != tf.float64 else _F64_MAX_INT
            if np.abs(arr).max() > limit:
                bad = _first_bad(value, lambda v: abs(v) <= limit)
                raise invalid(
                    f"Cannot convert JSON value: {_short(bad)} to {target} without loss of precision."
                )
        elif spec.dtype != tf.float64:
            # one pass settles the usual array (every value finite and in range); NaN or infinity make
            # the maximum NaN or inf and take the exact check, which lets them through as TF Serving does
            fmax = np.finfo(np_dtype).max
            with np.errstate(invalid="ignore"):
                usual = bool(np.abs(arr).max() <= fmax)
            if not usual and (np.abs(arr[np.isfinite(arr)]) > fmax).any():
                bad = _first_bad(value, lambda v: not np.isfinite(v) or abs(v) <= fmax)
                raise invalid(
                    f"Cannot convert JSON value: {_short(bad)} to {target} without loss of precision."
                )
        return arr.astype(np_dtype, copy=False)
    raise invalid(f"Conversion of JSON Value: {_short(value)} to type: {spec.dtype.name} is not supported")


def _ragged_instances(column: list[Any], name: str) -> ServingError | None:
    """TF Serving's message when instances disagree in shape; None when they agree."""
    first: tuple[int, ...] | None = None
    for i, item in enumerate(column):
        try:
            shape = np.shape(item)
        except ValueError:
            return invalid(
                f"Failed to process element: {i} key: {name} of 'instances' list. "
                "Error: lists at one level must all have the same length"
            )
        if first is None:
            first = shape
        elif shape != first:
            return invalid(
                f"Failed to process element: {i} key: {name} of 'instances' list. Error: Expecting shape "
                f"[{','.join(map(str, first))}] but got: [{','.join(map(str, shape))}]"
            )
    return None


def parse_predict(doc: Any, specs: dict[str, TensorSpec]) -> tuple[dict[str, np.ndarray], str]:
    """The request body (already parsed JSON) as named input arrays, and its format."""
    if not specs:
        raise invalid("Failed to get input map for signature")
    has_instances, has_inputs = "instances" in doc, "inputs" in doc
    if has_instances and has_inputs:
        raise invalid(
            f"JSON Value: {_short(doc)} Not formatted correctly expecting only one of 'inputs' or "
            "'instances' keys to exist "
        )
    names = sorted(specs)
    arrays: dict[str, np.ndarray] = {}
    if has_instances:
        instances = doc["instances"]
        if not isinstance(instances, list):
            raise invalid(f"JSON Value: {_short(doc)} Excepting 'instances' to be an list/array")
        if not instances:
            raise invalid(f"JSON Value: {_short(doc)} No values in 'instances' array")
        as_objects = isinstance(instances[0], dict) and not _is_b64(instances[0])
        if not as_objects and len(specs) > 1:
            raise invalid(
                "instances is a plain list, but expecting list of objects as multiple input tensors "
                "required as per tensorinfo_map"
            )
        if as_objects:
            columns: dict[str, list[Any]] = {n: [] for n in names}
            wanted = set(names)
            for i, item in enumerate(instances):
                if not isinstance(item, dict) or _is_b64(item):
                    raise invalid(f"Expecting object but got list at item {i} of input list")
                if item.keys() != wanted:
                    extra = sorted(set(item) - wanted)
                    if extra:
                        raise invalid(
                            f"Failed to process element: {i} key: {extra[0]} of 'instances' list. "
                            f"Error: JSON object: does not have named input: {extra[0]}"
                        )
                    raise invalid(
                        f"Failed to process element: {i} of 'instances' list. JSON object: {_short(item)} "
                        f"must only have keys: {','.join(names)}"
                    )
                for n in names:
                    columns[n].append(item[n])
        else:
            for i, item in enumerate(instances):
                if isinstance(item, dict) and not _is_b64(item):
                    raise invalid(f"Expecting value/list but got object at item {i} of input list")
            columns = {names[0]: instances}
        for n in names:
            try:
                arrays[n] = to_array(columns[n], specs[n], f"'instances' input {n}")
            except ServingError as exc:
                ragged = _ragged_instances(columns[n], n)
                if ragged is not None:
                    raise ragged from exc
                raise
        return arrays, ROW
    if has_inputs:
        value = doc["inputs"]
        if isinstance(value, dict) and not _is_b64(value):
            for n in names:
                if n not in value:
                    raise invalid(f"Missing named input: {n} in 'inputs' object.")
                arrays[n] = to_array(value[n], specs[n], f"'inputs' input {n}")
        else:
            if len(specs) > 1:
                raise invalid(
                    "inputs is a plain value/list, but expecting an object as multiple input tensors "
                    "required as per tensorinfo_map"
                )
            arrays[names[0]] = to_array(value, specs[names[0]], f"'inputs' input {names[0]}")
        return arrays, COLUMNAR
    raise invalid("Missing 'inputs' or 'instances' key")


def _jsonable(name: str, arr: np.ndarray) -> Any:
    """Strings become text (or {"b64": ...} for *_bytes outputs); numbers stay numpy, which orjson
    writes in their own precision (a float32 0.2 as 0.2, not 0.20000000298)."""
    if arr.dtype == object or arr.dtype.kind in "SU":
        if name.endswith("_bytes"):
            return _map(arr.tolist(), lambda b: {"b64": base64.b64encode(b).decode()})
        return _map(arr.tolist(), lambda b: b.decode("utf-8", "replace") if isinstance(b, bytes) else b)
    return arr


def _map(value: Any, fn: Any) -> Any:
    return [_map(v, fn) for v in value] if isinstance(value, list) else fn(value)


def format_predict(outputs: dict[str, np.ndarray], fmt: str) -> bytes:
    if not outputs:
        raise invalid("Cannot convert empty tensor map to JSON")
    names = sorted(outputs)
    if fmt == COLUMNAR:
        body: Any = (
            {"outputs": _jsonable(names[0], outputs[names[0]])}
            if len(names) == 1
            else {"outputs": {n: _jsonable(n, outputs[n]) for n in names}}
        )
        return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
    batch = 0
    for n in names:
        arr = outputs[n]
        if arr.ndim == 0:
            raise invalid(f"Tensor name: {n} has no shape information ")
        if arr.shape[0] < 1:
            raise invalid(f"Tensor name: {n} has invalid batch size: {arr.shape[0]}")
        if batch and arr.shape[0] != batch:
            raise invalid(f"Tensor name: {n} has inconsistent batch size: {arr.shape[0]} expecting: {batch}")
        batch = arr.shape[0]
    if len(names) == 1:
        return orjson.dumps(
            {"predictions": _jsonable(names[0], outputs[names[0]])}, option=orjson.OPT_SERIALIZE_NUMPY
        )
    cols = {}
    for n in names:
        v = _jsonable(n, outputs[n])
        cols[n] = v.tolist() if isinstance(v, np.ndarray) and v.ndim == 1 and v.dtype.kind in "iub" else v
    rows = [{n: cols[n][i] for n in names} for i in range(batch)]
    return orjson.dumps({"predictions": rows}, option=orjson.OPT_SERIALIZE_NUMPY)
