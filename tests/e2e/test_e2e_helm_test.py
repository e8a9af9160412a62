"""`helm test` completes.

Under KWOK no container runs: the chart's test pod is admitted, scheduled and marked Running/Ready by the
pod-ready stage, then moved to Succeeded by the helm-test-pod-succeed stage (scripts/cluster/manifests/).
This proves the hook is valid and Helm's test machinery works end to end, not that the test command passes.
"""

from __future__ import annotations

from collections.abc import Callable

from e2e_support import Cluster, Release, run


def test_helm_test_completes(cluster: Cluster, release_factory: Callable[..., Release]) -> None:
    rel = release_factory("ht", ["cpu-values.yaml"])
    rel.install()
    rel.wait_ready(2)
    out = run(["helm", "test", rel.name, "-n", rel.namespace, "--timeout", "120s"]).stdout
    assert "TEST SUITE:" in out and "Succeeded" in out, out
    assert "test-classify" in out, out
