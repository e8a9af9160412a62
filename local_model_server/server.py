"""Server assembly: the model config, the served models, the gRPC and REST ports, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
import signal
import socket
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from local_model_server.flags import ServerOptions

log = logging.getLogger("local_model_server")

# Seconds an idle keep-alive REST connection stays open. uvicorn's default (5 s) is shorter than a
# pooling client's expiry (the sidecar keeps idle connections 60 s): a request sent on a connection at the
# moment the server closes it fails with a read error, though nothing is wrong with either side. Closing
# idle connections later than any client here reuses them leaves the close to the client.
KEEP_ALIVE_S = 120


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


def configure_tensorflow(opts: ServerOptions) -> None:
    """--tensorflow_intra_op_parallelism / --tensorflow_inter_op_parallelism, before any model loads."""
    import tensorflow as tf

    if opts.tensorflow_intra_op_parallelism > 0:
        tf.config.threading.set_intra_op_parallelism_threads(opts.tensorflow_intra_op_parallelism)
    if opts.tensorflow_inter_op_parallelism > 0:
        tf.config.threading.set_inter_op_parallelism_threads(opts.tensorflow_inter_op_parallelism)


async def serve(opts: ServerOptions) -> int:
    from local_model_server.batching import read_batching_parameters
    from local_model_server.errors import ServingError
    from local_model_server.model_config import read_model_config, read_monitoring, single_model_config

    # Like TF Serving, every config file is read (and refused) before anything is served; before
    # TensorFlow is imported, too, so a bad file is reported in a second.
    try:
        if opts.model_config_file:
            config = read_model_config(opts.model_config_file)
        else:
            config = single_model_config(opts.model_name, opts.model_base_path, opts.num_versions)
        monitoring = read_monitoring(opts.monitoring_config_file)
        batching = read_batching_parameters(opts.batching_parameters_file) if opts.enable_batching else None
    except ServingError as exc:
        log.error("cannot start: %s: %s", exc.code.name, exc.message)
        return 1
    import uvicorn

    from local_model_server import metrics as metrics_mod
    from local_model_server.core import ServerCore
    from local_model_server.grpc_server import create_server
    from local_model_server.rest import RestApp

    configure_tensorflow(opts)

    metrics = metrics_mod.Metrics()
    if batching is not None:
        batching = dataclasses.replace(batching, on_batch=metrics.on_batch)
    core = ServerCore(
        enable_warmup=opts.enable_model_warmup,
        allow_labels_for_unavailable=opts.allow_version_labels_for_unavailable_models,
        batching=batching,
        poll_wait_s=opts.file_system_poll_wait_seconds,
        on_state=metrics.on_state,
        on_load=lambda name, status: metrics.load_attempts.labels(name, status).inc(),
        delays_s={v: ms / 1000 for v, ms in opts.test_delay_ms},
    )
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    # Like TF Serving, load the models before opening the ports; a refused config is fatal at start.
    try:
        await loop.run_in_executor(None, core.reload, config)
    except ServingError as exc:
        log.error("cannot start: %s: %s", exc.code.name, exc.message)
        core.stop()
        return 1
    if opts.model_config_file:
        core.watch_config_file(opts.model_config_file, opts.model_config_file_poll_wait_seconds)
    # TensorFlow and the loaded model are ~10^6 long-lived Python objects; every full (generation 2)
    # collection walked them all, a pause of tens of ms in the middle of requests that TF Serving (C++)
    # does not have. Freeze them out of the cyclic collector (reference counting still frees them).
    gc.collect()
    gc.freeze()

    if monitoring is None:
        metrics_path: str | None = metrics_mod.PATH
    else:
        metrics_path = monitoring.path if monitoring.enabled else None
    rest_sock = None
    try:
        if opts.rest_api_port:
            if opts.rest_api_port == opts.port:
                raise OSError("--rest_api_port cannot be the same as --port")
            rest_sock = _bind(opts.host, opts.rest_api_port)
        grpc_server = create_server(core, metrics, f"{opts.host}:{opts.port}", opts.grpc_max_threads)
    except (OSError, RuntimeError) as exc:
        log.error("cannot start: %s", exc)
        core.stop()
        return 1
    log.info("Running gRPC ModelServer at %s:%d ...", opts.host, opts.port)

    rest_task = None
    executor = ThreadPoolExecutor(max_workers=max(1, opts.rest_api_num_threads), thread_name_prefix="rest")
    if rest_sock is not None:
        config_ = uvicorn.Config(
            RestApp(
                core,
                metrics,
                executor,
                metrics_path=metrics_path,
                timeout_s=opts.rest_api_timeout_in_ms / 1000 if opts.rest_api_timeout_in_ms > 0 else None,
            ),
            lifespan="off",
            access_log=False,
            log_level="warning",
            timeout_graceful_shutdown=int(max(1, opts.shutdown_grace_seconds)),
            timeout_keep_alive=KEEP_ALIVE_S,
            http="httptools",
            loop="none",
        )
        server = uvicorn.Server(config_)
        server.capture_signals = _no_signal_capture  # type: ignore[method-assign]
        rest_task = asyncio.create_task(server.serve(sockets=[rest_sock]))
        log.info("Exporting HTTP/REST API at:%s:%d ...", opts.host, opts.rest_api_port)
    print(
        f"local_model_server ready: grpc={opts.host}:{opts.port} rest={opts.host}:{opts.rest_api_port}",
        file=sys.stderr,
        flush=True,
    )

    await stop.wait()
    log.info("Shutting down: finishing in-flight requests (up to %ss)", opts.shutdown_grace_seconds)
    done = grpc_server.stop(grace=opts.shutdown_grace_seconds)
    if rest_task is not None:
        server.should_exit = True
        await rest_task
    await loop.run_in_executor(None, done.wait, opts.shutdown_grace_seconds + 1)
    core.stop()
    executor.shutdown(wait=True, cancel_futures=True)
    log.info("Server stopped")
    return 0
