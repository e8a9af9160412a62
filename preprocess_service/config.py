"""All settings, from the environment (prefix ``SIDECAR_``); the README's settings table mirrors this."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SIDECAR_", extra="ignore")

    model_name: str = Field(
        "news", description="TF Serving model name; also the folder under model_base_path"
    )
    model_base_path: Path = Field(Path("/models"), description="holds <model_name>/<version>/ directories")
    transport: Literal["rest", "grpc"] = Field("rest", description="how tensors reach TF Serving")
    tfserving_rest_url: str = "http://127.0.0.1:8501"
    tfserving_grpc_target: str = "127.0.0.1:8500"
    upstream_timeout_s: float = Field(5.0, gt=0, description="deadline of every call to TF Serving")
    version_poll_s: float = Field(2.0, gt=0, description="how often to look for a new version directory")
    max_texts: int = Field(64, ge=1, description="texts per request")
    max_chars: int = Field(20_000, ge=1, description="characters per text")
    # 4 MiB admits every request within the text limits above whose characters take at most 3 bytes in
    # UTF-8 (64 x 20,000 CJK characters: 3.9 MB); 1 MiB refused even an ASCII one (1.3 MB)
    max_body_bytes: int = Field(
        4_194_304, ge=1024, description="request body size; larger is refused with 413"
    )
    batch_enabled: bool = Field(True, description="coalesce concurrent requests into one upstream call")
    batch_max_size: int = Field(32, ge=1, description="texts per coalesced upstream call")
    batch_max_wait_ms: float = Field(2.0, ge=0, description="how long a request may wait for companions")
    api_keys: str = Field("", description="comma-separated bearer tokens; empty disables auth")
    api_keys_file: Path | None = Field(
        None, description="file with one bearer token per line (a mounted Secret); re-read when it changes"
    )
    api_keys_reload_s: float = Field(1.0, gt=0, description="how often to look for a changed api_keys_file")
    abstain_label: str | None = Field(
        None,
        description="label returned when the model abstains; unset: `label` is null (`abstained` is true)",
    )
    explain_max_terms: int = Field(
        16, ge=1, le=512, description="heaviest terms occluded per explained text (one model row each)"
    )
    explain_max_texts: int = Field(8, ge=1, description="texts per request when `explain` is true")
    page_enabled: bool = Field(True, description="serve the try-it page at `/`")
    log_request_text: bool = Field(False, description="log request texts (off: texts may be personal data)")
    log_level: str = "info"
    shutdown_grace_s: float = Field(20.0, ge=0, description="time to finish in-flight requests on SIGTERM")
    host: str = "0.0.0.0"
    port: int = 8080

    # --- model lifecycle: declared stable/canary versions, traffic split, shadow, fallback
    model_config_file: Path | None = Field(
        None,
        description="TF Serving's model config; its version labels `stable`/`canary` pick the versions "
        "(re-read on change). Unset, or no label: the newest ready version serves",
    )
    rollout_file: Path | None = Field(
        None, description="rollout.json beside it: canary weight, split or shadow, fallback limits"
    )
    client_key_header: str = Field(
        "X-Client-Key", description="request header whose value keeps a client on one side of the split"
    )

    # --- Open Inference Protocol (KServe v2): the REST binding is always on under /v2; gRPC needs a port
    oip_grpc_port: int = Field(
        0, ge=0, le=65535, description="port of the Open Inference Protocol gRPC service; 0 turns it off"
    )

    # --- the request path
    fast_path: bool = Field(
        True,
        description="answer well-formed `/v1/classify` requests without FastAPI's per-request machinery "
        "(the same answers, less CPU); off: every request goes through the FastAPI route",
    )
    fast_lane: bool = Field(
        True,
        description="with the fast path, answer a plain `/v1/classify` request (HTTP/1.1, a body of at most "
        "64 KiB with Content-Length) in the HTTP protocol itself, without the ASGI request cycle (the same "
        "answers, less CPU); only under `python -m preprocess_service`",
    )

    @field_validator("tfserving_rest_url")
    @classmethod
    def _strip_slash(cls, v: str) -> str:
        return v.rstrip("/")

    @property
    def model_dir(self) -> Path:
        return self.model_base_path / self.model_name


@lru_cache
def load_settings() -> Settings:
    """The process' settings, read once from the environment (``SIDECAR_*``); request handlers get
    the app's own through ``deps.get_settings``."""
    return Settings()
