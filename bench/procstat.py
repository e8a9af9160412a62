"""What the benchmark reads from the kernel: a process' CPU seconds and memory high-water mark from
/proc, the TCP payload bytes sent to a port (each socket's ``bytes_sent``, as ``ss -ti`` shows it, read
from the kernel's socket diagnostics), and the machine."""

from __future__ import annotations

import os
import platform
import socket
import struct
import sys
from importlib import metadata
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


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


# The kernel's socket-diagnostics interface (netlink NETLINK_SOCK_DIAG), the one ``ss -ti`` reads:
# asked for the TCP sockets in ESTABLISHED, it answers each with its tcp_info, whose tcpi_bytes_sent
# (Linux 4.19 and later) counts the payload bytes the socket sent. Reading it here needs no ss binary.
_SOCK_DIAG_BY_FAMILY, _NLMSG_DONE, _NLMSG_ERROR = 20, 3, 2
_NLM_F_REQUEST_DUMP = 0x1 | 0x300
_INET_DIAG_INFO = 2
_TCP_ESTABLISHED = 1
_TCPI_BYTES_SENT = 200  # offset of tcpi_bytes_sent (u64) in struct tcp_info
_DIAG_MSG = struct.Struct("=BBBBHH16s16sI8sIIIII")  # struct inet_diag_msg: family ... sockid ... inode


def _tcp_sockets(family: int) -> list[tuple[str, int, bytes]]:
    """(local address, destination port, tcp_info) of each established TCP socket of ``family``."""
    req = struct.pack(
        "=BBBBI", family, socket.IPPROTO_TCP, 1 << (_INET_DIAG_INFO - 1), 0, 1 << _TCP_ESTABLISHED
    )
    req += bytes(48)  # inet_diag_sockid: no filter
    msg = struct.pack("=IHHII", 16 + len(req), _SOCK_DIAG_BY_FAMILY, _NLM_F_REQUEST_DUMP, 1, 0) + req
    found: list[tuple[str, int, bytes]] = []
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 4) as nl:  # 4: NETLINK_SOCK_DIAG
        nl.sendto(msg, (0, 0))
        while True:
            data = nl.recv(1 << 20)
            off = 0
            while off + 16 <= len(data):
                length, kind = struct.unpack_from("=IH", data, off)
                if kind == _NLMSG_DONE:
                    return found
                if kind == _NLMSG_ERROR:
                    raise OSError(f"sock_diag refused the query: {data[off + 16 : off + 20]!r}")
                body = data[off + 16 : off + length]
                fam, _st, _t, _r, sport, dport, src, _dst, *_ = _DIAG_MSG.unpack_from(body)
                info = b""
                a = _DIAG_MSG.size
                while a + 4 <= len(body):
                    alen, atype = struct.unpack_from("=HH", body, a)
                    if alen < 4:
                        break
                    if atype == _INET_DIAG_INFO:
                        info = body[a + 4 : a + alen]
                    a += (alen + 3) & ~3
                n = 4 if fam == socket.AF_INET else 16
                local = f"{socket.inet_ntop(fam, src[:n])}:{socket.ntohs(sport)}"
                found.append((local, socket.ntohs(dport), info))
                off += (length + 3) & ~3


def bytes_sent_to(ports: list[int]) -> dict[str, int]:
    """TCP payload bytes sent so far on each established connection whose destination is one of
    ``ports``, keyed by the connection's local address. This counts what a client (the sidecar, the
    baseline transformer) sent to the model server: headers, framing and body."""
    if not ports:
        return {}
    sent: dict[str, int] = {}
    for family in (socket.AF_INET, socket.AF_INET6):
        for local, dport, info in _tcp_sockets(family):
            if dport not in ports:
                continue
            if len(info) < _TCPI_BYTES_SENT + 8:
                raise RuntimeError("this kernel's tcp_info has no bytes_sent (Linux 4.19 or later has it)")
            sent[f"{local}>{dport}"] = struct.unpack_from("=Q", info, _TCPI_BYTES_SENT)[0]
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
                "protobuf",
                "tensorflow-serving-api",
                "pydantic",
                "scikit-learn",
            )
        },
    }


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]
