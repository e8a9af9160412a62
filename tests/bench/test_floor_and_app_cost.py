"""bench.floor and bench.app_cost run end to end with tiny loads, so they cannot rot: every floor server
answers the load generator without an error, and the sidecar app answers every in-process request with
a 200 (the tool raises on any other status). No timing is asserted (2 shared cores)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from bench import floor

DOCS = [
    "The striker scored twice and the team won the cup final after extra time.",
    "Shares fell after the bank cut its profit forecast for the year.",
    "The minister said the election would be held in the spring.",
]


@pytest.mark.parametrize("kind", floor.KINDS)
def test_each_floor_server_answers_the_load_generator(exported_models: Path, kind: str) -> None:
    run = floor.measure(kind, exported_models / "news" / "1", DOCS, concurrency=4, duration_s=0.5)
    assert run["kind"] == kind and run["requests"] > 0 and run["throughput_rps"] > 0
    assert run["cpu_ms_per_request"] > 0


@pytest.mark.parametrize("vectorize", [True, False])
def test_app_cost_drives_the_sidecar_app_in_process(exported_models: Path, vectorize: bool) -> None:
    # its own process: the tool configures logging as the sidecar's entry point does
    code = (
        "import asyncio, sys; from pathlib import Path; import orjson; from bench.app_cost import measure; "
        "docs = orjson.loads(sys.argv[2]); vec = sys.argv[3] == '1'; "
        "print(orjson.dumps(asyncio.run(measure(Path(sys.argv[1]), 'news', docs, 96, vec))).decode())"
    )
    args = [
        sys.executable,
        "-c",
        code,
        str(exported_models),
        orjson.dumps(DOCS).decode(),
        str(int(vectorize)),
    ]
    out = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    result = orjson.loads(out.stdout.strip().splitlines()[-1])
    assert result["vectorize"] is vectorize
    assert result["requests"] >= 96 and result["cpu_ms_per_request"] > 0
