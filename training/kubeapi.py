"""Read and merge-patch one ConfigMap through the Kubernetes API with the pod's service account: what
the evaluation gate uses inside the training Job, whose image has no kubectl. Standard library only."""

from __future__ import annotations

import contextlib
import json
import os
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class KubeApiError(Exception):
    """The API server refused or could not be reached; the message says which and why."""


@dataclass(frozen=True)
class KubeApi:
    base_url: str  # https://<host>:<port> in a pod
    token: str
    namespace: str
    ca_file: Path | None = None
    timeout_s: float = 30.0

    @staticmethod
    def in_pod() -> bool:
        return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and (SA_DIR / "token").is_file()

    @classmethod
    def from_pod(cls, namespace: str | None = None) -> KubeApi:
        host = os.environ["KUBERNETES_SERVICE_HOST"]
        port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        host = f"[{host}]" if ":" in host else host  # an IPv6 service address
        ns = namespace or (SA_DIR / "namespace").read_text(encoding="utf-8").strip()
        token = (SA_DIR / "token").read_text(encoding="utf-8").strip()
        return cls(f"https://{host}:{port}", token, ns, SA_DIR / "ca.crt")

    def _call(self, method: str, name: str, body: bytes | None = None, ctype: str = "") -> dict[str, Any]:
        url = f"{self.base_url}/api/v1/namespaces/{self.namespace}/configmaps/{name}"
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        if ctype:
            headers["Content-Type"] = ctype
        req = urllib.request.Request(url, data=body, method=method, headers=headers)
        ctx = ssl.create_default_context(cafile=str(self.ca_file)) if self.ca_file else None
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s, context=ctx) as resp:
                doc = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")
            with contextlib.suppress(ValueError):  # not a Status object: keep the text
                detail = json.loads(detail).get("message", detail)
            raise KubeApiError(f"{method} configmap {self.namespace}/{name}: {exc.code} {detail}") from exc
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise KubeApiError(f"{method} configmap {self.namespace}/{name}: {exc}") from exc
        if not isinstance(doc, dict):
            raise KubeApiError(f"{method} configmap {self.namespace}/{name}: not an object")
        return doc

    def get_configmap(self, name: str) -> dict[str, Any]:
        return self._call("GET", name)

    def patch_configmap(self, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        return self._call("PATCH", name, json.dumps(patch).encode(), "application/merge-patch+json")
