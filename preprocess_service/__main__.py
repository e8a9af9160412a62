"""``python -m preprocess_service``: uvicorn with graceful shutdown matched to the pod's grace period."""

from __future__ import annotations

import uvicorn

from preprocess_service import logs
from preprocess_service.config import load_settings
from preprocess_service.http_protocol import SidecarHttpProtocol
from preprocess_service.main import create_app


def main() -> None:
    settings = load_settings()
    logs.configure(settings.log_level)
    uvicorn.run(
        create_app(settings, freeze_after_startup=True),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(settings.shutdown_grace_s),
        timeout_keep_alive=30,
        server_header=False,
        # uvicorn trusts X-Forwarded-* only from 127.0.0.1 by default, which an Ingress controller in
        # front of the pod never is, and nothing here reads the client's address or scheme: the
        # middleware would only cost a layer per request (~1% of the sidecar's CPU in the profile)
        proxy_headers=False,
        http=SidecarHttpProtocol,  # one write per response, the lane (http_protocol.py)
    )


if __name__ == "__main__":
    main()
