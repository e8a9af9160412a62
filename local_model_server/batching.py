"""Server-side batching (--enable_batching, --batching_parameters_file), as TF Serving's batching session.

Concurrent predict requests for the same model version and signature are queued; a batch thread takes
up to ``max_batch_size`` rows (waiting at most ``batch_timeout_micros`` for a batch to fill), pads
inputs whose inner dimensions differ (``pad_variable_length_inputs``), pads the batch up to the next
of ``allowed_batch_sizes``, runs the signature once and hands each request its rows. When the open
batch cannot take a request and ``max_enqueued_batches`` batches are already waiting, the request is
refused with TF Serving's UNAVAILABLE error."""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from local_model_server.errors import Code, ServingError, invalid
from local_model_server.protos import BatchingParameters

QUEUE_FULL = "The batch scheduling queue to which this task was submitted is full"


@dataclass(frozen=True)
class BatchingOptions:
    """Defaults are TF Serving's (BasicBatchScheduler's options)."""

    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    max_enqueued_batches: int = 10
    num_batch_threads: int = field(default_factory=lambda: os.cpu_count() or 1)
    pad_variable_length_inputs: bool = False
    allowed_batch_sizes: tuple[int, ...] = ()
    # Told (model name, rows incl. padding) after each batch ran; metrics only.
    on_batch: Callable[[str, int], None] | None = field(default=None, compare=False, repr=False)

    def validate(self) -> None:
        """The checks and messages of TensorFlow's batch scheduler and TF Serving's batching session."""
        if self.max_batch_size <= 0:
            raise invalid(f"max_batch_size must be positive; was {self.max_batch_size}")
        if self.batch_timeout_micros < 0:
            raise invalid(f"batch_timeout_micros must be non-negative; was {self.batch_timeout_micros}")
        if self.max_enqueued_batches <= 0:
            raise invalid(f"max_enqueued_batches must be positive; was {self.max_enqueued_batches}")
        if self.num_batch_threads <= 0:
            raise invalid(f"num_batch_threads must be positive; was {self.num_batch_threads}")
        sizes = self.allowed_batch_sizes
        if sizes:
            if any(b <= a for a, b in itertools.pairwise(sizes)):
                raise invalid("allowed_batch_sizes entries must be monotonically increasing")
            if sizes[-1] != self.max_batch_size:
                raise invalid(
                    "Last entry in allowed_batch_sizes must match max_batch_size; last entry was "
                    f"{sizes[-1]}; expected {self.max_batch_size}"
                )


def read_batching_parameters(path: str | Path | None) -> BatchingOptions:
    """--batching_parameters_file as options (all defaults without a file), validated."""
    from local_model_server.model_config import parse_text

    if not path:
        return BatchingOptions()
    p = parse_text(path, BatchingParameters())
    defaults = BatchingOptions()
    opts = BatchingOptions(
        max_batch_size=p.max_batch_size.value if p.HasField("max_batch_size") else defaults.max_batch_size,
        batch_timeout_micros=(
            p.batch_timeout_micros.value
            if p.HasField("batch_timeout_micros")
            else defaults.batch_timeout_micros
        ),
        max_enqueued_batches=(
            p.max_enqueued_batches.value
            if p.HasField("max_enqueued_batches")
            else defaults.max_enqueued_batches
        ),
        num_batch_threads=(
            p.num_batch_threads.value if p.HasField("num_batch_threads") else defaults.num_batch_threads
        ),
        pad_variable_length_inputs=bool(p.pad_variable_length_inputs),
        allowed_batch_sizes=tuple(int(b) for b in p.allowed_batch_sizes),
    )
    opts.validate()
    return opts


Arrays = dict[str, np.ndarray]


@dataclass
class _Task:
    inputs: Arrays
    rows: int
    future: Future[Arrays] = field(default_factory=Future)


