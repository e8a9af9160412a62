"""The lifecycle part of ``GET /v1/model``."""

from __future__ import annotations

from pydantic import BaseModel, Field


class VersionReport(BaseModel):
    version: int
    role: str = Field(description="stable or canary")
    requests: int = Field(description="answers since the sidecar started (errors included)")
    errors: int
    window_requests: int = Field(description="answers in the fallback's sliding window")
    window_error_rate: float
    window_p99_ms: float
    labels: dict[str, int] = Field(description="predicted (top) labels since the sidecar started")


class ShadowReport(BaseModel):
    compared: int = Field(description="texts answered by both stable and the shadowed canary")
    agreed: int
    agreement_rate: float | None = Field(description="agreed / compared; null before the first comparison")
    dropped: int = Field(description="copies not sent because too many were in flight")


class RolloutInfo(BaseModel):
    mode: str = Field(examples=["split"], description="split (the canary answers a share) or shadow")
    weight: float = Field(description="declared percent of requests for the canary (split mode)")
    stable_version: int | None = Field(description="version answering as stable")
    declared_stable: int | None = Field(description="the `stable` label in the model config, if any")
    canary_version: int | None = Field(description="the `canary` label in the model config, if any")
    canary_active: bool = Field(description="the canary gets traffic (or copies) now")
    canary_status: str = Field(description="why the canary is (not) servable")
    fallback_reason: str | None = Field(description="why the canary was stopped automatically")
    config_error: str | None = Field(description="why the newest declaration was not applied")
    shadow: ShadowReport
    versions: list[VersionReport]
