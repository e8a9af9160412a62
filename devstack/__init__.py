"""The development stack: the local model server and the sidecar as real processes on 127.0.0.1, their
readiness, publishing model versions into their base path, and teardown; plus the load generator that
drives them. Used by ``make run`` (scripts/run_local.py), the benchmark and every test suite.

Not deployed: the Helm chart runs tensorflow/serving and the sidecar image instead."""

from devstack.procs import HOST, Proc, free_port, port_free, spawn, wait_http
from devstack.stack import (
    Stack,
    server_states,
    sidecar_env,
    start_model_server,
    start_sidecar,
    wait_available,
)

__all__ = [
    "HOST",
    "Proc",
    "Stack",
    "free_port",
    "port_free",
    "server_states",
    "sidecar_env",
    "spawn",
    "start_model_server",
    "start_sidecar",
    "wait_available",
    "wait_http",
]
