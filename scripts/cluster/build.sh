#!/usr/bin/env bash
# Build the e2e test cluster's binaries from the Go module proxy with the installed Go, once, and cache them
# by version outside the repository:
#
#   kube-apiserver, kube-controller-manager, kube-scheduler  (k8s.io/kubernetes $K8S_VERSION)
#   etcd                                                      (go.etcd.io/etcd/server/v3 $ETCD_VERSION)
#   kwok, kwokctl                                             (sigs.k8s.io/kwok $KWOK_VERSION)
#
#   scripts/cluster/build.sh           build what is missing (a warm run only checks the versions)
#   scripts/cluster/build.sh --check   exit 0 only if every binary is cached and reports its version
#
# Cache: ${XDG_CACHE_HOME:-$HOME/.cache}/text-classifier/cluster/<component>-<version>/ (CLUSTER_CACHE overrides).
# Nothing is downloaded from a release page: the sources come as Go modules, built with -trimpath, CGO off.
#
# k8s.io/kubernetes is built inside a throw-away wrapper module (scripts/cluster/build-lib.sh says why),
# with the release's version stamped so `kube-apiserver --version` reports it.
# kubelet and kube-proxy (the real node of `make e2e-pods`) are built by build-node.sh in the same module.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=versions.sh
source "$here/versions.sh"

