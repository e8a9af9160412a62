#!/usr/bin/env bash
# Join one REAL node to the running e2e control plane (scripts/cluster/start.sh): containerd + runc, CNI
# (bridge, host-local, loopback, portmap), kubelet and kube-proxy (iptables mode), plus Traefik as the
# Ingress controller on 127.0.0.1. The node is labelled as the CPU pool, beside the KWOK GPU nodes.
#
#   scripts/cluster/node-up.sh      needs KUBECONFIG/E2E_CLUSTER_DIR of a running cluster started with
#                                   E2E_SERVICE_CIDR=$E2E_NODE_SERVICE_CIDR, root, node-deps.sh, build-node.sh,
#                                   and images.sh export'ed archives in $E2E_NODE_IMAGES
#   scripts/cluster/node-down.sh    stops everything this started and restores the host's network state
#
# Network: pods live on the bridge tcpods0 (10.213.0.0/24, gateway = node IP 10.213.0.1); Service
# addresses (10.214.0.0/24) are routed onto the same bridge, so nothing is routed off the machine. A
# filter chain drops forwarding between the bridge and any other interface, and no masquerading is set up.
# State, configs and logs: $E2E_CLUSTER_DIR/node; containerd's image store is cached outside the repository.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=versions.sh
source "$here/versions.sh"
# shellcheck source-path=SCRIPTDIR source=node-env.sh
source "$here/node-env.sh"
E2E_CLUSTER_DIR="$(cd "$E2E_CLUSTER_DIR" && pwd)"; NODE_STATE="$E2E_CLUSTER_DIR/node"

