"""Batch output equals the online answers: every text of the version's test split scored offline
(``python -m scoring``) and through ``/v1/classify`` of a real sidecar on the local
model server gets the same label, abstention, calibrated score and top-k, to 1e-6."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devstack import Proc, Stack
from scoring.cli import main


@pytest.fixture(scope="module")
def sidecar(tmp_path_factory: pytest.TempPathFactory, exported_models: Path) -> Iterator[Proc]:
    stack = Stack(tmp_path_factory.mktemp("score_eq"))
    stack.publish(exported_models / "news" / "1", 1)
    try:
        yield stack.sidecar(stack.server())
    finally:
        stack.stop()


def held_out_texts(small_corpus_csv: Path) -> list[str]:
    """The test split exactly as training drew it (same loader, cleaning, seed and sizes)."""
    from training.cleaning import deduplicate
    from training.datasets import load_dataset
    from training.model import TrainConfig
    from training.pipeline import RunConfig, split

    ds = deduplicate(load_dataset(str(small_corpus_csv)))
    cfg = RunConfig(dataset=str(small_corpus_csv), model_name="news", out=Path("unused"))
    parts = split(ds, sorted(set(ds.labels)), cfg.test_size, cfg.val_size, TrainConfig().seed)
    return parts["test"].texts


def test_batch_equals_online_on_the_test_split(
    sidecar: Proc, exported_models: Path, small_corpus_csv: Path, tmp_path: Path
) -> None:
    texts = held_out_texts(small_corpus_csv)
    assert len(texts) >= 30, len(texts)
    src = tmp_path / "test_split.jsonl"
    src.write_text("\n".join(json.dumps({"id": str(i), "text": t}) for i, t in enumerate(texts)) + "\n")
    out = tmp_path / "scored.jsonl"
    assert (
        main([str(src), "--model-dir", str(exported_models / "news"), "--out", str(out), "--top-k", "5"]) == 0
    )
    batch = [json.loads(line) for line in out.read_text().splitlines()]
    assert [b["id"] for b in batch] == [str(i) for i in range(len(texts))]

    online = []
    for start in range(0, len(texts), 32):
        r = httpx.post(
            sidecar.url() + "/v1/classify", json={"texts": texts[start : start + 32], "top_k": 5}, timeout=60
        )
        assert r.status_code == 200, r.text
        assert r.json()["model"]["version"] == 1
        online += r.json()["predictions"]

    for b, o in zip(batch, online, strict=True):
        assert b["version"] == 1
        assert (b["label"], b["abstained"]) == (o["label"], o["abstained"]), (b, o)
        assert abs(b["score"] - o["score"]) <= 1e-6, (b, o)
        assert [t["label"] for t in b["top_k"]] == [t["label"] for t in o["top_k"]]
        for bt, ot in zip(b["top_k"], o["top_k"], strict=True):
            assert abs(bt["score"] - ot["score"]) <= 1e-6
