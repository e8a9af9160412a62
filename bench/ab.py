"""A/B of sidecar settings: one model server, one sidecar per arm, windows at one concurrency taken arm
after arm for several rounds.

This VM's speed drifts by 10-20% over minutes, more than most changes move, so single windows minutes
apart cannot compare two configurations. Here each round measures every arm back to back, and each arm
is reported against the first arm *in the same round* (throughput, p99 and CPU per request of the
sidecar and of the model server); the medians of those per-round ratios are the result.

``python -m bench.ab --arm base= --arm short=batch_max_wait_ms:0.75 [--arm NAME=KEY:VALUE/KEY:VALUE]
[--rounds 8] [--concurrency 32] [--duration 5]``: an arm is a name and ``Settings`` fields (the
sidecar's ``SIDECAR_*`` environment without the prefix, lower case). A key that starts with ``--`` is
a flag of the model server instead (``--tensorflow_intra_op_parallelism:1``): arms with the same flags
share one model server, arms with other flags get their own. Writes ``bench/raw/ab.json``."""

from __future__ import annotations

import argparse
import contextlib
import functools
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from bench.__main__ import _ensure_model, test_documents
from bench.runner import HOST, BenchSettings, Runner
from devstack import Proc, loadgen

FIGURES = ("throughput_rps", "p99_ms", "sidecar_cpu_ms", "model_server_cpu_ms")


def parse_arm(text: str) -> tuple[str, dict[str, str]]:
    """``name=key:value/key:value`` (``name=`` for the defaults) as the name and its settings."""
    name, sep, spec = text.partition("=")
    if not sep or not name:
        raise ValueError(f"an arm is NAME=KEY:VALUE/...: {text!r}")
    settings: dict[str, str] = {}
    for part in filter(None, spec.split("/")):
        key, sep, value = part.partition(":")
        if not sep or not key:
            raise ValueError(f"a setting is KEY:VALUE: {part!r} in {text!r}")
        settings[key] = value
    return name, settings


def split_settings(settings: dict[str, str]) -> tuple[dict[str, str], tuple[str, ...]]:
    """An arm's sidecar settings, and its model-server flags (``--name=value``, in a stable order)."""
    sidecar = {k: v for k, v in settings.items() if not k.startswith("--")}
    flags = tuple(sorted(f"{k}={v}" for k, v in settings.items() if k.startswith("--")))
    return sidecar, flags


def summarize(rounds: list[dict[str, dict[str, float]]]) -> dict[str, Any]:
    """Per arm: the medians of its figures, and of each figure over the first arm's in the same round."""
    arms = list(rounds[0])
    first = arms[0]
    out: dict[str, Any] = {}
    for arm in arms:
        med = {f: round(statistics.median(r[arm][f] for r in rounds), 4) for f in FIGURES}
        rel = {
            f: round(statistics.median(r[arm][f] / r[first][f] for r in rounds if r[first][f]), 4)
            for f in FIGURES
        }
        out[arm] = {"median": med, f"over_{first}": rel}
    return out


def measure(
    settings: BenchSettings,
    docs: list[str],
    arms: dict[str, dict[str, str]],
    rounds: int,
    concurrency: int,
    emit: Callable[[str], None] = print,
) -> list[dict[str, dict[str, float]]]:
    """``rounds`` rounds of one window per arm at ``concurrency`` (``settings``: the models, windows and
    logs), each sidecar in front of the model server started with its arm's flags; each round's figures
    by arm."""
    runner = Runner(settings, docs, emit=emit)
    runner.logs.mkdir(parents=True, exist_ok=True)
    out: list[dict[str, dict[str, float]]] = []
    with contextlib.ExitStack() as stack:
        servers: dict[tuple[str, ...], Proc] = {}  # one model server per distinct set of flags
        stacks: dict[str, tuple[Proc, Proc]] = {}  # arm: its model server and its sidecar
        for name, arm in arms.items():
            sidecar_settings, flags = split_settings(arm)
            if flags not in servers:
                servers[flags] = stack.enter_context(runner._model_server(None, *flags))
                pid = servers[flags].popen.pid
                emit(f"model server {len(servers)} (pid {pid}): {' '.join(flags) or 'defaults'}")
            server = servers[flags]
            stacks[name] = (server, stack.enter_context(runner._sidecar(server, **sidecar_settings)))
        for i in range(rounds):
            emit(f"round {i + 1}/{rounds}")
            row = {}
            for name, (server, sidecar) in stacks.items():
                requests = loadgen.build_requests(HOST, sidecar.ports["http"], "/v1/classify", runner.bodies)
                w = runner._window(name, sidecar, server, requests, concurrency)
                row[name] = {
                    "throughput_rps": w["throughput_rps"],
                    "p99_ms": w["latency_ms"]["p99"],
                    "sidecar_cpu_ms": w["front_cpu_ms_per_request"],
                    "model_server_cpu_ms": w["model_server_cpu_ms_per_request"],
                }
            out.append(row)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__.split("\n\n")[0])
    p.add_argument("--arm", action="append", required=True, help="NAME=KEY:VALUE/... (at least two)")
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--duration", type=float, default=5.0, help="measured seconds per window")
    p.add_argument("--models", type=Path, default=Path("models"))
    p.add_argument("--out", type=Path, default=Path("bench/raw/ab.json"))
    args = p.parse_args(argv)
    try:
        arms = dict(parse_arm(a) for a in args.arm)
    except ValueError as exc:
        p.error(str(exc))
    if len(arms) < 2 or args.rounds < 1:
        p.error("two arms or more (distinct names), and at least one round")
    version_dir = _ensure_model(args.models, "news", "bbc-news")
    docs = test_documents(version_dir, "bbc-news")
    settings = BenchSettings(
        model_base=args.models,
        raw_dir=args.out.parent / "ab",
        duration_s=args.duration,
        warmup_s=min(1.0, args.duration),
    )
    emit = functools.partial(print, flush=True)
    rounds = measure(settings, docs, arms, args.rounds, args.concurrency, emit)
    result = {"arms": arms, "concurrency": args.concurrency, "duration_s": args.duration}
    result |= {"rounds": rounds, "summary": summarize(rounds)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n")
    for name, s in result["summary"].items():
        rel = s[f"over_{next(iter(arms))}"]
        print(
            f"{name:12s} " + "  ".join(f"{f} {s['median'][f]:g} ({rel[f]:.3f})" for f in FIGURES), flush=True
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
