"""TF Serving's version states and its status answer (``GET /v1/models/<name>[/versions/<v>]``).

The names are those of ``tensorflow.serving.ModelVersionStatus.State``; the REST API sends them as
strings, gRPC as the enum's numbers. The proto is imported only to convert between the two, so the
REST-only sidecar needs no tensorflow-serving-api."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

AVAILABLE = "AVAILABLE"  # the one state in which a version answers predictions
UNKNOWN = "UNKNOWN"  # the proto's zero value; also: the server does not list the version
UNREACHABLE = "UNREACHABLE"  # not a proto state: the server did not answer the status call


def name_of(value: int) -> str:
    """The state's name for the enum number a gRPC status answer carries."""
    from tensorflow_serving.apis.get_model_status_pb2 import ModelVersionStatus

    try:
        return str(ModelVersionStatus.State.Name(value))
    except ValueError:
        return UNKNOWN


def value_of(name: str) -> int:
    """The enum number for a state's name (what a gRPC status answer carries)."""
    from tensorflow_serving.apis.get_model_status_pb2 import ModelVersionStatus

    return int(ModelVersionStatus.State.Value(name))


def parse_status(doc: Mapping[str, Any]) -> dict[int, dict[str, Any]]:
    """The REST status answer's ``model_version_status`` list as ``{version: entry}``."""
    return {int(v["version"]): dict(v) for v in doc.get("model_version_status", [])}


def states(doc: Mapping[str, Any]) -> dict[int, str]:
    """``{version: state name}`` from a REST status answer."""
    return {v: str(e.get("state", UNKNOWN)) for v, e in parse_status(doc).items()}
