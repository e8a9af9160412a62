"""TF Serving's server-side batching for the fair baseline: the usual transformer sends one row per
request, and TF Serving, with ``--enable_batching`` (which the chart turns on), batches those rows
itself. The ``dense_rest_batch`` target runs the baseline against the model server started with these
flags and the chart's batching parameters; ``dense_rest`` runs it without them."""

from __future__ import annotations

from pathlib import Path

# The chart's defaults for tfServing.batching (values.yaml), as a batching_parameters_file.
BATCHING_PARAMETERS = (
    "max_batch_size { value: 32 }\n"
    "batch_timeout_micros { value: 2000 }\n"
    "max_enqueued_batches { value: 100 }\n"
    "num_batch_threads { value: 2 }\n"
    "pad_variable_length_inputs: true\n"
)


def batching_args(directory: Path) -> list[str]:
    """The model server flags that turn its batching on, with the parameters file written under
    ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    params = directory / "batching.config"
    params.write_text(BATCHING_PARAMETERS)
    return ["--enable_batching=true", f"--batching_parameters_file={params.resolve()}"]
