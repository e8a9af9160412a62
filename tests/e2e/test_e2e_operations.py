"""docs/operations.md against the real API server and Helm 4: a model image shipped with `kubectl set image`
makes the next plain `helm upgrade` stop on the server-side-apply conflict, `--force-conflicts` takes the
field back; `--set-string` for the image tag; the API-key rotation commands update the mounted Secret."""

from __future__ import annotations

import base64
from collections.abc import Callable

from e2e_support import CHART, Cluster, Release, run

REPO = "registry.example.com/text-classifier/model-news"


def model_copy_image(rel: Release) -> str:
    spec = rel.deployment().spec.template.spec
    (c,) = [c for c in spec.init_containers if c.name == "model-copy"]
    return str(c.image)


def test_upgrade_after_kubectl_set_image_needs_force_conflicts(
    cluster: Cluster, release_factory: Callable[..., Release]
) -> None:
    rel = release_factory("ops", ["model-image-values.yaml"], ["model.image.digest="])
    rel.install()
    rel.wait_ready(2)
    assert model_copy_image(rel) == f"{REPO}:3"
    deployment = rel.deployment().metadata.name
    run(["kubectl", "-n", rel.namespace, "set", "image", f"deployment/{deployment}", f"model-copy={REPO}:5"])
    assert model_copy_image(rel) == f"{REPO}:5"

    upgrade = ["helm", "upgrade", rel.name, str(CHART), "-n", rel.namespace, "--reset-then-reuse-values"]
    wrong_type = run([*upgrade, "--set", "model.image.tag=6"], check=False)
    assert wrong_type.returncode != 0 and "/model/image/tag" in wrong_type.stderr, wrong_type.stderr
    refused = run([*upgrade, "--set-string", "model.image.tag=6"], check=False)
    assert refused.returncode != 0 and "conflict" in refused.stderr, refused.stderr
    assert model_copy_image(rel) == f"{REPO}:5", "a refused upgrade changes nothing"
    run([*upgrade, "--set-string", "model.image.tag=6", "--force-conflicts", "--wait", "--timeout", "180s"])
    assert model_copy_image(rel) == f"{REPO}:6"
    rel.wait_ready(2)


def test_api_key_rotation_commands_update_the_secret(
    cluster: Cluster, release_factory: Callable[..., Release]
) -> None:
    rel = release_factory("keys", ["auth-values.yaml"])
    ns, secret = rel.namespace, "text-classifier-api-keys"
    run(["kubectl", "-n", ns, "create", "secret", "generic", secret, "--from-literal=keys=old-key-aaaaaaaa"])
    rel.install()
    rel.wait_ready(2)
    pods_before = {p.metadata.name for p in rel.pods()}

    def rotate(keys: str) -> None:
        manifest = run(
            ["kubectl", "-n", ns, "create", "secret", "generic", secret, f"--from-literal=keys={keys}",
             "--dry-run=client", "-o", "yaml"]
        ).stdout  # fmt: skip
        run(["kubectl", "-n", ns, "apply", "-f", "-"], stdin=manifest)

    def keys() -> str:
        data = cluster.core.read_namespaced_secret(secret, ns).data["keys"]
        return base64.b64decode(data).decode()

    rotate("old-key-aaaaaaaa\nnew-key-bbbbbbbb")
    assert keys() == "old-key-aaaaaaaa\nnew-key-bbbbbbbb"
    rotate("new-key-bbbbbbbb")
    assert keys() == "new-key-bbbbbbbb"
    # An existing Secret is not in the pod template's checksum: the pods are not replaced (the sidecar
    # re-reads the mounted file; tests/sidecar/test_api_keys_reload.py proves that part).
    assert {p.metadata.name for p in rel.pods()} == pods_before
