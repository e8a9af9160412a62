"""Validate Kubernetes objects against the upstream OpenAPI-derived JSON schemas, strictly.

Runs inside the chart-tools venv (kubernetes-validate ships the JSON schemas generated from each
Kubernetes release's OpenAPI spec, so no network is needed). Reads a JSON list of objects on stdin,
prints a JSON list of {"object", "status", "message"}; status is ok | invalid | no-schema.
"""

from __future__ import annotations

import json
import sys

import kubernetes_validate
from kubernetes_validate.utils import SchemaNotFoundError


def main() -> int:
    version = sys.argv[1]
    results = []
    for obj in json.load(sys.stdin):
        ident = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
        try:
            kubernetes_validate.validate(obj, version, strict=True)
            results.append({"object": ident, "status": "ok", "message": ""})
        except SchemaNotFoundError as exc:
            results.append({"object": ident, "status": "no-schema", "message": str(exc)})
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            results.append({"object": ident, "status": "invalid", "message": f"{path}: {exc.message}"})
    json.dump(results, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
