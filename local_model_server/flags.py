"""The command line: tensorflow_model_server's flags, with TF Serving's names, defaults and meaning.

Only flags this stand-in implements are accepted. Any other flag is refused with a message and exit
status 2, so an argument a chart passes that the stand-in does not understand fails loudly here
instead of being ignored (a real TF Serving flag that is not implemented says so). Both
``--flag=value`` and ``--flag value`` work; booleans take true/false/1/0."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from typing import NoReturn

DESCRIPTION = (
    "DEVELOPMENT AND TEST stand-in for TensorFlow Serving (not for production): serves SavedModel "
    "version directories over TF Serving's REST and gRPC APIs and accepts tensorflow_model_server's "
    "command line (the flags listed below). Production runs the tensorflow/serving image."
)

# Real tensorflow_model_server flags this stand-in does not implement: refused with this note.
NOT_IMPLEMENTED = (
    "grpc_socket_path",
    "rest_api_enable_cors_support",
    "tensorflow_session_parallelism",
    "use_alts_credentials",
    "ssl_config_file",
    "platform_config_file",
    "saved_model_tags",
    "grpc_channel_arguments",
    "num_request_iterations_for_warmup",
    "prefer_tflite_model",
    "enable_profiler",
    "thread_pool_factory_config_file",
    "mixed_precision",
    "skip_initialize_tpu",
    "enable_grpc_healthcheck_service",
    "tensorflow_session_config_file",
    "enable_per_model_batching_params",
    "enable_signature_method_name_check",
    "num_unload_threads",
    "flush_filesystem_caches",
    "model_config_list_root_dir",
    "force_allow_any_version_labels_for_unavailable_models",
)


@dataclass(frozen=True)
class ServerOptions:
    port: int
    rest_api_port: int
    rest_api_num_threads: int
    rest_api_timeout_in_ms: int
    host: str
    model_name: str
    model_base_path: str
    num_versions: int
    model_config_file: str
    model_config_file_poll_wait_seconds: int
    allow_version_labels_for_unavailable_models: bool
    file_system_poll_wait_seconds: float
    monitoring_config_file: str
    enable_batching: bool
    batching_parameters_file: str
    enable_model_warmup: bool
    tensorflow_intra_op_parallelism: int
    tensorflow_inter_op_parallelism: int
    num_load_threads: int
    max_num_load_retries: int
    load_retry_interval_micros: int
    grpc_max_threads: int
    shutdown_grace_seconds: float
    log_level: str
    version: bool
    test_delay_ms: tuple[tuple[int, float], ...] = ()


def _bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser(prog: str = "python -m local_model_server", default_host: str = "127.0.0.1") -> _Parser:
    cpus = os.cpu_count() or 2
    p = _Parser(prog=prog, description=DESCRIPTION, allow_abbrev=False)
    add = p.add_argument
    g = p.add_argument_group("TF Serving flags (same names, defaults and meaning as tensorflow_model_server)")
    gadd = g.add_argument
    gadd("--port", type=int, default=8500, help="gRPC port")
    gadd("--rest_api_port", type=int, default=0, help="REST port; 0 disables REST")
    gadd(
        "--rest_api_num_threads",
        type=int,
        default=4 * cpus,
        help="threads running REST requests (default 4 x CPUs)",
    )
    gadd(
        "--rest_api_timeout_in_ms",
        type=int,
        default=30000,
        help="a REST request still running after this answers 504 DEADLINE_EXCEEDED; <=0: no limit",
    )
    gadd("--model_name", default="default", help="served model name (without --model_config_file)")
    gadd("--model_base_path", default="", help="directory holding <version>/ (without --model_config_file)")
    gadd(
        "--model_config_file",
        default="",
        help="ModelServerConfig in protobuf text format: several models, version policies, version_labels",
    )
    gadd(
        "--model_config_file_poll_wait_seconds",
        type=int,
        default=0,
        help="re-read --model_config_file every N seconds and apply changes; 0: read once",
    )
    gadd(
        "--allow_version_labels_for_unavailable_models",
        type=_bool,
        nargs="?",
        const=True,
        default=False,
        help="allow a version label on a version that is not (yet) AVAILABLE, if the label is new or "
        "keeps its version",
    )
    gadd(
        "--file_system_poll_wait_seconds",
        type=float,
        default=1.0,
        help="seconds between polls of the base paths for versions; 0 polls once, <0 never",
    )
    gadd(
        "--monitoring_config_file",
        default="",
        help="MonitoringConfig text file: prometheus_config { enable path } on the REST port",
    )
    gadd(
        "--enable_batching",
        type=_bool,
        nargs="?",
        const=True,
        default=False,
        help="server-side batching of concurrent predict requests",
    )
    gadd(
        "--batching_parameters_file",
        default="",
        help="BatchingParameters text file (needs --enable_batching)",
    )
    gadd(
        "--enable_model_warmup",
        type=_bool,
        nargs="?",
        const=True,
        default=True,
        help="replay assets.extra/tf_serving_warmup_requests at load",
    )
    gadd(
        "--tensorflow_intra_op_parallelism",
        type=int,
        default=0,
        help="threads inside one op (TensorFlow's intra-op pool); 0: TensorFlow chooses",
    )
    gadd(
        "--tensorflow_inter_op_parallelism",
        type=int,
        default=0,
        help="ops run in parallel (TensorFlow's inter-op pool); 0: TensorFlow chooses",
    )
    gadd("--num_load_threads", type=int, default=0, help="accepted; versions load one at a time here")
    gadd(
        "--max_num_load_retries",
        type=int,
        default=5,
        help="accepted; a failed version is retried when its directory changes",
    )
    gadd("--load_retry_interval_micros", type=int, default=60_000_000, help="accepted; see above")
    gadd("--grpc_max_threads", type=int, default=max(8, 4 * cpus), help="threads of the gRPC server")
    gadd("--version", action="store_true", help="print the version and exit")
    x = p.add_argument_group("stand-in only (not tensorflow_model_server flags)")
    xadd = x.add_argument
    xadd(
        "--host",
        default=os.environ.get("LOCAL_MODEL_SERVER_HOST", default_host),
        help=f"address both ports bind to (TF Serving binds all addresses); default {default_host}, "
        "or $LOCAL_MODEL_SERVER_HOST",
    )
    xadd(
        "--num_versions",
        type=int,
        default=2,
        help="with --model_name/--model_base_path: serve the newest N versions, i.e. "
        "model_version_policy latest { num_versions: N } (TF Serving's single-model default is 1)",
    )
    xadd(
        "--shutdown_grace_seconds",
        type=float,
        default=10.0,
        help="on SIGTERM/SIGINT, how long in-flight requests may take to finish",
    )
    xadd(
        "--test_delay_ms",
        type=_delay,
        action="append",
        default=[],
        metavar="VERSION:MS",
        help="TESTS ONLY: every predict on VERSION (of any model) waits MS milliseconds first, to stand "
        "in for a slow version (repeatable)",
    )
    add(
        "--log_level",
        default=os.environ.get("LOCAL_MODEL_SERVER_LOG_LEVEL", "info"),
        choices=["debug", "info", "warning", "error"],
    )
    return p


def _refuse(parser: _Parser, unknown: list[str]) -> NoReturn:
    flags = [u for u in unknown if u.startswith("-")]
    lines = []
    for arg in flags or unknown:
        name = arg.lstrip("-").split("=", 1)[0]
        if name in NOT_IMPLEMENTED:
            lines.append(
                f"{arg}: a tensorflow_model_server flag that this stand-in does not implement "
                "(docs/local_model_server.md lists what it does)"
            )
        elif arg.startswith("-"):
            lines.append(f"{arg}: unknown flag (not a flag of tensorflow_model_server's this stand-in knows)")
        else:
            lines.append(f"{arg}: unexpected argument")
    parser.print_usage(sys.stderr)
    parser.exit(2, "".join(f"{parser.prog}: error: {line}\n" for line in lines))


def _delay(text: str) -> tuple[int, float]:
    version, sep, ms = text.partition(":")
    try:
        pair = (int(version), float(ms))
    except ValueError:
        pair = (0, -1.0)
    if not sep or pair[0] < 1 or not 0 <= pair[1] <= 60_000:
        raise argparse.ArgumentTypeError(f"{text!r}: expected VERSION:MS (a version >= 1, 0 to 60000 ms)")
    return pair


def parse(
    argv: list[str] | None, prog: str = "python -m local_model_server", default_host: str = "127.0.0.1"
) -> ServerOptions:
    """The options, or exit 2 with a message naming each argument that is not understood."""
    parser = build_parser(prog, default_host)
    ns, unknown = parser.parse_known_args(argv)
    if unknown:
        _refuse(parser, unknown)
    opts = ServerOptions(**{**vars(ns), "test_delay_ms": tuple(ns.test_delay_ms)})
    if opts.version:
        return opts
    if not opts.model_config_file and not opts.model_base_path:
        parser.exit(
            2,
            f"{prog}: error: Both server_options.model_base_path and server_options.model_config_file "
            "are empty! (give --model_config_file, or --model_name and --model_base_path)\n",
        )
    if opts.model_config_file and opts.model_base_path:
        parser.exit(
            2,
            f"{prog}: error: --model_config_file and --model_base_path are exclusive "
            "(tensorflow_model_server ignores --model_base_path then; this stand-in refuses the mix)\n",
        )
    if opts.batching_parameters_file and not opts.enable_batching:
        parser.exit(
            2,
            f"{prog}: error: server_options.batching_parameters_file is set without setting "
            "server_options.enable_batching to true.\n",
        )
    if opts.port == 0:
        parser.exit(
            2,
            f"{prog}: error: At least one of server_options.grpc_port or "
            "server_options.grpc_socket_path must be set.\n",
        )
    return opts
