"""One real stack for the Open Inference Protocol tests: the local model server and a sidecar (REST
binding on its HTTP port, gRPC binding on its own port), started with devstack, behind an API key."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devstack import Proc, Stack, free_port

KEY = "oip-test-key"


def auth() -> dict[str, str]:
    """A fresh header dict per call: tritonclient adds its own headers to the dict it is given."""
    return {"Authorization": f"Bearer {KEY}"}


SPORT = "The striker scored twice and the team won the cup final after extra time at the stadium."
BUSINESS = "Shares fell as the bank cut its profit forecast for the year and investors sold."


@dataclass
class OipStack:
    stack: Stack
    sidecar: Proc
    grpc_port: int

    @property
    def http_url(self) -> str:  # tritonclient's http client takes host:port, no scheme
        return self.sidecar.url().removeprefix("http://")

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"


@pytest.fixture(scope="session")
def oip_stack(tmp_path_factory: pytest.TempPathFactory, exported_models: Path) -> Iterator[OipStack]:
    stack = Stack(tmp_path_factory.mktemp("oip"))
    stack.publish(exported_models / "news" / "1", 1)
    grpc_port = free_port()
    try:
        server = stack.server()
        sidecar = stack.sidecar(server, api_keys=KEY, max_texts="8", oip_grpc_port=str(grpc_port))
        yield OipStack(stack, sidecar, grpc_port)
    finally:
        stack.stop()
