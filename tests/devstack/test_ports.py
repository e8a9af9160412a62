"""devstack.procs.free_port: the ports the harness gives its servers."""

from __future__ import annotations

import socket

import pytest

from devstack import procs


def test_ports_are_distinct_free_and_below_the_ephemeral_range() -> None:
    start = procs._ephemeral_start()
    ports = [procs.free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports), "a port was handed out twice"
    assert all(1024 < p < start for p in ports), (min(ports), max(ports), start)
    assert all(procs.port_free(p) for p in ports[:20])


def test_a_port_in_use_or_handed_out_before_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as held:
        held.bind((procs.HOST, 0))
        held.listen()
        taken = held.getsockname()[1]
        given = procs.free_port()
        spare = procs.free_port()
        procs._handed_out.discard(spare)
        draws = iter([taken, given, spare])  # in use, handed out before, free
        monkeypatch.setattr(procs.random, "randrange", lambda lo, hi: next(draws))
        assert procs.free_port() == spare
