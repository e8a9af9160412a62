"""Entry points: ``python -m local_model_server`` and the ``local-tensorflow-model-server`` console
script (tensorflow_model_server's command line, for a container that runs a chart's exact args)."""

from __future__ import annotations

import asyncio
import logging
import os
import sys

from local_model_server import __version__
from local_model_server.flags import ServerOptions, parse

log = logging.getLogger("local_model_server")

TFS_PROG = "local-tensorflow-model-server"


def _run(opts: ServerOptions) -> int:
    if opts.version:
        print(
            f"local_model_server {__version__} (a development and test stand-in for TensorFlow ModelServer)"
        )
        return 0
    logging.basicConfig(
        level=opts.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    log.warning(
        "local_model_server is a DEVELOPMENT AND TEST stand-in for TensorFlow Serving, not for production"
    )
    from local_model_server.server import serve

    try:
        import uvloop

        return uvloop.run(serve(opts))
    except ImportError:
        return asyncio.run(serve(opts))


def main(argv: list[str] | None = None) -> int:
    """``python -m local_model_server``: binds 127.0.0.1 unless told otherwise (a local tool)."""
    return _run(parse(argv))


def tensorflow_model_server_main(argv: list[str] | None = None) -> int:
    """``local-tensorflow-model-server``: binds all addresses like tensorflow_model_server, so a pod's
    probes reach it when an image runs it as ``/usr/bin/tensorflow_model_server``."""
    return _run(parse(argv, prog=TFS_PROG, default_host="0.0.0.0"))
