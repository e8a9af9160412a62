"""Server-side batching (--enable_batching, --batching_parameters_file).

``test_batching_concurrent_variable_length_rows_answer_as_unbatched`` runs on the target (a real TF
Serving too, started with --enable_batching and pad_variable_length_inputs when TFSERVING_* is set).
The others start our own server with the batching parameters they need."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from lms_support import LocalServer, Target, publish_version

pytestmark = pytest.mark.timeout(300)


def _batching_server(root: Path, version_source: Path, params: str, *extra: str) -> LocalServer:
    base = root / "news"
    base.mkdir(parents=True)
    publish_version(version_source, base, 1)
    (root / "batching.config").write_text(params)
    return LocalServer(
        base,
        root / "server.log",
        "news",
        "--enable_batching=true",
        f"--batching_parameters_file={root / 'batching.config'}",
        *extra,
    )


@pytest.fixture(scope="module")
def batched(
    target: Target, version_source: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    if not target.local:
        yield target
        return
    root = tmp_path_factory.mktemp("batched")
    server = _batching_server(
        root,
        version_source,
        "max_batch_size { value: 32 }\nbatch_timeout_micros { value: 20000 }\n"
        "max_enqueued_batches { value: 100 }\nnum_batch_threads { value: 2 }\n"
        "pad_variable_length_inputs: true\nallowed_batch_sizes: 8\nallowed_batch_sizes: 32\n",
        # the thread and timeout flags a chart derives from its CPU limit, accepted and applied
        "--tensorflow_intra_op_parallelism=1",
        "--tensorflow_inter_op_parallelism=1",
        "--rest_api_num_threads=8",
        "--rest_api_timeout_in_ms=60000",
    )
    try:
        server.wait_ready()
        yield Target(server.rest_url, server.grpc_target, "news", root / "news", local=True, server=server)
    finally:
        server.stop()


def _row(sample: dict[str, Any], i: int, k: int) -> dict[str, Any]:
    return {
        "token_ids": sample["ids"][i][:k].tolist(),
        "token_weights": sample["weights"][i][:k].tolist(),
    }


def test_batching_concurrent_variable_length_rows_answer_as_unbatched(
    batched: Target, sample: dict[str, Any]
) -> None:
    """32 clients at once, each one row of its own length k: padded into shared batches, each client
    still gets exactly the unbatched answer for its row."""
    from tests.reference import predict_exported

    src = batched.base_path / "1"
    n_rows = len(sample["ids"])
    width = sample["ids"].shape[1]
    jobs = [(j % n_rows, max(1, width - (j * 7) % width)) for j in range(32)]
    expected = [
        predict_exported(src, sample["ids"][i : i + 1, :k], sample["weights"][i : i + 1, :k])[
            "probabilities"
        ][0]
        for i, k in jobs
    ]
    barrier = threading.Barrier(len(jobs))

    def call(job: tuple[int, int]) -> list[float]:
        i, k = job
        with httpx.Client(base_url=batched.rest_url, timeout=60) as c:
            barrier.wait()
            r = c.post(f"/v1/models/{batched.model_name}:predict", json={"instances": [_row(sample, i, k)]})
        assert r.status_code == 200, r.text
        return list(r.json()["predictions"][0]["probabilities"])

    with ThreadPoolExecutor(len(jobs)) as pool:
        got = list(pool.map(call, jobs))
    for job, g, e in zip(jobs, got, expected, strict=True):
        np.testing.assert_allclose(g, e, atol=1e-6, err_msg=str(job))
    if batched.local:
        page = httpx.get(f"{batched.rest_url}/monitoring/prometheus/metrics", timeout=10).text
        batches = _metric(page, "tensorflow_serving_batches_total")
        assert 0 < batches < len(jobs), f"{batches} batches for {len(jobs)} concurrent requests"


def _metric(page: str, name: str) -> float:
    total = 0.0
    found = False
    for line in page.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
            found = True
    assert found, f"no {name} in:\n{page[:3000]}"
    return total


def test_batching_queue_full_is_unavailable(
    version_source: Path, sample: dict[str, Any], tmp_path: Path
) -> None:
    """One batch may wait (max_enqueued_batches 1) and it stays open 3 s: a request that does not fit
    in it is refused at once with TF Serving's queue-full error; one larger than a batch is invalid;
    the request waiting in the batch outlives --rest_api_timeout_in_ms (2 s) and answers 504.
    (max_batch_size 8: the version's warmup request, 8 rows, goes through the batch queue too.)"""
    server = _batching_server(
        tmp_path,
        version_source,
        "max_batch_size { value: 8 }\nbatch_timeout_micros { value: 3000000 }\n"
        "max_enqueued_batches { value: 1 }\nnum_batch_threads { value: 1 }\n"
        "pad_variable_length_inputs: true\n",
        "--rest_api_timeout_in_ms=2000",
    )
    try:
        server.wait_ready()
        url = f"{server.rest_url}/v1/models/news:predict"
        six = {"instances": [_row(sample, 0, 5)] * 6}
        first: list[httpx.Response] = []
        th = threading.Thread(target=lambda: first.append(httpx.post(url, json=six, timeout=30)))
        th.start()
        time.sleep(1.0)  # the 6-row request sits in the open batch
        t0 = time.monotonic()
        r = httpx.post(url, json={"instances": [_row(sample, 1, 5)] * 3}, timeout=30)
        assert time.monotonic() - t0 < 1.5
        assert r.status_code == 503, r.text
        assert r.json()["error"] == "The batch scheduling queue to which this task was submitted is full"
        th.join(30)
        # it waited in the batch for 2 s, past --rest_api_timeout_in_ms
        assert first and first[0].status_code == 504, first
        assert first[0].json()["error"] == "Deadline exceeded"
        r = httpx.post(url, json={"instances": [_row(sample, 0, 5)] * 9}, timeout=30)
        assert r.status_code == 400
        assert r.json()["error"] == "Task size 9 is larger than maximum input batch size 8"
    finally:
        server.stop()
