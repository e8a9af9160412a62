"""The stand-in's command line and config files, as tensorflow_model_server's: unknown flags, bad config
files refused before serving, --model_config_file with several models, a config file that is re-read,
--monitoring_config_file. Always runs our own local_model_server."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from lms_support import REPO, LocalServer, Target, free_port, publish_version

pytestmark = pytest.mark.timeout(300)

ENTRY = Path(sys.executable).parent / "local-tensorflow-model-server"


def _run(*args: str, timeout: int = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "local_model_server", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _config(*models: tuple[str, Path, str]) -> str:
    return (
        "model_config_list {\n"
        + "".join(
            f'  config {{ name: "{n}" base_path: "{p}" model_platform: "tensorflow" {extra} }}\n'
            for n, p, extra in models
        )
        + "}\n"
    )


def test_flags_console_script_help_says_stand_in() -> None:
    assert ENTRY.is_file(), f"{ENTRY} missing: `make install` installs the console script"
    out = subprocess.run(
        [str(ENTRY), "--help"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert "DEVELOPMENT AND TEST stand-in for TensorFlow Serving" in out
    for flag in (
        "--model_config_file",
        "--model_config_file_poll_wait_seconds",
        "--allow_version_labels_for_unavailable_models",
        "--monitoring_config_file",
        "--enable_batching",
        "--batching_parameters_file",
        "--rest_api_timeout_in_ms",
        "--rest_api_num_threads",
        "--tensorflow_intra_op_parallelism",
        "--tensorflow_inter_op_parallelism",
        "--enable_model_warmup",
        "--file_system_poll_wait_seconds",
    ):
        assert flag in out, flag


@pytest.mark.parametrize(
    ("arg", "message"),
    [
        ("--no_such_flag=1", "--no_such_flag=1: unknown flag"),
        ("--grpc_socket_path=/tmp/x", "a tensorflow_model_server flag that this stand-in does not implement"),
        ("--enable_batching=maybe", "expected true or false"),
        ("stray", "stray: unexpected argument"),
        ("--test_delay_ms=7", "expected VERSION:MS"),
        ("--test_delay_ms=0:100", "expected VERSION:MS"),
    ],
)
def test_flags_unknown_or_bad_flag_exits_2(arg: str, message: str, tmp_path: Path) -> None:
    proc = _run("--model_name=news", f"--model_base_path={tmp_path}", arg)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr


def test_flags_batching_file_without_enable_batching_exits_2(tmp_path: Path) -> None:
    (tmp_path / "b.config").write_text("max_batch_size { value: 8 }\n")
    proc = _run(f"--model_base_path={tmp_path}", f"--batching_parameters_file={tmp_path / 'b.config'}")
    assert proc.returncode == 2
    assert "batching_parameters_file is set without setting server_options.enable_batching" in proc.stderr


@pytest.mark.parametrize(
    ("name", "models_config", "batching", "message"),
    [
        ("syntax", 'model_config_list { config { name: "news" base_path: ', None, "Invalid protobuf file"),
        (
            "unknown-field",
            'model_config_list { config { name: "news" base_path: "/m" model_platfrom: "tensorflow" } }',
            None,
            'has no field named "model_platfrom"',
        ),
        (
            "duplicate",
            _config(("news", Path("/m/a"), ""), ("news", Path("/m/b"), "")),
            None,
            "Illegal to list model news multiple times in config list",
        ),
        (
            "relative",
            'model_config_list { config { name: "news" base_path: "models/news" model_platform: "tf" } }',
            None,
            "Expected model news to have an absolute path or URI; got base_path()=models/news",
        ),
        (
            "unknown-platform",
            'model_config_list { config { name: "news" base_path: "/m" model_platform: "onnx" } }',
            None,
            "serves only tensorflow",
        ),
        ("negative-batch", None, "max_batch_size { value: -1 }\n", "max_batch_size must be positive; was -1"),
    ],
)
def test_flags_bad_config_file_refused_at_start(
    name: str, models_config: str | None, batching: str | None, message: str, tmp_path: Path
) -> None:
    base = tmp_path / "news"
    base.mkdir()
    cfg = tmp_path / "models.config"
    cfg.write_text(models_config or _config(("news", base, "")))
    args = [f"--port={free_port()}", f"--model_config_file={cfg}"]
    if batching is not None:
        (tmp_path / "batching.config").write_text(batching)
        args += ["--enable_batching", f"--batching_parameters_file={tmp_path / 'batching.config'}"]
    proc = _run(*args)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert message in proc.stderr, proc.stderr[-2000:]


def test_flags_label_on_unloaded_version_needs_allow_flag(version_source: Path, tmp_path: Path) -> None:
    base = tmp_path / "news"
    base.mkdir()
    publish_version(version_source, base, 1)
    cfg = tmp_path / "models.config"
    cfg.write_text(_config(("news", base, 'version_labels { key: "stable" value: 1 }')))
    proc = _run(f"--port={free_port()}", f"--model_config_file={cfg}")
    assert proc.returncode == 1
    assert (
        "Request to assign label to version 1 of model news, which is not currently available for inference"
        in proc.stderr
    ), proc.stderr[-2000:]
    server = LocalServer(
        base,
        tmp_path / "server.log",
        "news",
        "--allow_version_labels_for_unavailable_models=true",
        config_file=cfg,
    )
    try:
        server.wait_ready()
        r = httpx.get(f"{server.rest_url}/v1/models/news/labels/stable/metadata", timeout=10)
        assert r.status_code == 200 and r.json()["model_spec"]["version"] == "1", r.text
    finally:
        server.stop()


def test_flags_config_file_several_models_reread_add_change_unload(
    version_source: Path, sample: dict[str, Any], tmp_path: Path
) -> None:
    news, other = tmp_path / "news", tmp_path / "other"
    for base in (news, other):
        base.mkdir()
        for v in (1, 2):
            publish_version(version_source, base, v)
    cfg = tmp_path / "models.config"
    cfg.write_text(_config(("news", news, "model_version_policy { latest { num_versions: 1 } }")))
    mon = tmp_path / "monitoring.config"
    mon.write_text('prometheus_config { enable: true path: "/metrics/tfs" }\n')
    server = LocalServer(
        news,
        tmp_path / "server.log",
        "news",
        "--model_config_file_poll_wait_seconds=1",
        f"--monitoring_config_file={mon}",
        config_file=cfg,
    )
    rows = {
        "instances": [
            {"token_ids": sample["ids"][0].tolist(), "token_weights": sample["weights"][0].tolist()}
        ]
    }
    try:
        server.wait_ready()
        t = Target(server.rest_url, server.grpc_target, "news", news, local=True, server=server)
        assert set(t.status()) == {2}, t.status()
        # add a model, change a policy
        cfg.write_text(
            _config(
                ("news", news, "model_version_policy { all {} }"),
                ("other", other, "model_version_policy { specific { versions: 1 } }"),
            )
        )
        t.wait_for(
            "news 1 and 2 AVAILABLE", lambda s: all(s.get(v, {}).get("state") == "AVAILABLE" for v in (1, 2))
        )
        o = Target(server.rest_url, server.grpc_target, "other", other, local=True)
        o.wait_for("other 1 AVAILABLE", lambda s: s.get(1, {}).get("state") == "AVAILABLE" and 2 not in s)
        assert (
            httpx.post(f"{server.rest_url}/v1/models/other:predict", json=rows, timeout=30).status_code == 200
        )
        # a broken file is logged and changes nothing
        cfg.write_text("model_config_list { config { name: ")
        time.sleep(2.5)
        assert (
            httpx.post(f"{server.rest_url}/v1/models/other:predict", json=rows, timeout=30).status_code == 200
        )
        assert "failed to ReloadConfig" in server.log() or "Invalid protobuf file" in server.log()
        # unload a model
        cfg.write_text(_config(("news", news, "model_version_policy { all {} }")))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            r = httpx.post(f"{server.rest_url}/v1/models/other:predict", json=rows, timeout=30)
            if r.status_code == 404:
                break
            time.sleep(0.2)
        assert r.status_code == 404 and "Servable not found for request: Latest(other)" in r.json()["error"]
        page = httpx.get(f"{server.rest_url}/metrics/tfs", timeout=10).text
        # every API counts (status polls too): at least the two predictions, and the 404 after the unload
        count = ":tensorflow:serving:request_count"
        ok = re.search(rf'^{count}\{{model_name="other",status="OK"\}} (\d+)$', page, re.M)
        gone = f'\n{count}{{model_name="other",status="NOT_FOUND"}} '
        assert ok and int(ok.group(1)) >= 2 and gone in page, page[:3000]
        latency = ":tensorflow:serving:request_latency_bucket"
        assert f'{latency}{{model_name="other",API="predict",entrypoint="REST"' in page
        assert httpx.get(f"{server.rest_url}/monitoring/prometheus/metrics", timeout=10).status_code == 404
    finally:
        server.stop()
