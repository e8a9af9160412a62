"""Fixtures of the reliability suite: two genuinely different model versions, real model server
and sidecar processes on 127.0.0.1, and the figures each test records into ``out/reliability.json``
(rendered into docs/reliability.md by ``render_report.py``; ``make reliability`` does both)."""

from __future__ import annotations

import csv
import json
import os
import platform
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rel_support import MODEL, PROBES, Proc, Stack

from contracts import modeldir

REPO = Path(__file__).resolve().parents[2]
OUT_JSON = Path(os.environ.get("RELIABILITY_JSON", REPO / "out" / "reliability.json"))

# --- figures ------------------------------------------------------------------------------------
_RECORDS: dict[str, dict[str, Any]] = {}
_OUTCOMES: dict[str, dict[str, Any]] = {}


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> dict[str, Any]:
    """What this test did: ``requests`` sent, ``faults`` injected, ``cases`` fuzzed, ``failures`` seen
    (requests or cases that broke a rule; the assertions require 0), plus free-form ``details``."""
    rec: dict[str, Any] = {"requests": 0, "faults": 0, "cases": 0, "failures": 0, "details": {}}
    _RECORDS[request.node.nodeid] = rec
    return rec


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    entry = _OUTCOMES.setdefault(report.nodeid, {"outcome": "passed", "duration_s": 0.0})
    entry["duration_s"] = round(entry["duration_s"] + report.duration, 2)
    if report.failed:
        entry["outcome"] = "failed" if report.when == "call" else f"error ({report.when})"
        entry["reason"] = str(report.longrepr).strip().splitlines()[-1][:300] if report.longrepr else ""
    elif report.skipped and report.when == "call":
        entry["outcome"] = "skipped"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _OUTCOMES:
        return
    tests = []
    for nodeid, outcome in _OUTCOMES.items():
        rec = _RECORDS.get(nodeid, {"requests": 0, "faults": 0, "cases": 0, "failures": 0, "details": {}})
        tests.append(
            {
                "test": nodeid.split("::", 1)[-1],
                "file": nodeid.split("::", 1)[0].split("/")[-1],
                **outcome,
                **rec,
            }
        )
    totals = {k: sum(int(t[k]) for t in tests) for k in ("requests", "faults", "cases", "failures")}
    totals["tests"] = len(tests)
    totals["tests_failed"] = sum(1 for t in tests if t["outcome"] != "passed")
    doc = {
        "generated_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "system": platform.system()},
        "totals": totals,
        "tests": tests,
    }
    OUT_JSON.parent.mkdir(parents=True, exist_ok=True)
    OUT_JSON.write_text(json.dumps(doc, indent=2) + "\n")


# --- model versions -------------------------------------------------------------------------------
_WORDS = {
    "athletics": "match goal team score player coach league win season cup",
    "gadgets": "computer software chip phone internet data code app cloud robot",
    "finance": "bank market stock price profit trade share fund loan tax",
}


@pytest.fixture(scope="session")
def v1_dir(exported_models: Path) -> Path:
    """The BBC model (5 labels, word 1-2-grams) exported by the shared fixture."""
    return exported_models / MODEL / "1"


@pytest.fixture(scope="session")
def v2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A different model: 3 other labels and another vectorizer (so another fingerprint)."""
    from training.model import TrainConfig
    from training.pipeline import RunConfig, run

    root = tmp_path_factory.mktemp("v2")
    rng = random.Random(11)
    data = root / "three.csv"
    with data.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label"])
        for label, words in _WORDS.items():
            vocab = words.split()
            for i in range(25):
                w.writerow([" ".join(rng.choice(vocab) for _ in range(12)) + f" item{i}", label])
    run(
        RunConfig(dataset=str(data), model_name=MODEL, out=root / "models", train=TrainConfig(epochs=3)),
        emit=lambda _line: None,
    )
    return root / "models" / MODEL / "1"


def version_info(path: Path) -> dict[str, Any]:
    from tests.reference import predict_exported
    from textvec import Vectorizer, load_labels
    from textvec.calibration import load_calibration

    vec = Vectorizer.load(path / modeldir.VECTORIZER)
    ids, weights = vec.transform(PROBES)
    probs = predict_exported(path, ids, weights)["probabilities"]
    # The sidecar answers with the version's calibrated probabilities (its stored temperature).
    calibrated = load_calibration(path, vec.fingerprint).apply(np.asarray(probs))
    return {"labels": load_labels(path), "fingerprint": vec.fingerprint, "probs": calibrated}


@pytest.fixture(scope="session")
def versions(v1_dir: Path, v2_dir: Path) -> dict[int, dict[str, Any]]:
    """Per version: labels, vectorizer fingerprint and the expected probabilities of PROBES."""
    info = {1: version_info(v1_dir), 2: version_info(v2_dir)}
    assert set(info[1]["labels"]).isdisjoint(info[2]["labels"]), "the two versions must not share labels"
    assert info[1]["fingerprint"] != info[2]["fingerprint"]
    return info


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    s = Stack(tmp_path)
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="session")
def shared(tmp_path_factory: pytest.TempPathFactory, v1_dir: Path) -> Iterator[tuple[Stack, Proc, Proc]]:
    """One model server serving version 1 and one REST sidecar in front of it, for the tests that do not
    break the server (fuzzing, hostile input, sustained load, security)."""
    s = Stack(tmp_path_factory.mktemp("shared"))
    try:
        s.publish(v1_dir, 1)
        server = s.server()
        sidecar = s.sidecar(server)
        yield s, server, sidecar
    finally:
        s.stop()
