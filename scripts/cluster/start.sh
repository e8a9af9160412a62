#!/usr/bin/env bash
# Start the e2e test cluster: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and the kwok
# controller, as local processes bound to 127.0.0.1 only, with 2 CPU nodes and 2 GPU nodes (KWOK nodes).
#
#   scripts/cluster/start.sh     needs the binaries (scripts/cluster/build.sh) and kubectl on PATH
#   scripts/cluster/stop.sh      stops every process start.sh started and deletes the state
#
# State (certificates, etcd data, kubeconfigs, logs, pids): ${E2E_CLUSTER_DIR:-.cache/e2e-cluster}.
# Writes $E2E_CLUSTER_DIR/kubeconfig (cluster-admin) and $E2E_CLUSTER_DIR/env (export KUBECONFIG=...).
# Ports are free ports picked at start on 127.0.0.1. On any failure it stops what it started.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=versions.sh
source "$here/versions.sh"
STATE="${E2E_CLUSTER_DIR:-.cache/e2e-cluster}"
mkdir -p "$STATE"; STATE="$(cd "$STATE" && pwd)"
LOGS="$STATE/logs"; PKI="$STATE/pki"

log() { printf '[cluster %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

command -v kubectl >/dev/null || die "kubectl is not on PATH (PATH=\"\$(scripts/k8s-tools.sh):\$PATH\")"
command -v openssl >/dev/null || die "openssl is required (apt-get install -y openssl)"
"$here/build.sh" --check || die "cluster binaries missing: run scripts/cluster/build.sh"
if [[ -s "$STATE/pids" ]]; then
  while read -r _ pid; do
    kill -0 "$pid" 2>/dev/null && die "a cluster is already running from $STATE (pid $pid): scripts/cluster/stop.sh first"
  done <"$STATE/pids"
fi
rm -rf "$STATE"/{etcd,pki,logs,pids,kubeconfig,env,*.kubeconfig,kwok.yaml}
mkdir -p "$LOGS" "$PKI"
: >"$STATE/pids"

started_ok=0
cleanup_on_failure() {
  [[ $started_ok -eq 1 ]] && return
  log "start failed; last lines of each log:"
  for f in "$LOGS"/*.log; do [[ -f "$f" ]] && { echo "--- $f" >&2; tail -n 15 "$f" >&2; }; done
  "$here/stop.sh" >&2 || true
}
trap cleanup_on_failure EXIT

# ---------------------------------------------------------------- ports (free, 127.0.0.1)
read -r P_ETCD P_PEER P_API P_KCM P_SCHED P_KWOK < <(python3 - <<'PY'
import socket
socks = []
for _ in range(6):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
)
log "ports on 127.0.0.1: etcd $P_ETCD/$P_PEER, apiserver $P_API, controller-manager $P_KCM, scheduler $P_SCHED, kwok $P_KWOK"

# ---------------------------------------------------------------- PKI
ossl() { openssl "$@" >/dev/null 2>&1 || die "openssl $1 failed"; }
ossl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=e2e-cluster-ca" -keyout "$PKI/ca.key" -out "$PKI/ca.crt"
cert() { # <name> <subject> [subjectAltName]
  local name="$1" subj="$2" san="${3:-}"
  ossl req -newkey rsa:2048 -nodes -subj "$subj" -keyout "$PKI/$name.key" -out "$PKI/$name.csr"
  local ext="$PKI/$name.ext"
  if [[ -n "$san" ]]; then
    printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$san" >"$ext"
  else
    printf 'extendedKeyUsage=clientAuth\n' >"$ext"
  fi
  ossl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial -days 2 -extfile "$ext" -out "$PKI/$name.crt"
}
cert apiserver "/CN=kube-apiserver" "IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc"
cert admin "/O=system:masters/CN=e2e-admin"
cert controller-manager "/CN=system:kube-controller-manager"
cert scheduler "/CN=system:kube-scheduler"
cert kwok "/O=system:masters/CN=kwok-controller"
ossl genrsa -out "$PKI/sa.key" 2048
ossl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub"

kubeconfig() { # <file> <cert name>
  cat >"$1" <<YAML
apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster:
    server: https://127.0.0.1:$P_API
    certificate-authority: $PKI/ca.crt
users:
- name: $2
  user:
    client-certificate: $PKI/$2.crt
    client-key: $PKI/$2.key
contexts:
- name: e2e
  context: {cluster: e2e, user: $2}
current-context: e2e
YAML
}
kubeconfig "$STATE/kubeconfig" admin
kubeconfig "$STATE/controller-manager.kubeconfig" controller-manager
kubeconfig "$STATE/scheduler.kubeconfig" scheduler
kubeconfig "$STATE/kwok.kubeconfig" kwok

# ---------------------------------------------------------------- processes
launch() { # <name> <cmd...>: own session (process group), output to logs/<name>.log, pid recorded
  local name="$1"; shift
  setsid "$@" >"$LOGS/$name.log" 2>&1 < /dev/null &
  echo "$name $!" >>"$STATE/pids"
  log "started $name (pid $!)"
}
wait_for() { # <what> <seconds> <command...>
  local what="$1" secs="$2"; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [[ $SECONDS -lt $deadline ]] || die "$what not ready after ${secs}s"
    while read -r n pid; do kill -0 "$pid" 2>/dev/null || die "$n (pid $pid) exited; see $LOGS/$n.log"; done <"$STATE/pids"
    sleep 0.5
  done
  log "$what ready"
}

launch etcd "$ETCD_BIN_DIR/etcd" --name e2e --data-dir "$STATE/etcd" \
  --listen-client-urls "http://127.0.0.1:$P_ETCD" --advertise-client-urls "http://127.0.0.1:$P_ETCD" \
  --listen-peer-urls "http://127.0.0.1:$P_PEER" --initial-advertise-peer-urls "http://127.0.0.1:$P_PEER" \
  --initial-cluster "e2e=http://127.0.0.1:$P_PEER" --unsafe-no-fsync --log-level warn
wait_for etcd 60 curl -fsS "http://127.0.0.1:$P_ETCD/health"

# Service and pod addresses are API data only (no kube-proxy, no CNI): both ranges are inside 127.0.0.0/8 so
# that no address outside the loopback range appears anywhere in the cluster. The real node of
# `make e2e-pods` (node-up.sh) sets E2E_SERVICE_CIDR to a range that its kube-proxy routes onto its bridge.
# The API server reaches kubelets (logs, exec) by InternalIP only: a node name is never looked up in DNS.
launch kube-apiserver "$K8S_BIN_DIR/kube-apiserver" \
  --etcd-servers "http://127.0.0.1:$P_ETCD" \
  --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$P_API" \
  --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" --client-ca-file "$PKI/ca.crt" \
  --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
  --service-account-issuer https://kubernetes.default.svc.cluster.local \
  --service-cluster-ip-range "${E2E_SERVICE_CIDR:-127.96.0.0/16}" --endpoint-reconciler-type none \
  --authorization-mode Node,RBAC --allow-privileged=true --profiling=false \
  --kubelet-preferred-address-types InternalIP
wait_for kube-apiserver 120 kubectl --kubeconfig "$STATE/kubeconfig" get --raw /readyz

launch kube-controller-manager "$K8S_BIN_DIR/kube-controller-manager" \
  --kubeconfig "$STATE/controller-manager.kubeconfig" \
  --authentication-kubeconfig "$STATE/controller-manager.kubeconfig" \
  --authorization-kubeconfig "$STATE/controller-manager.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port "$P_KCM" --leader-elect=false \
  --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
  --use-service-account-credentials=true --profiling=false
launch kube-scheduler "$K8S_BIN_DIR/kube-scheduler" \
  --kubeconfig "$STATE/scheduler.kubeconfig" \
  --authentication-kubeconfig "$STATE/scheduler.kubeconfig" \
  --authorization-kubeconfig "$STATE/scheduler.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port "$P_SCHED" --leader-elect=false --profiling=false

{ cat "$KWOK_BIN_DIR/stages/default-stages.yaml"; printf -- '\n---\n'; cat "$here/manifests/helm-test-stage.yaml"; } >"$STATE/kwok.yaml"
launch kwok "$KWOK_BIN_DIR/kwok" --kubeconfig "$STATE/kwok.kubeconfig" -c "$STATE/kwok.yaml" \
  --manage-all-nodes=false --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
  --cidr 127.64.0.1/16 --node-ip 127.0.0.1 --node-lease-duration-seconds 40 \
  --server-address "127.0.0.1:$P_KWOK"

export KUBECONFIG="$STATE/kubeconfig"
wait_for "default ServiceAccount" 90 kubectl get serviceaccount default -n default

"$here/add-node.sh" cpu-1 cpu zone-a
"$here/add-node.sh" cpu-2 cpu zone-b
"$here/add-node.sh" gpu-1 gpu zone-a
"$here/add-node.sh" gpu-2 gpu zone-b
printf 'export KUBECONFIG=%q\n' "$STATE/kubeconfig" >"$STATE/env"
log "cluster up: $(kubectl version -o json | python3 -c 'import json,sys; print("server", json.load(sys.stdin)["serverVersion"]["gitVersion"])'), nodes:"
kubectl get nodes -L e2e.text-classifier.io/pool -L nvidia.com/gpu.present >&2
started_ok=1
