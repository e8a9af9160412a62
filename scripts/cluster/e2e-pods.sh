#!/usr/bin/env bash
# `make e2e-pods`: the chart on a REAL node. Builds (cached) the node binaries and the images, starts the
# test control plane with KWOK GPU nodes, joins a real node (containerd, runc, CNI, kubelet, kube-proxy) with
# Traefik in front, runs tests/e2e_pods, and always tears everything down (processes, containers, mounts,
# network namespaces, the bridge, iptables rules). On failure the logs go to out/e2e-pods/logs/ first.
#
#   scripts/cluster/e2e-pods.sh [pytest args...]      needs root (kubelet, containerd, iptables)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
t0=$SECONDS
log() { printf '[e2e-pods %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
timing() { printf '%s %s\n' "$1" "$2" >>"$E2E_TIMINGS"; log "$1: $2s"; }

PY="${PY:-.venv/bin/python}"
[[ -x "$PY" ]] || { log "ERROR: $PY missing: run make install"; exit 1; }
[[ $(id -u) -eq 0 ]] || { log "ERROR: make e2e-pods needs root (it runs kubelet, containerd and iptables)"; exit 1; }
export PATH="$(bash scripts/k8s-tools.sh):$PATH"
mkdir -p out/e2e-pods
export E2E_TIMINGS="$PWD/out/e2e-pods/timings.txt"; : >"$E2E_TIMINGS"
: >out/e2e-pods/requests.jsonl   # this run's counts only (each test appends its line)

# the same build as `make e2e-pods-build` (Debian packages, then the Go and image lanes at once); each
# step is cached, so after that target (what .ci/run does first) this only checks
t=$SECONDS; bash scripts/cluster/build-all.sh; timing build $((SECONDS - t))
# shellcheck source=node-env.sh
source scripts/cluster/node-env.sh

export E2E_CLUSTER_DIR="$PWD/.cache/e2e-pods-cluster"
export E2E_SERVICE_CIDR="$SERVICE_CIDR"
rc=0
teardown() {
  local st=$?
  [[ $rc -ne 0 ]] || rc=$st
  if [[ $rc -ne 0 ]]; then
    rm -rf out/e2e-pods/logs; mkdir -p out/e2e-pods/logs
    [[ -d "$E2E_CLUSTER_DIR/logs" ]] && cp -r "$E2E_CLUSTER_DIR/logs" out/e2e-pods/logs/control-plane
    [[ -d "$E2E_CLUSTER_DIR/node/logs" ]] && cp -r "$E2E_CLUSTER_DIR/node/logs" out/e2e-pods/logs/node
    [[ -d "$E2E_CLUSTER_DIR/node/pod-logs" ]] && cp -rL "$E2E_CLUSTER_DIR/node/pod-logs" out/e2e-pods/logs/pods 2>/dev/null
    log "failed (exit $rc): logs copied to out/e2e-pods/logs/"
  fi
  E2E_CLUSTER_DIR="$E2E_CLUSTER_DIR" bash scripts/cluster/node-down.sh || true
  bash scripts/cluster/stop.sh || true
  log "total $((SECONDS - t0))s (timings: out/e2e-pods/timings.txt)"
  exit "$rc"
}
trap teardown EXIT
trap 'rc=130; exit 130' INT TERM

t=$SECONDS; bash scripts/cluster/start.sh; timing control-plane-start $((SECONDS - t))
export KUBECONFIG="$E2E_CLUSTER_DIR/kubeconfig"
t=$SECONDS; bash scripts/cluster/node-up.sh; timing node-up $((SECONDS - t))
# shellcheck disable=SC1091
source "$E2E_CLUSTER_DIR/node/env"
set -a
# shellcheck disable=SC1091
source "$E2E_NODE_IMAGES/images.env"
set +a
export E2E_KUBECONFIG="$KUBECONFIG" E2E_CLUSTER_DIR
t=$SECONDS
set +e
"$PY" -m pytest tests/e2e_pods -p no:cacheprovider --timeout=900 --durations=10 "$@"
rc=$?
set -e
timing tests $((SECONDS - t))
"$PY" - <<'PY' >&2 || true
import json, pathlib
rows = [json.loads(x) for x in pathlib.Path("out/e2e-pods/requests.jsonl").read_text().splitlines() if x]
print(f"[e2e-pods] requests through the Ingress: {sum(r['requests'] for r in rows)} in {len(rows)} tests, "
      f"{sum(r['failed'] for r in rows)} failed (out/e2e-pods/requests.jsonl)")
PY
