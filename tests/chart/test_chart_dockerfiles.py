"""Dockerfiles: hadolint clean, multi-stage, pinned bases, non-root, no build tools in the final stage."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from chart_support import ROOT, run, tool

DOCKER = ROOT / "docker"
APP_IMAGES = ["Dockerfile.sidecar", "Dockerfile.trainer"]
ALL_IMAGES = [*APP_IMAGES, "Dockerfile.model"]


def stages(text: str) -> list[str]:
    """The text of each build stage (split at FROM)."""
    parts = re.split(r"(?m)^FROM ", text)
    return ["FROM " + p for p in parts[1:]]


def test_dockerfiles_hadolint_clean() -> None:
    proc = run(
        [tool("hadolint"), "--failure-threshold", "style", *(str(DOCKER / f) for f in ALL_IMAGES)],
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dockerfiles_hadolint_catches_errors(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install fastapi\nRUN cd /tmp && apt-get install -y gcc\n")
    proc = run([tool("hadolint"), "--no-color", str(bad)], check=False)
    assert proc.returncode != 0
    for rule in ("DL3007", "DL3013", "DL3003"):
        assert rule in proc.stdout


@pytest.mark.parametrize("name", APP_IMAGES)
def test_dockerfiles_multistage_pinned_nonroot(name: str) -> None:
    text = (DOCKER / name).read_text()
    default_base = re.search(r"(?m)^ARG PYTHON_IMAGE=(\S+)$", text)
    assert default_base and re.fullmatch(r"python:3\.11\.\d+-slim-\w+", default_base.group(1)), "pin the base"
    build, final = stages(text)
    assert " AS build" in build.splitlines()[0] and " AS runtime" in final.splitlines()[0]
    assert "pip install" in build and "pip install" not in final, "install in the build stage only"
    assert "COPY --from=build /opt/venv /opt/venv" in final
    assert not re.search(r"apt-get|gcc|build-essential|\bgit\b", final), "no build tools in the final image"
    assert re.search(r"(?m)^USER 10001:10001$", final)
    assert "--no-cache-dir -c requirements/lock.txt" in build


def test_dockerfile_sidecar_runs_contract_entrypoint() -> None:
    text = (DOCKER / "Dockerfile.sidecar").read_text()
    # python -m preprocess_service: uvicorn with the graceful-shutdown timeout and JSON logs from Settings
    assert 'ENTRYPOINT ["python", "-m", "preprocess_service"]' in text
    assert re.search(
        r'pip install [^\n]* "\.\$\{SIDECAR_EXTRAS:\+\[\$\{SIDECAR_EXTRAS\}\]\}"$', text, re.M
    ), "the sidecar installs the repo package, with extras only when asked (grpc)"
    assert 'ARG SIDECAR_EXTRAS=""' in text
    assert "EXPOSE 8080" in text


def test_dockerfile_trainer_runs_training_cli() -> None:
    text = (DOCKER / "Dockerfile.trainer").read_text()
    assert 'ENTRYPOINT ["python", "-m", "training"]' in text
    assert '".[train]"' in text


def test_dockerfile_model_image_nonroot_pinned() -> None:
    text = (DOCKER / "Dockerfile.model").read_text()
    assert re.search(r"(?m)^FROM busybox:\d+\.\d+\.\d+$", text)
    assert re.search(r"(?m)^USER 10001:10001$", text)
    ignore = (DOCKER / "Dockerfile.model.dockerignore").read_text().split()
    assert ignore[:3] == ["#", "Build", "context"] and "*" in ignore and "!models/" in ignore


def test_dockerignore_keeps_context_small() -> None:
    entries = {
        line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line and line[0] != "#"
    }
    for must in (".git/", ".venv/", ".cache/", "models/", "tests/", "**/__pycache__/", ".env"):
        assert must in entries, must
    for needed in ("textvec", "preprocess_service", "training", "pyproject.toml", "requirements"):
        assert not any(e.rstrip("/") == needed for e in entries), f"{needed} is needed by the image build"
