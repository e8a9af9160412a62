"""The printed table and the plot of a result (bench/results.json)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

ORDER = ("inproc", "dense_rest", "dense_rest_batch", "sidecar_rest_batch", "sidecar_rest_nobatch",
         "sidecar_grpc_batch", "sidecar_grpc_nobatch")  # fmt: skip


def _targets(result: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    t = result["targets"]
    return [(k, t[k]) for k in ORDER if k in t]


def table(result: dict[str, Any]) -> str:
    """A Markdown table: one row per (target, concurrency)."""
    head = (
        "| target | c | req/s | p50 ms | p95 ms | p99 ms | bytes to model server / doc | "
        "front CPU ms / req | model server CPU ms / req | peak RSS MB |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    rows = []
    for name, t in _targets(result):
        for r in t["runs"]:
            lat = r["latency_ms"]
            bytes_doc = r.get("bytes_to_model_server_per_doc")
            front_cpu = r.get("front_cpu_ms_per_request", r.get("cpu_ms_per_request"))
            rows.append(
                f"| {name} | {r['concurrency']} | {r['throughput_rps']:.0f} | {lat.get('p50', 0):.2f} | "
                f"{lat.get('p95', 0):.2f} | {lat.get('p99', 0):.2f} | "
                f"{'-' if bytes_doc is None else f'{bytes_doc:,.0f}'} | "
                f"{'-' if front_cpu is None else f'{front_cpu:.3f}'} | "
                f"{r.get('model_server_cpu_ms_per_request', '-')} | {t['peak_rss_mb']:.0f} |"
            )
    return head + "\n".join(rows) + "\n"


def missed(result: dict[str, Any]) -> list[str]:
    """The targets this run measured and missed."""
    c = result["targets_check"]
    return [name for name, v in c.items() if isinstance(v, dict) and "limit" in v and v["met"] is False]


def checks(result: dict[str, Any]) -> str:
    c = result["targets_check"]
    lines = [f"targets (default configuration: {c['default_configuration']})"]
    for name, v in c.items():
        if not isinstance(v, dict) or "limit" not in v:
            continue
        op = ">=" if "at_least" in v else "<="
        verdict = {True: "MET", False: "MISSED", None: "not measured"}[v["met"]]
        lines.append(f"  {name:32s} {v['value']!s:>10} (target {op} {v['limit']})  {verdict}")
    if "ratios_to_ceiling_from" in c:
        lines.append(f"  the three ratios to the ceiling are from: {c['ratios_to_ceiling_from']}")
        lines.append(f"  the sweep's c=32 windows gave: {c.get('sweep_c32_ratios_to_ceiling')}")
    for i, r in enumerate(result.get("paired", {}).get("rounds", [])):
        side, ceil = r["sidecar"], r["inproc"]
        cpu = f"{side['front_cpu_ms_per_request']} / {ceil['cpu_ms_per_request']} ms = {r['cpu_ratio']}"
        rps = f"{side['throughput_rps']} / {ceil['throughput_rps']} = {r['throughput_ratio']}"
        p99 = f"{side['latency_ms'].get('p99')} / {ceil['latency_ms'].get('p99')} ms = {r['p99_ratio']}"
        lines.append(f"  paired round {i + 1}: CPU {cpu}, req/s {rps}, p99 {p99}")
    lines.append(f"  peak RSS by sidecar configuration (MB): {c.get('peak_rss_mb_by_transport')}")
    lines.append(
        f"  throughput at c=32 over the unbatched baseline: {c.get('throughput_c32_vs_unbatched_baseline')}"
    )
    load = result.get("load", {})
    lines.append(f"  load average before / after: {load.get('loadavg_before')} / {load.get('loadavg_after')}")
    return "\n".join(lines)


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    targets = _targets(result)
    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5))
    ax_tp, ax_p99, ax_bytes, ax_rss = axes.ravel()
    for name, t in targets:
        cs = [r["concurrency"] for r in t["runs"]]
        style = "--" if name == "inproc" else ("-." if name.startswith("dense_rest") else "-")
        ax_tp.plot(cs, [r["throughput_rps"] for r in t["runs"]], style, marker="o", label=name)
        ax_p99.plot(cs, [r["latency_ms"].get("p99", 0) for r in t["runs"]], style, marker="o", label=name)
    for ax, title, ylabel in (
        (ax_tp, "throughput", "requests / s"),
        (ax_p99, "p99 latency (target at c=32: 2x inproc's)", "ms"),
    ):
        ax.set_xscale("log", base=2)
        ax.set_xticks(result["settings"]["concurrency"], [str(c) for c in result["settings"]["concurrency"]])
        ax.set_xlabel("concurrency")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(alpha=0.3)
    ax_p99.set_yscale("log")
    ax_tp.legend(fontsize=8)
    http = [(n, t) for n, t in targets if n != "inproc"]
    names = [n.replace("sidecar_", "sc_") for n, _ in http]
    per_doc = [t["runs"][0].get("bytes_to_model_server_per_doc", 0) for _, t in http]
    ax_bytes.bar(names, per_doc, color="tab:blue")
    ax_bytes.set_yscale("log")
    first_c = http[0][1]["runs"][0]["concurrency"] if http else 0
    ax_bytes.set_title(f"bytes sent to the model server per document (c={first_c})")
    for i, v in enumerate(per_doc):
        ax_bytes.annotate(f"{v:,.0f}", (i, v), ha="center", va="bottom", fontsize=8)
    rss = [(n, t["peak_rss_mb"]) for n, t in targets]
    ax_rss.bar([n.replace("sidecar_", "sc_") for n, _ in rss], [v for _, v in rss], color="tab:green")
    ax_rss.axhline(150, color="red", lw=0.8, ls=":")
    ax_rss.set_title("peak RSS, VmHWM (sidecar target: 150 MB)")
    ax_rss.set_ylabel("MB")
    for i, (_, v) in enumerate(rss):
        ax_rss.annotate(f"{v:.0f}", (i, v), ha="center", va="bottom", fontsize=8)
    for ax in (ax_bytes, ax_rss):
        ax.tick_params(axis="x", labelrotation=25, labelsize=8)
    m = result["machine"]
    fig.suptitle(
        f"{result['model']['name']} v{result['model']['version']} on {m['cpu_model']}, "
        f"{m['cpus_usable']} cores; "
        f"{result['mode']} run {result['started_at']}; load before: {result['load']['loadavg_before']}",
        fontsize=9,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
