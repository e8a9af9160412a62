# Names, paths and addresses of the real test node; sourced by node-up.sh, node-down.sh, ingress-up.sh.
# shellcheck shell=bash disable=SC2034
E2E_CLUSTER_DIR="${E2E_CLUSTER_DIR:-.cache/e2e-pods-cluster}"
NODE_STATE="$E2E_CLUSTER_DIR/node"
NODE_NAME="${E2E_NODE_NAME:-real-1}"
NODE_RUN="/run/text-classifier-e2e"                    # sockets and runtime state (short paths)
CONTAINERD_SOCK="$NODE_RUN/containerd.sock"
KUBELET_ROOT="/var/lib/text-classifier-e2e/kubelet"
CONTAINERD_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/text-classifier/node/containerd"   # image store, kept
E2E_NODE_IMAGES="${E2E_NODE_IMAGES:-${XDG_CACHE_HOME:-$HOME/.cache}/text-classifier/node/archives}"
BRIDGE="tcpods0"
POD_CIDR="10.213.0.0/24"
NODE_IP="10.213.0.1"
SERVICE_CIDR="10.214.0.0/24"                           # the control plane's E2E_SERVICE_CIDR
