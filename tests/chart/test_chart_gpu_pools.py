"""GPU pools: pool selection that lets an autoscaler scale up from zero, rollout strategy on a fixed pool,
one GPU per pod, TF Serving's thread pools sized to the CPU limit, training on CPU by default, typed
scheduling values."""

from __future__ import annotations

import re
from typing import Any

import pytest
from chart_support import (
    SCENARIOS,
    container,
    dump_json,
    find,
    one,
    render,
    render_error,
)

Obj = dict[str, Any]
Rendered = dict[str, list[Obj]]

# Every flag of tensorflow_model_server (TF Serving's model_servers/main.cc): the chart may pass only these.
TF_SERVING_FLAGS = {
    "port", "grpc_socket_path", "rest_api_port", "rest_api_num_threads", "rest_api_timeout_in_ms",
    "rest_api_enable_cors_support", "enable_batching", "allow_version_labels_for_unavailable_models",
    "batching_parameters_file", "enable_per_model_batching_parameters", "model_config_file",
    "model_config_file_poll_wait_seconds", "model_name", "model_base_path", "num_load_threads",
    "num_unload_threads", "max_num_load_retries", "load_retry_interval_micros",
    "file_system_poll_wait_seconds", "flush_filesystem_caches", "tensorflow_session_parallelism",
    "tensorflow_session_config_file", "tensorflow_intra_op_parallelism",
    "tensorflow_inter_op_parallelism", "use_alts_credentials", "ssl_config_file", "platform_config_file",
    "per_process_gpu_memory_fraction", "saved_model_tags", "grpc_channel_arguments", "grpc_max_threads",
    "enable_model_warmup", "num_request_iterations_for_warmup", "version", "monitoring_config_file",
    "remove_unused_fields_from_bundle_metagraph", "prefer_tflite_model", "num_tflite_pools",
    "num_tflite_interpreters_per_pool", "enable_signature_method_name_check",
    "xla_cpu_compilation_enabled", "enable_profiler", "thread_pool_factory_config_file",
}  # fmt: skip


def spec_of(objs: list[Obj]) -> Obj:
    return one(objs, "Deployment")["spec"]["template"]["spec"]


def tfs_flags(objs: list[Obj]) -> dict[str, str]:
    args = container(spec_of(objs), "tfserving")["args"]
    out = {}
    for a in args:
        m = re.fullmatch(r"--([a-z_]+)=(.*)", a)
        assert m, f"TF Serving argument not in --flag=value form: {a!r}"
        out[m.group(1)] = m.group(2)
    return out


