"""``RolloutInfo`` from the registry's declaration and the lifecycle's counters."""

from __future__ import annotations

from preprocess_service.lifecycle.routing import Lifecycle
from preprocess_service.lifecycle.schemas import RolloutInfo, ShadowReport, VersionReport


def rollout_info(lc: Lifecycle) -> RolloutInfo:
    reg, ro = lc.registry, lc.rollout
    decl = reg.source.declared if reg.source is not None else None
    versions = []
    for (version, role), st in sorted(lc.stats.items()):
        n, err, p99 = lc.window(version, role).stats()
        versions.append(
            VersionReport(
                version=version, role=role, requests=st.requests, errors=st.errors,
                window_requests=n, window_error_rate=err, window_p99_ms=p99, labels=dict(st.labels),
            )
        )  # fmt: skip
    return RolloutInfo(
        mode=ro.mode,
        weight=ro.weight,
        stable_version=reg.current.version if reg.current else None,
        declared_stable=decl.stable if decl else None,
        canary_version=decl.canary if decl else None,
        canary_active=lc.canary_active(),
        canary_status=reg.canary_status,
        fallback_reason=lc.fallback_reason,
        config_error=reg.source.error if reg.source is not None else None,
        shadow=ShadowReport(
            compared=lc.shadow_compared,
            agreed=lc.shadow_agree,
            agreement_rate=lc.shadow_agree / lc.shadow_compared if lc.shadow_compared else None,
            dropped=lc.shadow_dropped,
        ),
        versions=versions,
    )
