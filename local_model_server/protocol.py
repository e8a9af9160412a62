"""The request handlers both transports share: status and metadata as TF Serving's protos."""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2

from local_model_server.core import ServerCore

_STATE = {
    "START": get_model_status_pb2.ModelVersionStatus.START,
    "LOADING": get_model_status_pb2.ModelVersionStatus.LOADING,
    "AVAILABLE": get_model_status_pb2.ModelVersionStatus.AVAILABLE,
    "UNLOADING": get_model_status_pb2.ModelVersionStatus.UNLOADING,
    "END": get_model_status_pb2.ModelVersionStatus.END,
}
SIGNATURE_DEF_FIELD = "signature_def"


def model_status(
    manager: ServerCore, name: str, version: int | None, label: str | None
) -> get_model_status_pb2.GetModelStatusResponse:
    response = get_model_status_pb2.GetModelStatusResponse()
    for st in manager.status(name, version, label):
        entry = response.model_version_status.add()
        entry.version = st.version
        entry.state = _STATE[st.state]
        entry.status.error_code = int(st.error_code)
        entry.status.error_message = st.error_message
    return response


def model_status_json(
    manager: ServerCore, name: str, version: int | None, label: str | None
) -> dict[str, Any]:
    return json_format.MessageToDict(
        model_status(manager, name, version, label), always_print_fields_with_no_presence=True
    )


def model_metadata(
    manager: ServerCore, name: str, version: int | None, label: str | None, signature_name: str = ""
) -> get_model_metadata_pb2.GetModelMetadataResponse:
    with manager.handle(name, version, label) as servable:
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = name
        response.model_spec.version.value = servable.version
        response.model_spec.signature_name = signature_name
        response.metadata[SIGNATURE_DEF_FIELD].Pack(servable.signature_def_map)
        return response


def model_metadata_json(
    manager: ServerCore, name: str, version: int | None, label: str | None
) -> dict[str, Any]:
    """TF Serving's REST shape:
    {"model_spec": {...}, "metadata": {"signature_def": {"signature_def": {...}}}}."""
    with manager.handle(name, version, label) as servable:
        return {
            "model_spec": {"name": name, "signature_name": "", "version": str(servable.version)},
            "metadata": {SIGNATURE_DEF_FIELD: servable.metadata_json},
        }