# --- pool selection (scale-up from zero) ---------------------------------------------------------------
def test_gpu_default_has_no_node_selector() -> None:
    """gpu.nodeSelector defaults to nothing: GPU feature discovery's nvidia.com/gpu.present appears only
    after a node boots, so a pod selecting it never makes Karpenter or Cluster Autoscaler add a node."""
    spec = spec_of(render(sets=("gpu.enabled=true",)))
    assert "nodeSelector" not in spec
    assert spec["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert container(spec, "tfserving")["resources"]["limits"]["nvidia.com/gpu"] == 1


@pytest.mark.parametrize("name", [*SCENARIOS, "defaults"])
def test_no_scenario_selects_a_label_set_after_boot(rendered: Rendered, name: str) -> None:
    assert "nvidia.com/gpu.present" not in dump_json(rendered[name])


def test_gpu_custom_pool_selects_only_its_label_and_tolerates_its_taint(rendered: Rendered) -> None:
    spec = spec_of(rendered["gpu-custom-pool"])
    assert spec["nodeSelector"] == {"karpenter.sh/nodepool": "gpu-inference"}, "no default merged in"
    assert {"key": "dedicated", "operator": "Equal", "value": "inference", "effect": "NoSchedule"} in spec[
        "tolerations"
    ]


# --- rollout strategy ----------------------------------------------------------------------------------
def test_fixed_pool_strategy_replaces_without_surge(rendered: Rendered) -> None:
    dep = one(rendered["gpu-fixed-pool"], "Deployment")
    assert dep["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1},
    }
    assert dep["spec"]["template"]["spec"]["runtimeClassName"] == "nvidia"


def test_strategy_recreate_and_refusals() -> None:
    dep = one(render(sets=("strategy.type=Recreate", "strategy.rollingUpdate=null")), "Deployment")
    assert dep["spec"]["strategy"] == {"type": "Recreate"}
    err = render_error(sets=("strategy.rollingUpdate.maxSurge=0",))
    assert "maxSurge and maxUnavailable cannot both be 0" in err
    assert "takes no rollingUpdate" in render_error(sets=("strategy.type=Recreate",))
    assert "schema" in render_error(sets=("strategy.type=BlueGreen",))


# --- one GPU per pod -----------------------------------------------------------------------------------
def test_gpu_count_above_one_refused_with_advice() -> None:
    err = render_error(sets=("gpu.enabled=true", "gpu.count=2"))
    assert "gpu.count=2" in err and "add replicas" in err


# --- KEDA scale to zero ---------------------------------------------------------------------------------
def test_keda_min_zero_needs_a_trigger_independent_of_the_pods(rendered: Rendered) -> None:
    err = render_error(sets=("keda.enabled=true", "keda.minReplicas=0"))
    assert "keda.minReplicas=0 never scales up again" in err and "keda.extraTriggers" in err
    so = one(rendered["keda-scale-to-zero"], "ScaledObject")["spec"]
    assert so["minReplicaCount"] == 0
    assert [t["type"] for t in so["triggers"]] == ["prometheus", "prometheus"]
    assert "nginx_ingress_controller_requests" in so["triggers"][1]["metadata"]["query"]


# --- training on CPU by default -------------------------------------------------------------------------
def test_training_job_stays_off_the_gpu_pool_by_default() -> None:
    objs = render(sets=("gpu.enabled=true", "training.enabled=true"))
    jspec = one(objs, "Job")["spec"]["template"]["spec"]
    assert not [k for k in container(jspec, "trainer")["resources"]["limits"] if "gpu" in k]
    assert "tolerations" not in jspec and "nodeSelector" not in jspec
    gpu_job = one(render(sets=("gpu.enabled=true", "training.enabled=true", "training.useGpu=true")), "Job")
    trainer = container(gpu_job["spec"]["template"]["spec"], "trainer")
    assert trainer["resources"]["limits"]["nvidia.com/gpu"] == 1


# --- TF Serving thread pools ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", [*SCENARIOS, "defaults"])
def test_tfserving_args_are_real_flags(rendered: Rendered, name: str) -> None:
    unknown = set(tfs_flags(rendered[name])) - TF_SERVING_FLAGS
    assert not unknown, f"not tensorflow_model_server flags: {unknown}"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # limits.cpu "2", sidecar.upstreamTimeoutS 5
        ("defaults", {"intra": "2", "inter": "2", "rest": "8", "timeout": "5000"}),
        # limits.cpu "4"
        ("gpu", {"intra": "4", "inter": "4", "rest": "16", "timeout": "5000"}),
        # limits.cpu 2500m rounds up to 3; interOp and the timeout set explicitly
        ("gpu-fixed-pool", {"intra": "3", "inter": "2", "rest": "12", "timeout": "10000"}),
    ],
)
def test_tfserving_threads_follow_cpu_limit(rendered: Rendered, name: str, expected: dict[str, str]) -> None:
    flags = tfs_flags(rendered[name])
    assert {
        "intra": flags["tensorflow_intra_op_parallelism"],
        "inter": flags["tensorflow_inter_op_parallelism"],
        "rest": flags["rest_api_num_threads"],
        "timeout": flags["rest_api_timeout_in_ms"],
    } == expected


def test_tfserving_without_cpu_limit_leaves_pools_to_tensorflow() -> None:
    objs = render(
        extra=(
            "--set",
            "tfServing.resources.limits.cpu=null",
            "--set-json",
            "sidecar.upstreamTimeoutS=2.5",
        )
    )
    flags = tfs_flags(objs)
    assert not {
        "tensorflow_intra_op_parallelism",
        "tensorflow_inter_op_parallelism",
        "rest_api_num_threads",
    } & set(flags)
    assert flags["rest_api_timeout_in_ms"] == "2500"


# --- typed scheduling values ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (('tolerations=[{"key": "a", "operatr": "Exists"}]',), "operatr"),
        (('tolerations=[{"key": "a", "operator": "exists"}]',), "operator"),
        (('gpu.tolerations=[{"key": "a", "effect": "NoSchedul"}]',), "effect"),
        (('affinity={"nodeAfinity": {}}',), "nodeAfinity"),
        (
            (
                'affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": '
                '{"nodeSelectorTerms": [{"matchExpressions": [{"key": "a", "operator": "Equals"}]}]}}}',
            ),
            "operator",
        ),
    ],
)
def test_scheduling_values_typed(args: tuple[str, ...], message: str) -> None:
    err = render_error(extra=tuple(x for a in args for x in ("--set-json", a)))
    assert "schema" in err and message in err, err


def test_typed_affinity_still_accepts_real_affinity() -> None:
    aff = (
        '{"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 50, "preference": '
        '{"matchExpressions": [{"key": "cloud.google.com/gke-spot", "operator": "DoesNotExist"}]}}]}, '
        '"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, '
        '"podAffinityTerm": {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": '
        '{"app.kubernetes.io/instance": "tc"}}}}]}}'
    )
    spec = spec_of(render(extra=("--set-json", f"affinity={aff}")))
    assert (
        spec["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]["weight"]
        == 100
    )


def test_gpu_scenarios_render_no_gpu_outside_tfserving(rendered: Rendered) -> None:
    for name in ("gpu", "gpu-custom-pool", "gpu-fixed-pool"):
        spec = spec_of(rendered[name])
        for c in spec["containers"] + spec.get("initContainers", []):
            has_gpu = "nvidia.com/gpu" in c["resources"].get("limits", {})
            assert has_gpu is (c["name"] == "tfserving"), (name, c["name"])
        assert not find(rendered[name], "Job")