def _pad_to(arr: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if arr.shape[1:] == shape:
        return arr
    out = np.zeros((arr.shape[0], *shape), dtype=arr.dtype)
    out[tuple(slice(0, d) for d in arr.shape)] = arr
    return out


class BatchScheduler:
    """One queue of batches for one signature of one loaded version."""

    def __init__(
        self, opts: BatchingOptions, run: Callable[[Arrays], Arrays], name: str, model_name: str = ""
    ) -> None:
        self.opts = opts
        self.model_name = model_name
        self._run = run
        self._cond = threading.Condition()
        self._batches: list[list[_Task]] = [[]]  # the last one is open
        self._open_rows = 0
        self._open_since = 0.0
        self._closed = False
        self.batches_run = 0
        self._threads = [
            threading.Thread(target=self._loop, name=f"batch-{name}-{i}", daemon=True)
            for i in range(opts.num_batch_threads)
        ]
        for t in self._threads:
            t.start()

    # -- submission ----------------------------------------------------------------------------
    def submit(self, inputs: Arrays) -> Arrays:
        rows = {int(a.shape[0]) if a.ndim else -1 for a in inputs.values()}
        if len(rows) != 1 or -1 in rows:
            raise invalid("Batching session Run() input tensors must have equal 0th-dimension size")
        (n,) = rows
        if n > self.opts.max_batch_size:
            raise invalid(f"Task size {n} is larger than maximum input batch size {self.opts.max_batch_size}")
        task = _Task(inputs, n)
        with self._cond:
            if self._closed:
                raise ServingError(Code.UNAVAILABLE, "the batch scheduler of this version is shutting down")
            if self._open_rows + n > self.opts.max_batch_size:
                if len(self._batches) >= self.opts.max_enqueued_batches:
                    raise ServingError(Code.UNAVAILABLE, QUEUE_FULL)
                self._batches.append([])
                self._open_rows = 0
            if not self._batches[-1]:
                self._open_since = time.monotonic()
            self._batches[-1].append(task)
            self._open_rows += n
            self._cond.notify_all()
        return task.future.result()

    # -- batch threads -------------------------------------------------------------------------
    def _take(self) -> list[_Task] | None:
        timeout_s = self.opts.batch_timeout_micros / 1e6
        with self._cond:
            while True:
                if len(self._batches) > 1:  # a closed batch waits: take the oldest
                    return self._batches.pop(0)
                open_batch = self._batches[0]
                if open_batch:
                    full = self._open_rows >= self.opts.max_batch_size
                    waited = time.monotonic() - self._open_since
                    if full or waited >= timeout_s or self._closed:
                        self._batches[0] = []
                        self._open_rows = 0
                        return open_batch
                    self._cond.wait(timeout_s - waited)
                    continue
                if self._closed:
                    return None
                self._cond.wait()

    def _loop(self) -> None:
        while (batch := self._take()) is not None:
            try:
                self._process(batch)
            except ServingError as exc:
                for t in batch:
                    t.future.set_exception(exc)
            except Exception as exc:
                err = ServingError(Code.INTERNAL, f"{type(exc).__name__}: {exc}")
                for t in batch:
                    t.future.set_exception(err)

    def _process(self, batch: list[_Task]) -> None:
        names = sorted(batch[0].inputs)
        merged: Arrays = {}
        for name in names:
            parts = [t.inputs[name] for t in batch]
            inner = {p.shape[1:] for p in parts}
            if len(inner) > 1:
                if not self.opts.pad_variable_length_inputs:
                    raise invalid(
                        f"Tensors with name '{name}' from different tasks have different shapes and padding "
                        "is turned off. Set pad_variable_length_inputs to true, or ensure that all tensors "
                        "with the same name have equal dimensions starting with the first dim."
                    )
                if len({len(s) for s in inner}) > 1:
                    raise invalid(f"Tensors with name '{name}' from different tasks differ in rank")
                target = tuple(max(dims) for dims in zip(*inner, strict=True))
                parts = [_pad_to(p, target) for p in parts]
            merged[name] = np.concatenate(parts, axis=0)
        total = sum(t.rows for t in batch)
        padded = next((s for s in self.opts.allowed_batch_sizes if s >= total), total)
        if padded > total:  # pad with copies of the first row, as TF Serving does
            for name in names:
                arr = merged[name]
                merged[name] = np.concatenate([arr, np.repeat(arr[:1], padded - total, axis=0)], axis=0)
        outputs = self._run(merged)
        self.batches_run += 1
        if self.opts.on_batch is not None:
            self.opts.on_batch(self.model_name, padded)
        start = 0
        for t in batch:
            part: Arrays = {}
            for key, arr in outputs.items():
                if arr.ndim == 0 or arr.shape[0] != padded:
                    raise ServingError(
                        Code.FAILED_PRECONDITION,
                        f"Batched output tensor {key} has {arr.shape[0] if arr.ndim else 0} rows for a batch "
                        f"of {padded}: this signature cannot be batched",
                    )
                part[key] = arr[start : start + t.rows]
            start += t.rows
            t.future.set_result(part)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for t in self._threads:
            t.join(timeout=30)
