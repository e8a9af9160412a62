"""``python -m local_model_server``: flags named like tensorflow_model_server's."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

log = logging.getLogger("local_model_server")


def _bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def build_parser() -> argparse.ArgumentParser:
    cpus = os.cpu_count() or 2
    p = argparse.ArgumentParser(
        prog="python -m local_model_server",
        description="DEVELOPMENT AND TEST stand-in for TensorFlow Serving (not for production): serves "
        "SavedModel version directories over TF Serving's REST and gRPC APIs.",
    )
    p.add_argument("--port", type=int, default=8500, help="gRPC port (TF Serving: --port)")
    p.add_argument(
        "--rest_api_port", type=int, default=0, help="REST port; 0 disables REST, as in TF Serving"
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind both ports to (not a TF Serving flag; it binds all addresses). "
        "Default 127.0.0.1: this is a local tool",
    )
    p.add_argument("--model_name", default="default", help="served model name (TF Serving: --model_name)")
    p.add_argument(
        "--model_base_path",
        required=True,
        help="directory holding <version>/ subdirectories (TF Serving: --model_base_path)",
    )
    p.add_argument(
        "--file_system_poll_wait_seconds",
        type=float,
        default=1.0,
        help="seconds between polls of the base path; 0 polls once, <0 never (as TF Serving)",
    )
    p.add_argument(
        "--num_versions",
        type=int,
        default=2,
        help="serve the newest N versions: TF Serving's model_version_policy "
        "latest { num_versions: N } (set in its model config file, not a flag there)",
    )
    p.add_argument(
        "--enable_model_warmup",
        type=_bool,
        default=True,
        help="replay assets.extra/tf_serving_warmup_requests at load (TF Serving default true)",
    )
    p.add_argument(
        "--rest_api_num_threads",
        type=int,
        default=max(4, 2 * cpus),
        help="threads running REST predictions (TF Serving: --rest_api_num_threads)",
    )
    p.add_argument(
        "--grpc_max_threads",
        type=int,
        default=max(8, 4 * cpus),
        help="threads of the gRPC server (TF Serving: --grpc_max_threads)",
    )
    p.add_argument(
        "--shutdown_grace_seconds",
        type=float,
        default=10.0,
        help="on SIGTERM/SIGINT, how long in-flight requests may take to finish",
    )
    p.add_argument(
        "--log_level",
        default=os.environ.get("LOCAL_MODEL_SERVER_LOG_LEVEL", "info"),
        choices=["debug", "info", "warning", "error"],
    )
    return p


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(2048)
    sock.setblocking(False)
    return sock


@contextlib.contextmanager
def _no_signal_capture() -> Iterator[None]:
    yield


async def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from local_model_server.grpc_server import create_server
    from local_model_server.manager import ModelManager
    from local_model_server.metrics import Metrics
    from local_model_server.rest import RestApp

    metrics = Metrics()
    manager = ModelManager(
        args.model_name,
        Path(args.model_base_path),
        num_versions=args.num_versions,
        enable_warmup=args.enable_model_warmup,
        on_state=metrics.on_state,
        on_load=lambda name, status: metrics.load_attempts.labels(name, status).inc(),
    )
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    # Like TF Serving, try the initial load before opening the ports.
    await loop.run_in_executor(None, manager.start, args.file_system_poll_wait_seconds)
    # TensorFlow and the loaded model are ~10^6 long-lived Python objects; every full (generation 2)
    # collection walked them all, a pause of tens of ms in the middle of requests that TF Serving (C++)
    # does not have. Freeze them out of the cyclic collector (reference counting still frees them).
    gc.collect()
    gc.freeze()

    rest_sock = None
    try:
        if args.rest_api_port:
            rest_sock = _bind(args.host, args.rest_api_port)
        grpc_server = create_server(manager, metrics, f"{args.host}:{args.port}", args.grpc_max_threads)
    except (OSError, RuntimeError) as exc:
        log.error("cannot start: %s", exc)
        manager.stop()
        return 1
    log.info("Running gRPC ModelServer at %s:%d ...", args.host, args.port)

    rest_task = None
    executor = ThreadPoolExecutor(max_workers=args.rest_api_num_threads, thread_name_prefix="rest")
    if rest_sock is not None:
        config = uvicorn.Config(
            RestApp(manager, metrics, executor),
            lifespan="off",
            access_log=False,
            log_level="warning",
            timeout_graceful_shutdown=int(max(1, args.shutdown_grace_seconds)),
            http="httptools",
            loop="none",
        )
        server = uvicorn.Server(config)
        server.capture_signals = _no_signal_capture  # type: ignore[method-assign]
        rest_task = asyncio.create_task(server.serve(sockets=[rest_sock]))
        log.info("Exporting HTTP/REST API at:%s:%d ...", args.host, args.rest_api_port)
    print(
        f"local_model_server ready: grpc={args.host}:{args.port} rest={args.host}:{args.rest_api_port}",
        file=sys.stderr,
        flush=True,
    )

    await stop.wait()
    log.info("Shutting down: finishing in-flight requests (up to %ss)", args.shutdown_grace_seconds)
    done = grpc_server.stop(grace=args.shutdown_grace_seconds)
    if rest_task is not None:
        server.should_exit = True
        await rest_task
    await loop.run_in_executor(None, done.wait, args.shutdown_grace_seconds + 1)
    manager.stop()
    executor.shutdown(wait=True, cancel_futures=True)
    log.info("Server stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    log.warning(
        "local_model_server is a DEVELOPMENT AND TEST stand-in for TensorFlow Serving, not for production"
    )
    try:
        import uvloop

        return uvloop.run(_serve(args))
    except ImportError:
        return asyncio.run(_serve(args))
