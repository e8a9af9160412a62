"""The gRPC transport without TensorFlow: the generated TF Serving modules load without running
``tensorflow/__init__.py``, the process stays small, and the tensor codec round-trips every dtype the
protos define a value field for (the e2e tests send real requests over it: test_e2e.py)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from preprocess_service.upstream import protos

# VmHWM, not ru_maxrss: the latter carries the forking parent's (pytest's) peak across exec
_PROBE = """
import sys
import preprocess_service.upstream.grpc_client
tf = sorted(m for m in sys.modules if m == "tensorflow" or m.startswith("tensorflow.python"))
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(repr(tf), int(hwm.split()[1]) // 1024)
"""


def test_grpc_client_imports_no_tensorflow_and_stays_small() -> None:
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True).stdout
    loaded, rss_mb = out.strip().rsplit(" ", 1)
    assert loaded == "[]", f"TensorFlow itself was imported: {loaded}"
    assert int(rss_mb) < 150, f"{rss_mb} MB after importing the gRPC client"


@pytest.mark.parametrize(
    "dtype", [np.float32, np.float64, np.float16, np.int32, np.int64, np.uint8, np.bool_]
)
def test_tensor_codec_round_trips(dtype: type) -> None:
    a = (np.arange(12).reshape(3, 4) % 3).astype(dtype)
    t = protos.to_tensor_proto(a)
    assert protos.load().types_pb2.DataType.Name(t.dtype) != "DT_INVALID"
    back = protos.to_numpy(t)
    assert back.dtype == a.dtype and back.shape == a.shape and np.array_equal(back, a)


def test_tensor_codec_reads_value_fields_and_the_fill_shorthand() -> None:
    pb = protos.load()
    t = pb.tensor_pb2.TensorProto(dtype=pb.types_pb2.DT_FLOAT, float_val=[0.25, 0.75])
    t.tensor_shape.dim.add(size=2)
    assert protos.to_numpy(t).tolist() == [0.25, 0.75]
    fill = pb.tensor_pb2.TensorProto(dtype=pb.types_pb2.DT_INT64, int64_val=[7])
    fill.tensor_shape.dim.add(size=3)
    assert protos.to_numpy(fill).tolist() == [7, 7, 7]
    assert pb.types_pb2.DataType.Name(protos.to_tensor_proto(np.zeros(2, np.float32)).dtype) == "DT_FLOAT"
    assert pb.types_pb2.DataType.Name(protos.to_tensor_proto(np.zeros(2, np.int64)).dtype) == "DT_INT64"


def test_tensor_codec_refuses_what_it_cannot_encode() -> None:
    with pytest.raises(TypeError, match="no TensorFlow DataType"):
        protos.to_tensor_proto(np.array(["a"], dtype=object))
    pb = protos.load()
    with pytest.raises(TypeError, match="unsupported TensorProto dtype"):
        protos.to_numpy(pb.tensor_pb2.TensorProto(dtype=pb.types_pb2.DT_STRING, string_val=[b"x"]))