log() { printf '[build %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

export GOFLAGS="-mod=mod -buildvcs=false"
export CGO_ENABLED=0
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"

# Upstream stage files (paths under the kwok module's kustomize/stage/) that make KWOK nodes Ready and keep
# their lease, take pods Pending -> Initialized -> Running/Ready after 1-6 s, complete Job pods, and delete
# pods as soon as they are marked for deletion (the "fast" pod-delete, as in kwokctl's defaults: graceful
# termination is not simulated, which keeps rollouts, drains and namespace deletion quick).
KWOK_STAGES=(
  node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml
  pod/general/pod-create.yaml pod/general/pod-init-container-running.yaml
  pod/general/pod-init-container-completed.yaml pod/general/pod-ready.yaml pod/general/pod-complete.yaml
  pod/fast/pod-delete.yaml
)

# `<binary> --version` prints the line <expected>. The output is read whole before it is matched: with
# `--version | grep -q` under pipefail, grep's early exit could kill the writer with SIGPIPE and fail the check.
version_line() { # <binary> <expected line>
  local out
  out="$("$1" --version 2>/dev/null)" || return 1
  grep -qxF -- "$2" <<<"$out"
}

k8s_ok() {
  local b
  for b in kube-apiserver kube-controller-manager kube-scheduler; do
    [[ -x "$K8S_BIN_DIR/$b" ]] || return 1
    version_line "$K8S_BIN_DIR/$b" "Kubernetes $K8S_VERSION" || return 1
  done
}
etcd_ok() {
  [[ -x "$ETCD_BIN_DIR/etcd" ]] && version_line "$ETCD_BIN_DIR/etcd" "etcd Version: ${ETCD_VERSION#v}"
}
kwok_ok() {
  [[ -x "$KWOK_BIN_DIR/kwok" && -x "$KWOK_BIN_DIR/kwokctl" ]] || return 1
  [[ "$("$KWOK_BIN_DIR/kwok" --version 2>/dev/null)" == *"${KWOK_VERSION#v}"* ]] || return 1
  [[ "$("$KWOK_BIN_DIR/kwokctl" --version 2>/dev/null)" == *"${KWOK_VERSION#v}"* ]] || return 1
  [[ "$(head -1 "$KWOK_BIN_DIR/stages/default-stages.yaml" 2>/dev/null)" == "# stages: ${KWOK_STAGES[*]}" ]]
}

if [[ "${1:-}" == "--check" ]]; then
  k8s_ok && etcd_ok && kwok_ok && exit 0
  log "cluster binaries missing or wrong version under $CLUSTER_CACHE (run scripts/cluster/build.sh)"
  exit 1
fi
[[ $# -eq 0 ]] || die "usage: $0 [--check]"

command -v go >/dev/null || die "Go is required (the machine's Go toolchain; Kubernetes ${K8S_VERSION%.*} needs Go 1.24+)"
gover="$(go env GOVERSION)"; gover="${gover#go}"
[[ "$(printf '%s\n' 1.24 "$gover" | sort -V | head -1)" == 1.24 ]] || die "Go $gover is too old (need 1.24+)"

work_root="$CLUSTER_CACHE/src"
mkdir -p "$work_root"

# shellcheck source-path=SCRIPTDIR source=build-lib.sh
source "$here/build-lib.sh"

total_start=$SECONDS

# ---------------------------------------------------------------- Kubernetes control plane
if k8s_ok; then
  log "kubernetes $K8S_VERSION: cached in $K8S_BIN_DIR"
else
  t=$SECONDS
  mod="$work_root/kubernetes-$K8S_VERSION"
  rm -rf "$mod"
  k8s_wrapper_module "$mod"
  ld="$(k8s_ldflags)"
  out="$mod/out"; mkdir -p "$out"
  (cd "$mod" && build_with_progress "kubernetes $K8S_VERSION" "$mod/build.log" -trimpath -ldflags "$ld" -o "$out/" \
      k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler)
  rm -rf "$K8S_BIN_DIR.tmp"; mkdir -p "$K8S_BIN_DIR.tmp"
  cp "$out"/kube-apiserver "$out"/kube-controller-manager "$out"/kube-scheduler "$K8S_BIN_DIR.tmp/"
  rm -rf "$K8S_BIN_DIR" "$out"; mv "$K8S_BIN_DIR.tmp" "$K8S_BIN_DIR"
  k8s_ok || die "built kube-* binaries do not report Kubernetes $K8S_VERSION"
  log "kubernetes $K8S_VERSION: done in $((SECONDS - t))s -> $K8S_BIN_DIR"
fi

# ---------------------------------------------------------------- etcd
if etcd_ok; then
  log "etcd $ETCD_VERSION: cached in $ETCD_BIN_DIR"
else
  t=$SECONDS
  # The etcd binary's main package is the root of go.etcd.io/etcd/server/v3 (server/main.go upstream).
  # That module's go.mod replaces its sibling modules with local paths, so `go install pkg@version` refuses
  # it; as a dependency of a wrapper module those replaces are ignored and the pinned tags are used.
  mod="$work_root/etcd-$ETCD_VERSION"
  new_module "$mod" "example.invalid/e2e-build/etcd"
  printf '\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" >>"$mod/go.mod"
  (cd "$mod" && { go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >/dev/null 2>&1 || true; })
  out="$mod/out"; mkdir -p "$out"
  (cd "$mod" && build_with_progress "etcd $ETCD_VERSION" "$mod/build.log" -trimpath -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3)
  rm -rf "$ETCD_BIN_DIR.tmp"; mkdir -p "$ETCD_BIN_DIR.tmp"; cp "$out/etcd" "$ETCD_BIN_DIR.tmp/"
  rm -rf "$ETCD_BIN_DIR" "$out"; mv "$ETCD_BIN_DIR.tmp" "$ETCD_BIN_DIR"
  etcd_ok || die "built etcd does not report $ETCD_VERSION"
  log "etcd $ETCD_VERSION: done in $((SECONDS - t))s -> $ETCD_BIN_DIR"
fi

# ---------------------------------------------------------------- KWOK
if kwok_ok; then
  log "kwok $KWOK_VERSION: cached in $KWOK_BIN_DIR"
else
  t=$SECONDS
  mod="$work_root/kwok-$KWOK_VERSION"
  new_module "$mod" "example.invalid/e2e-build/kwok"
  printf '\nrequire sigs.k8s.io/kwok %s\n' "$KWOK_VERSION" >>"$mod/go.mod"
  (cd "$mod" && { go get "sigs.k8s.io/kwok@$KWOK_VERSION" >/dev/null 2>&1 || true; })
  ld="-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=${K8S_VERSION#v}"
  out="$mod/out"; mkdir -p "$out"
  (cd "$mod" && build_with_progress "kwok $KWOK_VERSION" "$mod/build.log" -trimpath -ldflags "$ld" -o "$out/" \
      sigs.k8s.io/kwok/cmd/kwok sigs.k8s.io/kwok/cmd/kwokctl)
  rm -rf "$KWOK_BIN_DIR.tmp"; mkdir -p "$KWOK_BIN_DIR.tmp/stages"; cp "$out/kwok" "$out/kwokctl" "$KWOK_BIN_DIR.tmp/"
  # The kwok controller alone has no built-in stages (kwokctl adds them): keep upstream's stage files of this
  # release next to the binary, concatenated into one multi-document config.
  src="$(cd "$mod" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)/kustomize/stage"
  {
    printf '# stages: %s\n' "${KWOK_STAGES[*]}"
    for f in "${KWOK_STAGES[@]}"; do
      [[ -s "$src/$f" ]] || die "kwok stage $src/$f not found in the module"
      printf -- '---\n# from sigs.k8s.io/kwok@%s kustomize/stage/%s\n' "$KWOK_VERSION" "$f"
      cat "$src/$f"
    done
  } >"$KWOK_BIN_DIR.tmp/stages/default-stages.yaml"
  rm -rf "$KWOK_BIN_DIR" "$out"; mv "$KWOK_BIN_DIR.tmp" "$KWOK_BIN_DIR"
  kwok_ok || die "built kwok/kwokctl do not report $KWOK_VERSION"
  log "kwok $KWOK_VERSION: done in $((SECONDS - t))s -> $KWOK_BIN_DIR"
fi

log "all cluster binaries ready in $((SECONDS - total_start))s under $CLUSTER_CACHE"
