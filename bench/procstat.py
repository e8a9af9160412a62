"""What the benchmark reads from the kernel: a process' CPU seconds and memory high-water mark from
/proc, the TCP payload bytes sent to a port (``ss``'s per-socket ``bytes_sent``), and the machine."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")
_BYTES_SENT = re.compile(r"\bbytes_sent:(\d+)")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` (all its threads) so far, from /proc/<pid>/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # the command name may contain spaces
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime (fields 14 and 15)


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (peak resident set since start) of ``pid``, in kB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def bytes_sent_to(ports: list[int]) -> dict[str, int]:
    """TCP payload bytes sent so far on each established connection whose destination is one of
    ``ports`` on 127.0.0.1, keyed by the connection's local address. This counts what a client (the
    sidecar, the baseline transformer) sent to the model server: headers, framing and body."""
    if not ports:
        return {}
    expr = " or ".join(f"dport = :{p}" for p in ports)
    out = subprocess.run(
        ["ss", "-tinH", "state", "established", f"( {expr} )"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    sent: dict[str, int] = {}
    local = ""
    for line in out.splitlines():
        if not line.startswith((" ", "\t")):
            parts = line.split()
            local = f"{parts[-2]}>{parts[-1]}" if len(parts) >= 2 else ""
            continue
        m = _BYTES_SENT.search(line)
        if m and local:
            sent[local] = int(m.group(1))
    return sent


def sent_delta(before: dict[str, int], after: dict[str, int]) -> int:
    """Bytes sent between two snapshots; connections opened in between count from zero."""
    return sum(v - before.get(k, 0) for k, v in after.items())


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_total_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / 1024 / 1024, 1)
    return 0.0


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"


def machine() -> dict[str, object]:
    return {
        "cpu_model": _cpu_model(),
        "cpus_online": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "memory_gib": _mem_total_gib(),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "packages": {
            n: _version(n)
            for n in (
                "tensorflow",
                "numpy",
                "fastapi",
                "uvicorn",
                "uvloop",
                "httptools",
                "httpx",
                "orjson",
                "grpcio",
                "tensorflow-serving-api",
            )
        },
    }


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]
