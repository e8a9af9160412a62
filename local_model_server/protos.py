"""Two of TF Serving's config messages that the tensorflow-serving-api wheel does not ship:
``MonitoringConfig`` (monitoring_config.proto) and ``BatchingParameters`` (session_bundle_config.proto).
Their descriptors are declared here with TF Serving's package, field names and field numbers, so
their text-format files parse with ``google.protobuf.text_format`` exactly as tensorflow_model_server
parses them (an unknown or misspelt field is an error). ``ModelServerConfig`` comes from the wheel."""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, wrappers_pb2
from google.protobuf.message_factory import GetMessageClass

_F = descriptor_pb2.FieldDescriptorProto
_OPTIONAL, _REPEATED = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED


def _build() -> tuple[Any, Any]:
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)
    f = descriptor_pb2.FileDescriptorProto(
        name="local_model_server/tf_serving_configs.proto",
        package="tensorflow.serving",
        syntax="proto3",
        dependency=["google/protobuf/wrappers.proto"],
    )
    prom = f.message_type.add(name="PrometheusConfig")
    prom.field.add(name="enable", number=1, label=_OPTIONAL, type=_F.TYPE_BOOL)
    prom.field.add(name="path", number=2, label=_OPTIONAL, type=_F.TYPE_STRING)
    mon = f.message_type.add(name="MonitoringConfig")
    mon.field.add(
        name="prometheus_config",
        number=1,
        label=_OPTIONAL,
        type=_F.TYPE_MESSAGE,
        type_name=".tensorflow.serving.PrometheusConfig",
    )
    batching = f.message_type.add(name="BatchingParameters")
    for name, number, wrapper in (
        ("max_batch_size", 1, "Int64Value"),
        ("batch_timeout_micros", 2, "Int64Value"),
        ("max_enqueued_batches", 3, "Int64Value"),
        ("num_batch_threads", 4, "Int64Value"),
        ("thread_pool_name", 5, "StringValue"),
        ("enable_large_batch_splitting", 8, "BoolValue"),
        ("max_execution_batch_size", 9, "Int64Value"),
    ):
        batching.field.add(
            name=name,
            number=number,
            label=_OPTIONAL,
            type=_F.TYPE_MESSAGE,
            type_name=f".google.protobuf.{wrapper}",
        )
    batching.field.add(name="allowed_batch_sizes", number=6, label=_REPEATED, type=_F.TYPE_INT64)
    batching.field.add(name="pad_variable_length_inputs", number=7, label=_OPTIONAL, type=_F.TYPE_BOOL)
    pool.Add(f)
    return (
        GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving.MonitoringConfig")),
        GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters")),
    )


MonitoringConfig, BatchingParameters = _build()
