#!/usr/bin/env bash
# Everything `make e2e-pods` builds (each step cached by version or content hash), in two lanes at once:
#   go:     the control plane (build.sh), then kubelet, kube-proxy and Traefik (build-node.sh)
#   images: the bases and application images from docker/ (images.sh build), then their archives
# The image lane waits on the network and the disk much of the time (debootstrap, pip inside the builds,
# vfs copies, archives); the Go lane's compiles use those gaps.
#
#   E2E_BUILD_MARKS=dir   touch dir/control-plane.done as soon as the control plane is built (`.ci/run`
#                         starts `make e2e` then, while the rest builds)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
marks="${E2E_BUILD_MARKS:-}"
log() { printf '[build-all %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
t0=$SECONDS

bash scripts/cluster/node-deps.sh   # apt first and alone: buildah and debootstrap come from it

go_lane() {
  bash scripts/cluster/build.sh
  [[ -z "$marks" ]] || { mkdir -p "$marks"; touch "$marks/control-plane.done"; }
  bash scripts/cluster/build-node.sh
}
image_lane() {
  bash scripts/cluster/images.sh build
  # shellcheck source=node-env.sh
  source scripts/cluster/node-env.sh
  bash scripts/cluster/images.sh export "$E2E_NODE_IMAGES"
}
lane() { # <name> <function>: runs it with its lines prefixed; exit status is the function's
  local t=$SECONDS
  set -o pipefail
  "$2" 2>&1 | sed -u "s/^/[$1] /"
  log "$1 lane done in $((SECONDS - t))s"
}
lane go go_lane & go_pid=$!
lane images image_lane & img_pid=$!
rc=0
wait "$go_pid" || { log "ERROR: the go lane failed (above, lines starting [go])"; rc=1; }
wait "$img_pid" || { log "ERROR: the image lane failed (above, lines starting [images])"; rc=1; }
[[ $rc -eq 0 ]] && log "all built in $((SECONDS - t0))s"
exit "$rc"
