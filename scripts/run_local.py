"""`make run`: train if needed, start the local model server and the sidecar on 127.0.0.1, wait until the
sidecar is ready, print how to call it, and stop both on Ctrl-C.

The local model server is the development stand-in for TF Serving (no Docker needed); in a cluster the
same sidecar talks to the real tensorflow/serving container."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

EXAMPLES = {
    "bbc-news": "The striker scored twice as the home side won the cup final in extra time.",
    "chinese-reviews": "质量很好，物流很快，非常满意",
}
HOST = "127.0.0.1"


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def has_version(model_dir: Path) -> bool:
    return model_dir.is_dir() and any(
        p.name.isdigit() and (p / "saved_model.pb").is_file() for p in model_dir.iterdir()
    )


def get_json(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, {}
    except (OSError, ValueError):
        return 0, {}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--dataset", default="bbc-news")
    p.add_argument("--model-name", default=None)
    p.add_argument("--models", type=Path, default=Path("models"))
    p.add_argument("--port", type=int, default=8080, help="sidecar port")
    p.add_argument("--grpc-port", type=int, default=8500)
    p.add_argument("--rest-port", type=int, default=8501)
    p.add_argument(
        "--transport", choices=["rest", "grpc"], default=os.environ.get("SIDECAR_TRANSPORT", "rest")
    )
    args = p.parse_args()
    name = args.model_name or ("reviews" if args.dataset == "chinese-reviews" else "news")
    model_dir = args.models / name

    busy = [str(pt) for pt in (args.port, args.grpc_port, args.rest_port) if not port_free(pt)]
    if busy:
        print(
            f"error: port(s) {', '.join(busy)} on {HOST} are in use; stop what holds them or pass "
            "PORT=/GRPC_PORT=/REST_PORT= to make run",
            file=sys.stderr,
        )
        return 2

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
    if not has_version(model_dir):
        print(f"==> no model under {model_dir}/: training one on {args.dataset} (progress below)", flush=True)
        rc = subprocess.call(
            [
                sys.executable,
                "-m",
                "training",
                "train",
                "--dataset",
                args.dataset,
                "--model-name",
                name,
                "--out",
                str(args.models),
            ],
            env=env,
        )
        if rc != 0:
            return rc
    else:
        print(f"==> serving the versions under {model_dir}/ (delete it to retrain)", flush=True)

    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "local_model_server",
            "--port",
            str(args.grpc_port),
            "--rest_api_port",
            str(args.rest_port),
            "--model_name",
            name,
            "--model_base_path",
            str(model_dir),
        ],
        env=env,
        start_new_session=True,
    )
    sidecar = subprocess.Popen(
        [sys.executable, "-m", "preprocess_service"],
        env={
            **env,
            "SIDECAR_MODEL_NAME": name,
            "SIDECAR_MODEL_BASE_PATH": str(args.models),
            "SIDECAR_TRANSPORT": args.transport,
            "SIDECAR_HOST": HOST,
            "SIDECAR_PORT": str(args.port),
            "SIDECAR_TFSERVING_REST_URL": f"http://{HOST}:{args.rest_port}",
            "SIDECAR_TFSERVING_GRPC_TARGET": f"{HOST}:{args.grpc_port}",
            "SIDECAR_LOG_LEVEL": os.environ.get("SIDECAR_LOG_LEVEL", "warning"),
        },
        start_new_session=True,
    )
    procs = [sidecar, server]

    def stop(*_: object) -> None:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()

    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    base = f"http://{HOST}:{args.port}"
    try:
        print("==> starting the local model server and the sidecar", flush=True)
        deadline = time.monotonic() + 180
        while True:
            status, body = get_json(base + "/readyz")
            if status == 200:
                break
            for proc in procs:
                if proc.poll() is not None:
                    print(f"error: {proc.args[2]} exited with {proc.returncode}", file=sys.stderr)
                    stop()
                    return 1
            if time.monotonic() > deadline:
                print(f"error: not ready after 180 s: {body}", file=sys.stderr)
                stop()
                return 1
            time.sleep(0.3)
        sample = EXAMPLES.get(args.dataset, "Write any sentence here.")
        payload = json.dumps({"text": sample, "return_probabilities": True}, ensure_ascii=False)
        curl = f"curl -s {base}/v1/classify -H 'content-type: application/json' -d {shlex.quote(payload)}"
        print(
            f"\nReady: model '{name}' version {body.get('version')} "
            f"({args.transport} to the local model server)\n"
            f"  API:      {base}/v1/classify\n"
            f"  Docs:     {base}/docs\n"
            f"  Model:    {base}/v1/model\n"
            f"  Metrics:  {base}/metrics\n\n"
            f"Try it:\n  {curl}\n\n"
            "Train a new version in another terminal and watch it go live without a restart:\n"
            f"  .venv/bin/python -m training train --dataset {args.dataset} --model-name {name} "
            f"--out {args.models}\n\n"
            "Ctrl-C stops both.",
            flush=True,
        )
        while all(proc.poll() is None for proc in procs):
            time.sleep(0.5)
        print("error: a process exited; stopping", file=sys.stderr)
        stop()
        return 1
    except KeyboardInterrupt:
        print("\n==> stopping", flush=True)
        stop()
        return 0


if __name__ == "__main__":
    sys.exit(main())