log() { printf '[node %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[[ $(id -u) -eq 0 ]] || die "the real node needs root (kubelet, containerd, iptables)"
[[ -s "$E2E_CLUSTER_DIR/pki/ca.key" ]] || die "no running control plane in $E2E_CLUSTER_DIR (scripts/cluster/start.sh)"
"$here/build-node.sh" --check || die "node binaries missing: scripts/cluster/build-node.sh"
[[ -s "$E2E_NODE_IMAGES/images.env" ]] || die "no image archives in $E2E_NODE_IMAGES (scripts/cluster/images.sh export)"
# shellcheck disable=SC1091
source "$E2E_NODE_IMAGES/images.env"
[[ -s "$NODE_STATE/pids" ]] && die "a node is already up from $NODE_STATE: scripts/cluster/node-down.sh first"

# containerd's store keeps only the images of the archives it was last filled from: each source change
# brings three new application images (two of them ~2 GB of TensorFlow) and the old ones would pile up run
# after run. The set changes together (one content hash of the Python sources names all three), so a new
# set starts from an empty store; nothing is mounted from it while no node is up.
store_stamp="$CONTAINERD_ROOT/.images.env"
if [[ -d "$CONTAINERD_ROOT" ]] && ! cmp -s "$E2E_NODE_IMAGES/images.env" "$store_stamp"; then
  if awk -v r="$CONTAINERD_ROOT" 'index($2, r) == 1 {found=1} END {exit !found}' /proc/mounts; then
    log "containerd's store has mounts left (scripts/cluster/node-down.sh): stale images kept"
  else
    log "new image set: emptying containerd's store ($(du -sh "$CONTAINERD_ROOT" 2>/dev/null | cut -f1))"
    rm -rf "$CONTAINERD_ROOT"
  fi
fi
rm -rf "$NODE_STATE"; mkdir -p "$NODE_STATE"/{logs,pki,cni} "$NODE_RUN" "$CONTAINERD_ROOT"
: >"$NODE_STATE/pids"
PKI="$NODE_STATE/pki"; LOGS="$NODE_STATE/logs"; CA="$E2E_CLUSTER_DIR/pki"

started_ok=0
on_exit() {
  [[ $started_ok -eq 1 ]] && return
  log "node start failed; last lines of each log:"
  for f in "$LOGS"/*.log; do [[ -f "$f" ]] && { echo "--- $f" >&2; tail -n 20 "$f" >&2; }; done
}
trap on_exit EXIT

# ---------------------------------------------------------------- host network state (restored by node-down)
iptables-save >"$NODE_STATE/iptables.before"
ip6tables-save >"$NODE_STATE/ip6tables.before"
{ cat /proc/sys/net/ipv4/ip_forward; cat /proc/sys/net/bridge/bridge-nf-call-iptables; } >"$NODE_STATE/sysctl.before"
ip link add "$BRIDGE" type bridge
ip addr add "$NODE_IP/24" dev "$BRIDGE"
ip link set "$BRIDGE" up
ip route add "$SERVICE_CIDR" dev "$BRIDGE"
# Forwarding is needed between pods (through Service addresses) on the bridge only.
iptables -N TC-E2E-GUARD
iptables -A TC-E2E-GUARD -i "$BRIDGE" -o "$BRIDGE" -j RETURN
iptables -A TC-E2E-GUARD -i "$BRIDGE" -j DROP
iptables -A TC-E2E-GUARD -o "$BRIDGE" -j DROP
iptables -I FORWARD 1 -j TC-E2E-GUARD
echo 1 >/proc/sys/net/ipv4/ip_forward
echo 1 >/proc/sys/net/bridge/bridge-nf-call-iptables
# Pods get only the node's cluster DNS (node-dns.sh), never the host's resolvers.
printf 'options ndots:1\n' >"$NODE_STATE/resolv.conf"

# ---------------------------------------------------------------- certificates (signed by the test cluster's CA)
cert() { # <name> <subject>
  openssl req -newkey rsa:2048 -nodes -subj "$2" -keyout "$PKI/$1.key" -out "$PKI/$1.csr" >/dev/null 2>&1
  printf 'extendedKeyUsage=clientAuth\n' >"$PKI/$1.ext"
  openssl x509 -req -in "$PKI/$1.csr" -CA "$CA/ca.crt" -CAkey "$CA/ca.key" -CAcreateserial -days 2 \
    -extfile "$PKI/$1.ext" -out "$PKI/$1.crt" >/dev/null 2>&1 || die "signing $1 failed"
}
cert kubelet "/O=system:nodes/CN=system:node:$NODE_NAME"
cert kube-proxy "/CN=system:kube-proxy"
api="$(kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}')"
kubeconfig() { # <file> <cert>
  cat >"$1" <<YAML
apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster: {server: "$api", certificate-authority: "$CA/ca.crt"}
users:
- name: $2
  user: {client-certificate: "$PKI/$2.crt", client-key: "$PKI/$2.key"}
contexts:
- name: e2e
  context: {cluster: e2e, user: $2}
current-context: e2e
YAML
}
kubeconfig "$NODE_STATE/kubelet.kubeconfig" kubelet
kubeconfig "$NODE_STATE/kube-proxy.kubeconfig" kube-proxy

launch() { # <name> <cmd...>
  local name="$1"; shift
  setsid "$@" >"$LOGS/$name.log" 2>&1 </dev/null &
  echo "$name $!" >>"$NODE_STATE/pids"
  log "started $name (pid $!)"
}
wait_for() { # <what> <seconds> <command...>
  local what="$1" secs="$2"; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [[ $SECONDS -lt $deadline ]] || die "$what not ready after ${secs}s"
    while read -r n pid; do kill -0 "$pid" 2>/dev/null || die "$n (pid $pid) exited; see $LOGS/$n.log"; done <"$NODE_STATE/pids"
    sleep 0.5
  done
  log "$what ready"
}

# ---------------------------------------------------------------- containerd
cat >"$NODE_STATE/containerd.toml" <<TOML
version = 2
root = "$CONTAINERD_ROOT"
state = "$NODE_RUN/containerd"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "$CONTAINERD_SOCK"
[ttrpc]
  address = "$CONTAINERD_SOCK.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # The machine lacks CAP_SYS_RESOURCE: lowering a container's oom_score_adj is refused, so keep it as is.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$NODE_STATE/cni"
TOML
cat >"$NODE_STATE/cni/10-tcpods.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "tcpods",
  "plugins": [
    {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$NODE_IP"}]],
              "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "$NODE_RUN/cni-ipam"}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON
launch containerd containerd --config "$NODE_STATE/containerd.toml"
wait_for containerd 60 ctr --address "$CONTAINERD_SOCK" version

# Images: import every archive, unpacked into overlayfs snapshots now (content already in containerd's cached
# store is not written again): unpacking a TensorFlow image on first use would outlast the kubelet's CRI
# deadline on a busy machine.
# An image already in the store is not imported again: its name carries the content hash of its inputs, and
# a docker-archive has to be read and hashed whole to import (about a minute for a TensorFlow image).
present="$(ctr --address "$CONTAINERD_SOCK" -n k8s.io images ls -q)"
for var in ${E2E_NODE_IMAGE_VARS:-PAUSE_IMAGE BUSYBOX_IMAGE SIDECAR_IMAGE TRAINER_IMAGE STANDIN_IMAGE}; do
  if grep -qxF -- "${!var}" <<<"$present"; then
    log "${!var} already in containerd's store"
    continue
  fi
  t=$SECONDS
  ctr --address "$CONTAINERD_SOCK" -n k8s.io images import "$E2E_NODE_IMAGES/$var.tar" >>"$LOGS/import.log" 2>&1 \
    || die "ctr images import $var failed (see $LOGS/import.log)"
  log "imported ${!var} in $((SECONDS - t))s"
done

cp "$E2E_NODE_IMAGES/images.env" "$store_stamp"

# A second name for the sidecar image: `kubectl set image` needs a different reference to roll out.
ctr --address "$CONTAINERD_SOCK" -n k8s.io images tag --force "$SIDECAR_IMAGE" "$SIDECAR_IMAGE-b" >/dev/null

# ---------------------------------------------------------------- kubelet
read -r P_KUBELET P_HEALTHZ P_PROXY_HEALTH P_PROXY_METRICS < <(python3 - <<'PY'
import socket
socks = []
for _ in range(4):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
)
cat >"$NODE_STATE/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# Only the bridge address: the API server reaches it for logs and exec; nothing outside the machine can.
address: $NODE_IP
port: $P_KUBELET
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $P_HEALTHZ
# The test API server calls the kubelet without a client certificate; the port listens on the bridge only.
authentication: {anonymous: {enabled: true}, webhook: {enabled: false}}
authorization: {mode: AlwaysAllow}
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
# This machine has a cgroup v1 hierarchy, managed directly (no systemd).
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
resolvConf: $NODE_STATE/resolv.conf
clusterDomain: cluster.local
clusterDNS: ["$NODE_IP"]
serializeImagePulls: false
# Creating a container from a large image on 2 busy cores can take minutes.
runtimeRequestTimeout: 10m
# A shared CI disk: image garbage collection and disk-pressure eviction would only make the test flaky.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
podLogsDir: $NODE_STATE/pod-logs
registerNode: true
nodeStatusUpdateFrequency: 5s
shutdownGracePeriod: 0s
YAML
launch kubelet "$NODE_BIN_DIR/kubelet" --config "$NODE_STATE/kubelet.yaml" \
  --kubeconfig "$NODE_STATE/kubelet.kubeconfig" --root-dir "$KUBELET_ROOT" \
  --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" \
  --node-labels "e2e.text-classifier.io/pool=cpu,cloud.google.com/gke-nodepool=cpu-pool,topology.kubernetes.io/zone=zone-a,e2e.text-classifier.io/node=real" \
  --v=1
wait_for "kubelet healthz" 120 curl -fsS "http://127.0.0.1:$P_HEALTHZ/healthz"
wait_for "node $NODE_NAME registered" 120 kubectl get node "$NODE_NAME"
kubectl wait --for=condition=Ready "node/$NODE_NAME" --timeout=120s >&2 || die "node $NODE_NAME not Ready"

# ---------------------------------------------------------------- kube-proxy (iptables)
cat >"$NODE_STATE/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: {kubeconfig: $NODE_STATE/kube-proxy.kubeconfig}
hostnameOverride: $NODE_NAME
clusterCIDR: $POD_CIDR
bindAddress: $NODE_IP
healthzBindAddress: 127.0.0.1:$P_PROXY_HEALTH
metricsBindAddress: 127.0.0.1:$P_PROXY_METRICS
nodePortAddresses: ["$NODE_IP/32"]
# Leave the host's conntrack limits alone (raising them needs privileges this machine does not grant).
conntrack: {maxPerCore: 0, min: 0}
YAML
launch kube-proxy "$NODE_BIN_DIR/kube-proxy" --config "$NODE_STATE/kube-proxy.yaml" --v=1
wait_for "kube-proxy healthz" 60 curl -fsS "http://127.0.0.1:$P_PROXY_HEALTH/healthz"

# ---------------------------------------------------------------- cluster DNS (dnsmasq from the Service list)
: >"$NODE_STATE/svc-hosts"
launch dnsmasq dnsmasq --keep-in-foreground --no-resolv --no-hosts --no-poll --bind-interfaces \
  --listen-address="$NODE_IP" --port=53 --addn-hosts="$NODE_STATE/svc-hosts" \
  --pid-file="$NODE_STATE/dnsmasq.pid" --user=root --log-facility=- --no-dhcp-interface="$BRIDGE"
launch dns-sync "$here/node-dns.sh" sync "$NODE_STATE/svc-hosts" "$NODE_STATE/dnsmasq.pid"
wait_for "cluster DNS (kubernetes.default)" 30 grep -q ' kubernetes.default.svc ' "$NODE_STATE/svc-hosts"

# ---------------------------------------------------------------- Traefik (Ingress controller)
"$here/ingress-up.sh"
printf 'export E2E_INGRESS_URL=%q\nexport E2E_NODE_NAME=%q\nexport SIDECAR_IMAGE_B=%q\n' \
  "$(cat "$NODE_STATE/ingress-url")" "$NODE_NAME" "$SIDECAR_IMAGE-b" >"$NODE_STATE/env"
started_ok=1
log "real node $NODE_NAME up: $(kubectl get node "$NODE_NAME" -o jsonpath='{.status.nodeInfo.containerRuntimeVersion} kubelet {.status.nodeInfo.kubeletVersion}')"
