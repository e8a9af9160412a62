#!/usr/bin/env bash
# `make e2e`: build the cluster binaries if missing, start the cluster, run tests/e2e, and always stop it.
#
#   scripts/cluster/e2e.sh [pytest args...]      e.g. scripts/cluster/e2e.sh -k drain
#
# helm and kubectl come from scripts/k8s-tools.sh (pinned). On failure the component logs are copied to
# out/e2e/logs/ before the cluster is torn down.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
t0=$SECONDS
log() { printf '[e2e %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

PY="${PY:-.venv/bin/python}"
[[ -x "$PY" ]] || { log "ERROR: $PY missing: run make install"; exit 1; }
tools="$(bash scripts/k8s-tools.sh)"
export PATH="$tools:$PATH"
log "helm $(helm version --template '{{.Version}}'), kubectl $(kubectl version --client -o json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["clientVersion"]["gitVersion"])')"

bash scripts/cluster/build.sh
t_build=$((SECONDS - t0))

export E2E_CLUSTER_DIR="${E2E_CLUSTER_DIR:-$PWD/.cache/e2e-cluster}"
rc=0
teardown() {
  local st=$?
  [[ $rc -ne 0 ]] || rc=$st
  if [[ $rc -ne 0 && -d "$E2E_CLUSTER_DIR/logs" ]]; then
    mkdir -p out/e2e && rm -rf out/e2e/logs && cp -r "$E2E_CLUSTER_DIR/logs" out/e2e/logs
    log "failed (exit $rc): component logs copied to out/e2e/logs/"
  fi
  bash scripts/cluster/stop.sh || true
  log "total $((SECONDS - t0))s (build/check ${t_build}s)"
  exit "$rc"
}
trap teardown EXIT
trap 'rc=130; exit 130' INT TERM

t1=$SECONDS
bash scripts/cluster/start.sh
log "cluster started in $((SECONDS - t1))s"

export E2E_KUBECONFIG="$E2E_CLUSTER_DIR/kubeconfig"
export KUBECONFIG="$E2E_KUBECONFIG"
t2=$SECONDS
set +e
"$PY" -m pytest tests/e2e -p no:cacheprovider --timeout=600 --durations=8 "$@"
rc=$?
set -e
log "tests finished in $((SECONDS - t2))s (exit $rc)"
