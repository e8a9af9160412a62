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
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from contracts.modeldir import version_dirs
from devstack import HOST, port_free, start_model_server, start_sidecar, wait_http

EXAMPLES = {
    "bbc-news": "The striker scored twice as the home side won the cup final in extra time.",
    "chinese-reviews": "质量很好，物流很快，非常满意",
}
READY_TIMEOUT_S = 180


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

    if not version_dirs(model_dir):
        print(f"==> no model under {model_dir}/: training one on {args.dataset} (progress below)", flush=True)
        train = ["train", "--dataset", args.dataset, "--model-name", name, "--out", str(args.models)]
        rc = subprocess.call(
            [sys.executable, "-m", "training", *train],
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"},
        )
        if rc != 0:
            return rc
    else:
        print(f"==> serving the versions under {model_dir}/ (delete it to retrain)", flush=True)

    # Their own sessions: Ctrl-C reaches this script only, which stops them in order.
    server = start_model_server(
        model_dir, name, None, poll_s=None, grpc_port=args.grpc_port, rest_port=args.rest_port,
        new_session=True,
    )  # fmt: skip
    sidecar = start_sidecar(
        args.models, name, server, None, transport=args.transport, port=args.port, new_session=True,
        version_poll_s=os.environ.get("SIDECAR_VERSION_POLL_S", "2.0"),
        log_level=os.environ.get("SIDECAR_LOG_LEVEL", "warning"),
    )  # fmt: skip
    procs = [sidecar, server]

    def stop(*_: object) -> None:
        for proc in procs:
            if proc.alive():
                proc.popen.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.stop()

    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    base = sidecar.url()
    try:
        print("==> starting the local model server and the sidecar", flush=True)
        try:
            body = wait_http(sidecar, "/readyz", timeout=READY_TIMEOUT_S, every=0.3, watch=[server]).json()
        except AssertionError as exc:
            print(f"error: {str(exc).splitlines()[0]}", file=sys.stderr)
            stop()
            return 1
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
        while all(proc.alive() for proc in procs):
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
