"""Clients for TF Serving. Both pin every call to an explicit model version (version pinning)."""

from __future__ import annotations

from typing import Protocol

import numpy as np


class Upstream(Protocol):
    transport: str

    async def predict(self, version: int, ids: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Probabilities ``[batch, n_classes]`` from the pinned version; raises a ServiceError."""
        ...

    async def version_state(self, version: int) -> str:
        """TF Serving's state name for the version (AVAILABLE, LOADING, ...), or UNKNOWN if absent."""
        ...

    async def aclose(self) -> None: ...


def make_upstream(settings: object) -> Upstream:
    from preprocess_service.config import Settings

    assert isinstance(settings, Settings)
    if settings.transport == "grpc":
        try:
            from preprocess_service.upstream.grpc_client import (
                GrpcUpstream,
            )  # grpcio and the generated protos: on demand
        except ImportError as exc:
            raise RuntimeError(
                f"SIDECAR_TRANSPORT=grpc needs the grpc extra ({exc.name or exc} is missing): install "
                "'text-classifier-serving[grpc]', or build the image with --build-arg SIDECAR_EXTRAS=grpc; "
                "or use SIDECAR_TRANSPORT=rest"
            ) from exc

        return GrpcUpstream(settings.tfserving_grpc_target, settings.model_name, settings.upstream_timeout_s)
    from preprocess_service.upstream.rest import RestUpstream

    return RestUpstream(settings.tfserving_rest_url, settings.model_name, settings.upstream_timeout_s)
