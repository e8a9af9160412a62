"""The sidecar's Histogram (bucket by bisection) exposes exactly what prometheus_client's does."""

from __future__ import annotations

import math

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client import Histogram as Reference

from preprocess_service.metrics import _LATENCY, Histogram

# on a bound, just past one, below all, past the last finite one, infinite and NaN
VALUES = [0.0, 0.0005, 0.00050001, 0.001, 1e-9, -1.0, 5.0, 10.0, 10.0001, 1e9, math.inf, math.nan, 0.3]


def exposition(cls: type[Reference], values: list[float]) -> list[bytes]:
    registry = CollectorRegistry()
    child = cls("x_seconds", "doc", ["a"], buckets=_LATENCY, registry=registry).labels("q")
    for v in values:
        child.observe(v)
    return [line for line in generate_latest(registry).splitlines() if b"_created" not in line]


@pytest.mark.parametrize("values", [VALUES, [v for v in VALUES if not math.isnan(v)], [0.012] * 5])
def test_same_buckets_count_and_sum_as_prometheus_client(values: list[float]) -> None:
    ours = exposition(Histogram, values)
    assert ours == exposition(Reference, values)
    assert any(b'le="0.0005"' in line for line in ours)


def test_a_labelled_parent_still_refuses_an_observation() -> None:
    parent = Histogram("y_seconds", "doc", ["a"], buckets=_LATENCY, registry=CollectorRegistry())
    with pytest.raises(ValueError, match="missing label values"):
        parent.observe(0.1)
