"""API-key rotation without a restart: the key file is a mounted Secret that the kubelet swaps in place.

The process test runs the real sidecar and the local model server (stand-in for TF Serving) on
127.0.0.1 and rotates the keys the way the kubelet updates a Secret volume (a new timestamped
directory, then an atomic rename of the ``..data`` symlink), under continuous traffic."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devstack import Proc, start_model_server, start_sidecar, wait_http
from preprocess_service.api_keys import ApiKeys

OLD, NEW = "old-key-" + "a" * 24, "new-key-" + "b" * 24
TEXT = "The striker scored twice and the team won the cup final after extra time at the stadium."


class SecretVolume:
    """A directory laid out like a kubelet Secret volume: <dir>/api-keys -> ..data/api-keys,
    ..data -> ..<timestamp>/; an update writes a new timestamped directory and renames the symlink."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.n = 0

    @property
    def file(self) -> Path:
        return self.root / "api-keys"

    def write(self, *keys: str) -> None:
        self.n += 1
        stamp = self.root / f"..2026_11_29_00_00_{self.n:02d}.000000000"
        stamp.mkdir()
        (stamp / "api-keys").write_text("".join(k + "\n" for k in keys))
        tmp_link = self.root / "..data_tmp"
        tmp_link.symlink_to(stamp.name)
        old_target = os.readlink(self.root / "..data") if (self.root / "..data").is_symlink() else None
        os.replace(tmp_link, self.root / "..data")
        if not self.file.is_symlink():
            self.file.symlink_to("..data/api-keys")
        if old_target:
            shutil.rmtree(self.root / old_target)


# --- the reload rules, with a fake clock ---------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_api_keys_reload_after_interval_only(tmp_path: Path) -> None:
    vol, clock = SecretVolume(tmp_path / "secret"), Clock()
    vol.write(OLD)
    keys = ApiKeys(("inline-key",), vol.file, reload_s=1.0, clock=clock)
    assert keys.current() == ("inline-key", OLD)
    vol.write(NEW)
    clock.t = 0.5
    assert keys.current() == ("inline-key", OLD), "checked again before reload_s"
    clock.t = 1.0
    assert keys.current() == ("inline-key", NEW)


def test_api_keys_empty_or_missing_file_keeps_previous_keys(tmp_path: Path) -> None:
    vol, clock = SecretVolume(tmp_path / "secret"), Clock()
    vol.write(OLD)
    keys = ApiKeys((), vol.file, reload_s=1.0, clock=clock)
    vol.write()  # an empty Secret value: must not turn auth off
    clock.t = 1.0
    assert keys.current() == (OLD,)
    shutil.rmtree(vol.root)  # volume gone (pod shutting down): keep serving with the last keys
    clock.t = 2.0
    assert keys.current() == (OLD,)


def test_api_keys_unreadable_file_at_start_fails(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        ApiKeys((), tmp_path / "missing", reload_s=1.0)


# --- the real processes ------------------------------------------------------------------------------
@pytest.fixture
def sidecar_with_key_file(tmp_path: Path, exported_models: Path) -> Iterator[tuple[SecretVolume, Proc]]:
    base = tmp_path / "models"
    shutil.copytree(exported_models / "news" / "1", base / "news" / "1")
    vol = SecretVolume(tmp_path / "secret")
    vol.write(OLD)
    server = start_model_server(base / "news", "news", tmp_path / "logs")
    sidecar = start_sidecar(
        base, "news", server, tmp_path / "logs", api_keys_file=str(vol.file), api_keys_reload_s="0.2"
    )
    try:
        wait_http(sidecar, "/readyz")
        yield vol, sidecar
    finally:
        sidecar.stop()
        server.stop()


def _status(sidecar: Proc, key: str) -> int:
    r = httpx.post(
        sidecar.url() + "/v1/classify",
        json={"text": TEXT},
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    return r.status_code


def _wait_status(sidecar: Proc, key: str, status: int, timeout: float = 10) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if _status(sidecar, key) == status:
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"key {key[:8]}... did not get {status} within {timeout}s:\n{sidecar.log_tail()}")


def test_api_keys_rotation_without_restart_or_failed_request(
    sidecar_with_key_file: tuple[SecretVolume, Proc],
) -> None:
    vol, sidecar = sidecar_with_key_file
    pid = sidecar.popen.pid
    assert _status(sidecar, OLD) == 200 and _status(sidecar, NEW) == 401

    # Clients keep using the old key while the new one is added (the first half of a rotation).
    results: list[int] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def traffic() -> None:
        with httpx.Client(timeout=10) as c:
            while not stop.is_set():
                try:
                    r = c.post(
                        sidecar.url() + "/v1/classify",
                        json={"text": TEXT},
                        headers={"Authorization": f"Bearer {OLD}"},
                    )
                    results.append(r.status_code)
                except httpx.HTTPError as exc:
                    errors.append(exc)

    t = threading.Thread(target=traffic)
    t.start()
    try:
        time.sleep(0.5)
        vol.write(OLD, NEW)
        _wait_status(sidecar, NEW, 200)
        time.sleep(0.5)
    finally:
        stop.set()
        t.join(15)
    assert not errors, errors[:3]
    assert len(results) > 10 and set(results) == {200}, f"requests during the rotation: {set(results)}"

    # Second half: the old key is retired and refused from then on, still without a restart.
    vol.write(NEW)
    _wait_status(sidecar, OLD, 401)
    assert _status(sidecar, NEW) == 200
    assert sidecar.popen.poll() is None and sidecar.popen.pid == pid
