"""The request handlers both transports share: status and metadata as TF Serving's protos."""

from __future__ import annotations

import logging
from typing import Any

from google.protobuf import json_format
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2

from contracts import version_state
from local_model_server.core import ServerCore

SIGNATURE_DEF_FIELD = "signature_def"
log = logging.getLogger("local_model_server.requests")


def log_predict(model_name: str, outcome: str, request_id: str, message: str = "") -> None:
    """One line per prediction with the caller's request id (the sidecar forwards its own), so one
    request can be followed through both logs: failures at INFO, successes at DEBUG."""
    level = logging.DEBUG if outcome == "OK" else logging.INFO
    detail = f"{outcome} {message}" if message else outcome
    log.log(level, "predict %s: %s (request id %s)", model_name, detail, request_id)


def model_status(
    manager: ServerCore, name: str, version: int | None, label: str | None
) -> get_model_status_pb2.GetModelStatusResponse:
    response = get_model_status_pb2.GetModelStatusResponse()
    for st in manager.status(name, version, label):
        entry = response.model_version_status.add()
        entry.version = st.version
        entry.state = version_state.value_of(st.state)
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
