#!/usr/bin/env bash
# Start Traefik (built by build-node.sh) as the test cluster's Ingress controller, on the host, listening on
# 127.0.0.1 only. It watches Ingress objects of class "traefik" with a ServiceAccount token and sends each
# request to the ready pod addresses of the Service's EndpointSlices (on the real node's bridge).
# Called by node-up.sh; stopped by node-down.sh (its pid is in the node's pids file).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=versions.sh
source "$here/versions.sh"
# shellcheck source-path=SCRIPTDIR source=node-env.sh
source "$here/node-env.sh"
log() { printf '[ingress %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

kubectl apply -f - >/dev/null <<'YAML'
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata:
  name: traefik
spec:
  controller: traefik.io/ingress-controller
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: traefik, namespace: kube-system}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: e2e-traefik}
rules:
- apiGroups: [""]
  resources: [services, secrets, nodes]
  verbs: [get, list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [get, list, watch]
- apiGroups: [networking.k8s.io]
  resources: [ingresses, ingressclasses]
  verbs: [get, list, watch]
- apiGroups: [networking.k8s.io]
  resources: [ingresses/status]
  verbs: [update]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: e2e-traefik}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: e2e-traefik}
subjects:
- {kind: ServiceAccount, name: traefik, namespace: kube-system}
YAML
token="$(kubectl -n kube-system create token traefik --duration 4h)"
printf '%s' "$token" >"$NODE_STATE/traefik.token"; chmod 600 "$NODE_STATE/traefik.token"
api="$(kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}')"
read -r P_WEB P_ADMIN < <(python3 -c '
import socket
s1 = socket.socket(); s1.bind(("127.0.0.1", 0)); s2 = socket.socket(); s2.bind(("127.0.0.1", 0))
print(s1.getsockname()[1], s2.getsockname()[1])')
setsid "$TRAEFIK_BIN_DIR/traefik" \
  --global.checkNewVersion=false --global.sendAnonymousUsage=false \
  --entryPoints.web.address="127.0.0.1:$P_WEB" \
  --entryPoints.admin.address="127.0.0.1:$P_ADMIN" --ping=true --ping.entryPoint=admin \
  --providers.kubernetesIngress=true --providers.kubernetesIngress.endpoint="$api" \
  --providers.kubernetesIngress.token="$token" \
  --providers.kubernetesIngress.certAuthFilePath="$E2E_CLUSTER_DIR/pki/ca.crt" \
  --providers.kubernetesIngress.ingressClass=traefik \
  --log.level=INFO --log.format=json --accessLog=true --accessLog.format=json \
  >"$NODE_STATE/logs/traefik.log" 2>&1 </dev/null &
echo "traefik $!" >>"$NODE_STATE/pids"
deadline=$((SECONDS + 60))
until curl -fsS "http://127.0.0.1:$P_ADMIN/ping" >/dev/null 2>&1; do
  [[ $SECONDS -lt $deadline ]] || { tail -n 20 "$NODE_STATE/logs/traefik.log" >&2; die "traefik did not answer /ping in 60s"; }
  sleep 0.5
done
echo "http://127.0.0.1:$P_WEB" >"$NODE_STATE/ingress-url"
log "traefik $TRAEFIK_VERSION serving Ingress class traefik on 127.0.0.1:$P_WEB"
