"""TF Serving's text-format config files: ``ModelServerConfig`` (--model_config_file, the real proto
from tensorflow-serving-api), ``MonitoringConfig`` (--monitoring_config_file) and
``BatchingParameters`` (--batching_parameters_file; both declared in local_model_server/protos.py).
Validation follows ServerCore's rules and messages; the error codes are TensorFlow's canonical ones."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from google.protobuf import text_format
from google.protobuf.message import Message
from tensorflow_serving.config import model_server_config_pb2

from local_model_server.errors import Code, ServingError, invalid
from local_model_server.protos import MonitoringConfig

ModelServerConfig = model_server_config_pb2.ModelServerConfig
ModelConfig = model_server_config_pb2.ModelConfig
TENSORFLOW_PLATFORM = "tensorflow"
DEFAULT_METRICS_PATH = "/monitoring/prometheus/metrics"

M = TypeVar("M", bound=Message)


def parse_text(path: str | Path, message: M) -> M:
    """ParseProtoTextFile: the file as ``message``, or INVALID_ARGUMENT naming the file and the parser's
    reason (TF Serving logs the reason and reports ``Invalid protobuf file: '<path>'``)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ServingError(Code.NOT_FOUND, f"{path}; {exc.strerror or exc}") from exc
    try:
        text_format.Parse(text, message)
    except text_format.ParseError as exc:
        raise invalid(f"Invalid protobuf file: '{path}': {exc}") from exc
    return message


def single_model_config(
    name: str, base_path: str, num_versions: int
) -> model_server_config_pb2.ModelServerConfig:
    """BuildSingleModelConfig: what --model_name/--model_base_path mean (a latest policy)."""
    config = ModelServerConfig()
    model = config.model_config_list.config.add()
    model.name = name
    model.base_path = base_path
    model.model_platform = TENSORFLOW_PLATFORM
    model.model_version_policy.latest.num_versions = max(1, num_versions)
    return config


@dataclass(frozen=True)
class VersionPolicy:
    """``model_version_policy``: ``latest`` (newest N), ``specific`` (a set) or ``all``."""

    kind: str
    num_versions: int = 1
    versions: frozenset[int] = frozenset()

    @classmethod
    def of(cls, model: model_server_config_pb2.ModelConfig) -> VersionPolicy:
        policy = model.model_version_policy
        which = policy.WhichOneof("policy_choice")
        if which == "specific":
            return cls("specific", versions=frozenset(int(v) for v in policy.specific.versions))
        if which == "all":
            return cls("all")
        # Unset means latest 1, as in TF Serving; latest {} also means 1.
        n = policy.latest.num_versions if which == "latest" else 1
        return cls("latest", num_versions=max(1, n))

    def aspired(self, candidates: list[int]) -> list[int]:
        """The versions of ``candidates`` (loadable versions on disk) this policy wants served."""
        if self.kind == "specific":
            return sorted((v for v in candidates if v in self.versions), reverse=True)
        if self.kind == "all":
            return sorted(candidates, reverse=True)
        return sorted(candidates, reverse=True)[: self.num_versions]


def validate(config: model_server_config_pb2.ModelServerConfig) -> None:
    """ServerCore's checks before a config is accepted (ValidateModelConfigList, GetPlatform)."""
    which = config.WhichOneof("config")
    if which == "custom_model_config":
        raise ServingError(Code.UNIMPLEMENTED, "ModelServer does not yet support custom model config.")
    seen: set[str] = set()
    for model in config.model_config_list.config:
        if not model.name:
            raise invalid("ModelConfig has no name specified.")
        if model.name in seen:
            raise invalid(f"Illegal to list model {model.name} multiple times in config list")
        seen.add(model.name)
        if not model.base_path.startswith("/") and "://" not in model.base_path:
            raise invalid(
                f"Expected model {model.name} to have an absolute path or URI; "
                f"got base_path()={model.base_path}"
            )
        if "://" in model.base_path:
            raise ServingError(
                Code.UNIMPLEMENTED,
                f"model {model.name}: base_path {model.base_path} is a URI; this stand-in reads local paths",
            )
        platform = model.model_platform
        if not platform and model.model_type == model_server_config_pb2.TENSORFLOW:
            platform = TENSORFLOW_PLATFORM
        if not platform:
            raise invalid(
                "Illegal setting neither ModelServerConfig::model_type (deprecated) nor "
                f"ModelServerConfig::model_platform, model name is {model.name}"
            )
        if platform != TENSORFLOW_PLATFORM:
            raise invalid(f"Model {model.name} has platform {platform}; this stand-in serves only tensorflow")
        for label, version in model.version_labels.items():
            if version <= 0:
                raise invalid(
                    f"Model {model.name}: label {label} must name a positive version, got {version}"
                )


def read_model_config(path: str | Path) -> model_server_config_pb2.ModelServerConfig:
    config = parse_text(path, ModelServerConfig())
    validate(config)
    return config


@dataclass(frozen=True)
class Monitoring:
    enabled: bool
    path: str


def read_monitoring(path: str | Path | None) -> Monitoring | None:
    """None without a file (this stand-in then still serves the default path; see the docs)."""
    if not path:
        return None
    cfg = parse_text(path, MonitoringConfig())
    prom = cfg.prometheus_config
    metrics_path = prom.path or DEFAULT_METRICS_PATH
    if not metrics_path.startswith("/"):
        raise invalid(f"prometheus_config path must start with '/': {metrics_path}")
    return Monitoring(bool(prom.enable), metrics_path)
