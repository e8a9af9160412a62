# Pinned versions of the e2e test cluster. Sourced by build.sh, start.sh and stop.sh.
# kubectl from scripts/k8s-tools.sh is v1.35.x, so the control plane is the same minor release.
# shellcheck shell=bash disable=SC2034
K8S_VERSION="${K8S_VERSION:-v1.35.4}"      # kube-apiserver, kube-controller-manager, kube-scheduler
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"    # etcd server
KWOK_VERSION="${KWOK_VERSION:-v0.8.0}"     # kwok (node/pod simulator) and kwokctl

CLUSTER_CACHE="${CLUSTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/text-classifier/cluster}"
K8S_BIN_DIR="$CLUSTER_CACHE/kubernetes-$K8S_VERSION"
ETCD_BIN_DIR="$CLUSTER_CACHE/etcd-$ETCD_VERSION"
KWOK_BIN_DIR="$CLUSTER_CACHE/kwok-$KWOK_VERSION"

# The real node (make e2e-pods): kubelet and kube-proxy from the same k8s.io/kubernetes release, an Ingress
# controller, and the Debian release the container base images are assembled from.
TRAEFIK_VERSION="${TRAEFIK_VERSION:-v3.6.12}"   # github.com/traefik/traefik/v3 (Ingress controller; docs/e2e.md: why not v3.7)
KNP_VERSION="${KNP_VERSION:-v0.8.0}"            # sigs.k8s.io/kube-network-policies (NetworkPolicy enforcer)
NODE_BIN_DIR="$CLUSTER_CACHE/kubernetes-node-$K8S_VERSION"
# Traefik is built without the parts the tests never use (scripts/cluster/traefik-trim/, docs/e2e.md): bump
# TRAEFIK_TRIM when a file there changes; TRAEFIK_TRIM=0 builds upstream's full binary.
TRAEFIK_TRIM="${TRAEFIK_TRIM:-1}"
if [[ "$TRAEFIK_TRIM" == 0 ]]; then
  TRAEFIK_BIN_DIR="$CLUSTER_CACHE/traefik-$TRAEFIK_VERSION"
else
  TRAEFIK_BIN_DIR="$CLUSTER_CACHE/traefik-$TRAEFIK_VERSION-trim$TRAEFIK_TRIM"
fi
KNP_BIN_DIR="$CLUSTER_CACHE/kube-network-policies-$KNP_VERSION"
