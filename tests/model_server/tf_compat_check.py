"""Run INSIDE the TF Serving TensorFlow environment (make tf-compat-env), not under pytest.

    tf_compat_check.py VERSION_DIR INPUTS_NPZ OUTPUTS_NPZ  ->  prints one JSON report

Does with this TensorFlow what tensorflow_model_server of the same version does with a model version:
every op of the graph and of its functions must be registered, the SavedModel loads, the warmup
records parse as PredictionLog and run through their signature; and ``serving_default`` is run on
the given inputs so the caller can compare the outputs with the training environment's."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow.python.framework import op_def_registry
from tensorflow_serving.apis import prediction_log_pb2


def main(version_dir: str, inputs_npz: str, outputs_npz: str) -> None:
    path = Path(version_dir)
    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((path / "saved_model.pb").read_bytes())
    ops: set[str] = set()
    for mg in proto.meta_graphs:
        ops.update(n.op for n in mg.graph_def.node)
        for fn in mg.graph_def.library.function:
            ops.update(n.op for n in fn.node_def)
    functions = {fn.signature.name for mg in proto.meta_graphs for fn in mg.graph_def.library.function}
    missing = sorted(op for op in ops if op not in functions and op_def_registry.get(op) is None)

    model = tf.saved_model.load(str(path))
    fn = model.signatures["serving_default"]
    with np.load(inputs_npz, allow_pickle=False) as data:
        out = fn(token_ids=tf.constant(data["token_ids"]), token_weights=tf.constant(data["token_weights"]))
    # Strings as fixed-width bytes: .npz is read back with allow_pickle=False.
    arrays = {k: v.numpy() for k, v in out.items()}
    np.savez(outputs_npz, **{k: a.astype("S") if a.dtype == object else a for k, a in arrays.items()})

    warmup = 0
    for record in tf.data.TFRecordDataset(str(path / "assets.extra" / "tf_serving_warmup_requests")):
        entry = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        request = entry.predict_log.request
        sig = model.signatures[request.model_spec.signature_name or "serving_default"]
        sig(**{k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()})
        warmup += 1
    print(
        json.dumps(
            {
                "tensorflow": tf.__version__,
                "ops": sorted(ops - functions),
                "missing_ops": missing,
                "warmup_records": warmup,
            }
        )
    )


if __name__ == "__main__":
    main(*sys.argv[1:])
