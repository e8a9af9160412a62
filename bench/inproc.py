"""(a) The in-process ceiling: vectorize + SavedModel call in one process, no HTTP, no serialisation.

At concurrency c the loop takes c documents, vectorizes them and makes ONE model call for all c (what a
perfect micro-batcher would do with c requests in flight), so every document's latency is that whole
step. Throughput is documents per second. Runs as its own process so its memory and CPU are its own:
``python -m bench.inproc --version-dir D --docs docs.json --concurrency 1,8 --duration 5 --out r.json``"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _loop(step: Callable[[list[str]], float], docs: list[str], c: int, seconds: float) -> dict[str, Any]:
    lat: list[float] = []
    vec_s = model_s = 0.0
    i = 0
    cpu0 = _cpu()
    start = time.perf_counter()
    stop_at = start + seconds
    while time.perf_counter() < stop_at:
        batch = [docs[(i + k) % len(docs)] for k in range(c)]
        i += c
        t0 = time.perf_counter()
        t_vec = step(batch)
        t2 = time.perf_counter()
        lat.extend([(t2 - t0) * 1000] * c)
        vec_s += t_vec
        model_s += t2 - t0 - t_vec
    elapsed = time.perf_counter() - start
    steps = max(1, len(lat) // c)
    arr = np.asarray(lat)
    return {
        "concurrency": c,
        "requests": len(lat),
        "errors": 0,
        "elapsed_s": round(elapsed, 3),
        "throughput_rps": round(len(lat) / elapsed, 1),
        "latency_ms": {f"p{p}": round(float(np.percentile(arr, p)), 3) for p in (50, 95, 99)}
        | {"mean": round(float(arr.mean()), 3), "max": round(float(arr.max()), 3)},
        "cpu_ms_per_request": round((_cpu() - cpu0) / len(lat) * 1000, 4),
        "vectorize_ms_per_step": round(vec_s / steps * 1000, 3),
        "model_call_ms_per_step": round(model_s / steps * 1000, 3),
    }


def measure(
    version_dir: Path,
    docs: list[str],
    concurrency: list[int],
    duration_s: float,
    warmup_s: float,
    tf_threads: int = 0,
) -> dict:
    import tensorflow as tf

    if tf_threads > 0:  # as the model server's --tensorflow_{intra,inter}_op_parallelism, before the load
        tf.config.threading.set_intra_op_parallelism_threads(tf_threads)
        tf.config.threading.set_inter_op_parallelism_threads(tf_threads)

    from bench.procstat import memory_kb
    from textvec import Vectorizer, pad

    vec = Vectorizer.load(version_dir / "assets" / "vectorizer.json")
    fn = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    gc.collect()
    gc.freeze()  # as the servers do: no full collections over TensorFlow's objects mid-measurement

    def step(batch: list[str]) -> float:
        t0 = time.perf_counter()
        ids, weights = pad(vec.transform_one(t) for t in batch)
        t1 = time.perf_counter()
        fn(token_ids=tf.constant(ids), token_weights=tf.constant(weights))["probabilities"].numpy()
        return t1 - t0

    runs = []
    for c in concurrency:
        _loop(step, docs, c, warmup_s)
        runs.append(_loop(step, docs, c, duration_s))
    mem = memory_kb(os.getpid())
    threads = {
        "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
    }
    return {"runs": runs, "peak_rss_mb": round(mem.get("VmHWM", 0) / 1024, 1), "tf_threads": threads}


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.inproc")
    p.add_argument("--version-dir", type=Path, required=True)
    p.add_argument("--docs", type=Path, required=True, help="a JSON list of documents")
    p.add_argument("--concurrency", default="1,8,32,128")
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument(
        "--tf-threads", type=int, default=0, help="TensorFlow's intra- and inter-op threads (0: its choice)"
    )
    args = p.parse_args()
    docs = orjson.loads(args.docs.read_bytes())
    levels = [int(c) for c in args.concurrency.split(",")]
    result = measure(args.version_dir, docs, levels, args.duration, args.warmup, args.tf_threads)
    args.out.write_bytes(orjson.dumps(result))


if __name__ == "__main__":
    main()
