#!/usr/bin/env bash
# Build the real node's binaries for `make e2e-pods` from the Go module proxy, once, and cache them by
# version outside the repository (next to build.sh's control plane):
#
#   kubelet, kube-proxy   (k8s.io/kubernetes $K8S_VERSION, in build.sh's wrapper module)
#   traefik               (github.com/traefik/traefik/v3 $TRAEFIK_VERSION: the Ingress controller)
#
#   scripts/cluster/build-node.sh           build what is missing (a warm run only checks the versions)
#   scripts/cluster/build-node.sh --check   exit 0 only if every binary is cached and reports its version
#   scripts/cluster/build-node.sh traefik   only one part (kubernetes | traefik)
#
# Run scripts/cluster/build.sh first: it creates the wrapper module whose build cache makes kubelet and
# kube-proxy an incremental build. Built with -trimpath and CGO off, like the control plane.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=versions.sh
source "$here/versions.sh"

log() { printf '[build-node %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

export GOFLAGS="-mod=mod -buildvcs=false"
export CGO_ENABLED=0
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"

# `<binary> --version` prints the line <expected>. The output is read whole before it is matched: with
# `--version | grep -q` under pipefail, grep's early exit could kill the writer with SIGPIPE and fail the check.
version_line() { # <binary> <expected line>
  local out
  out="$("$1" --version 2>/dev/null)" || return 1
  grep -qxF -- "$2" <<<"$out"
}

node_ok() {
  [[ -x "$NODE_BIN_DIR/kubelet" && -x "$NODE_BIN_DIR/kube-proxy" ]] || return 1
  version_line "$NODE_BIN_DIR/kubelet" "Kubernetes $K8S_VERSION" || return 1
  version_line "$NODE_BIN_DIR/kube-proxy" "Kubernetes $K8S_VERSION"
}
traefik_ok() {
  [[ -x "$TRAEFIK_BIN_DIR/traefik" ]] || return 1
  # Read the whole output first: `grep -q` closing the pipe early fails the check under pipefail.
  local out; out="$("$TRAEFIK_BIN_DIR/traefik" version 2>/dev/null)" || return 1
  grep -q "^Version: *${TRAEFIK_VERSION#v}$" <<<"$out" || return 1
  # A trimmed build says so in its codename; the full build keeps upstream's.
  [[ "$TRAEFIK_TRIM" == 0 ]] || grep -q "^Codename: *e2e-trim$TRAEFIK_TRIM$" <<<"$out"
}

# The trimmed Traefik: these packages' files are swapped for our stand-ins in scripts/cluster/traefik-trim/
# (same exported API; every removed feature refuses to start with an error that says so). `go build
# -overlay` cannot do it (Go refuses overlays of files in the module cache), so the two modules are copied
# into the throw-away wrapper module and `replace`d by those copies; the module cache stays untouched.
# <module> <package dir> <stand-in>
TRAEFIK_TRIM_FILES=(
  "github.com/go-acme/lego/v4 providers/dns lego-dns.go"                        # ~850 packages: DNS-01 SDKs
  "github.com/traefik/traefik/v3 pkg/provider/ecs ecs.go"                       # AWS SDK
  "github.com/traefik/traefik/v3 pkg/provider/docker docker.go"                 # Docker client
  "github.com/traefik/traefik/v3 pkg/provider/kv/etcd kv-etcd.go"               # etcd client
  "github.com/traefik/traefik/v3 pkg/provider/kv/consul kv-consul.go"
  "github.com/traefik/traefik/v3 pkg/provider/kv/redis kv-redis.go"
  "github.com/traefik/traefik/v3 pkg/provider/kv/zk kv-zk.go"
  "github.com/traefik/traefik/v3 pkg/provider/consulcatalog consulcatalog.go"   # Consul API
  "github.com/traefik/traefik/v3 pkg/provider/nomad nomad.go"                   # Nomad API
  "github.com/traefik/traefik/v3 pkg/provider/kubernetes/knative knative.go"    # Knative clients
)

# traefik_trim <wrapper module dir>: copy each listed module (its version in the wrapper's build list) to
# <dir>/trim/, replace it there, and in each listed package remove every non-test .go file and add the
# stand-in. Prints how many upstream files were left out.
traefik_trim() {
  local mod="$1" entry m pkg stub src copy n=0 f
  declare -A copied=()
  rm -rf "$mod/trim"
  for entry in "${TRAEFIK_TRIM_FILES[@]}"; do
    read -r m pkg stub <<<"$entry"
    copy="$mod/trim/${m//\//_}"
    if [[ -z "${copied[$m]:-}" ]]; then
      src="$(cd "$mod" && go mod download -json "$m" | sed -nE 's/^\s*"Dir": "(.*)",?$/\1/p')"
      [[ -d "$src" ]] || die "traefik trim: could not download $m"
      mkdir -p "$copy"; cp -r "$src/." "$copy/"; chmod -R u+w "$copy"
      (cd "$mod" && go mod edit -replace "$m=./trim/${m//\//_}")
      copied[$m]=1
    fi
    [[ -d "$copy/$pkg" ]] || die "traefik trim: $m has no $pkg"
    for f in "$copy/$pkg"/*.go; do
      [[ "$f" == *_test.go ]] && continue
      rm "$f"; n=$((n + 1))
    done
    cp "$here/traefik-trim/$stub" "$copy/$pkg/e2e_trim_standin.go"
  done
  echo "$n"
}

if [[ "${1:-}" == "--check" ]]; then
  node_ok && traefik_ok && exit 0
  log "node binaries missing or wrong version under $CLUSTER_CACHE (run scripts/cluster/build-node.sh)"
  exit 1
fi
parts="${*:-kubernetes traefik}"
for p in $parts; do [[ "$p" == kubernetes || "$p" == traefik ]] || die "usage: $0 [--check | kubernetes | traefik]"; done
want() { [[ " $parts " == *" $1 "* ]]; }
command -v go >/dev/null || die "Go is required (the machine's Go toolchain, 1.26+ for Traefik v3.7)"

work_root="$CLUSTER_CACHE/src"
mkdir -p "$work_root"
# shellcheck source-path=SCRIPTDIR source=build-lib.sh
source "$here/build-lib.sh"
total_start=$SECONDS

# ---------------------------------------------------------------- kubelet, kube-proxy
if ! want kubernetes; then
  :
elif node_ok; then
  log "kubelet/kube-proxy $K8S_VERSION: cached in $NODE_BIN_DIR"
else
  t=$SECONDS
  mod="$work_root/kubernetes-$K8S_VERSION"
  k8s_wrapper_module "$mod"
  out="$mod/out-node"; rm -rf "$out"; mkdir -p "$out"
  (cd "$mod" && build_with_progress "kubelet/kube-proxy $K8S_VERSION" "$mod/build-node.log" -trimpath \
      -ldflags "$(k8s_ldflags)" -o "$out/" k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy)
  rm -rf "$NODE_BIN_DIR.tmp"; mkdir -p "$NODE_BIN_DIR.tmp"
  cp "$out/kubelet" "$out/kube-proxy" "$NODE_BIN_DIR.tmp/"
  rm -rf "$NODE_BIN_DIR" "$out"; mv "$NODE_BIN_DIR.tmp" "$NODE_BIN_DIR"
  node_ok || die "built kubelet/kube-proxy do not report Kubernetes $K8S_VERSION"
  log "kubelet/kube-proxy $K8S_VERSION: done in $((SECONDS - t))s -> $NODE_BIN_DIR"
fi

# ---------------------------------------------------------------- Traefik (Ingress controller)
if ! want traefik; then
  :
elif traefik_ok; then
  log "traefik $TRAEFIK_VERSION: cached in $TRAEFIK_BIN_DIR"
else
  t=$SECONDS
  mod="$work_root/$(basename "$TRAEFIK_BIN_DIR")"
  new_module "$mod" "example.invalid/e2e-build/traefik"
  gomod="$(cd "$mod" && go mod download -json "github.com/traefik/traefik/v3@$TRAEFIK_VERSION" | sed -nE 's/^\s*"GoMod": "(.*)",?$/\1/p')"
  [[ -f "$gomod" ]] || die "could not download github.com/traefik/traefik/v3@$TRAEFIK_VERSION"
  # Traefik's go.mod replaces two dependencies with forks (honoured only in the main module, so copied into
  # the wrapper) and one nested module, github.com/traefik/traefik/dynamic/ext, with a local directory that
  # the published module does not contain. That nested module is an extension point of two empty structs
  # (dynamic.HTTP and dynamic.Router embed them); the wrapper supplies an equivalent one of its own.
  mkdir -p "$mod/ext"
  printf 'module github.com/traefik/traefik/dynamic/ext\n\ngo 1.24\n' >"$mod/ext/go.mod"
  cat >"$mod/ext/ext.go" <<'GO'
// Package ext holds the (empty) extension points that Traefik's dynamic configuration embeds.
package ext

// HTTP is embedded in dynamic.HTTPConfiguration.
type HTTP struct{}

// Router is embedded in dynamic.Router.
type Router struct{}
GO
  {
    printf '\nrequire github.com/traefik/traefik/v3 %s\n\nreplace (\n' "$TRAEFIK_VERSION"
    printf '\tgithub.com/traefik/traefik/dynamic/ext => ./ext\n'
    sed -nE 's#^\s*(github\.com/[A-Za-z0-9._/-]+) => (github\.com/[A-Za-z0-9._/-]+ v[^ ]+)\s*$#\t\1 => \2#p' "$gomod"
    printf ')\n'
  } >>"$mod/go.mod"
  grep -q 'gorilla/mux =>' "$mod/go.mod" || die "traefik's fork replaces were not found in its go.mod"
  (cd "$mod" && { go get "github.com/traefik/traefik/v3@$TRAEFIK_VERSION" >/dev/null 2>&1 || true; })
  ld="-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=${TRAEFIK_VERSION#v}"
  ld+=" -X github.com/traefik/traefik/v3/pkg/version.BuildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  if [[ "$TRAEFIK_TRIM" != 0 ]]; then
    n="$(traefik_trim "$mod")"
    ld+=" -X github.com/traefik/traefik/v3/pkg/version.Codename=e2e-trim$TRAEFIK_TRIM"
    log "traefik $TRAEFIK_VERSION: trimmed build ($n upstream files left out, ${#TRAEFIK_TRIM_FILES[@]} stand-ins: docs/e2e.md)"
  fi
  out="$mod/out"; mkdir -p "$out"
  (cd "$mod" && build_with_progress "traefik $TRAEFIK_VERSION" "$mod/build.log" -trimpath -ldflags "$ld" \
      -o "$out/traefik" github.com/traefik/traefik/v3/cmd/traefik)
  rm -rf "$TRAEFIK_BIN_DIR.tmp"; mkdir -p "$TRAEFIK_BIN_DIR.tmp"; cp "$out/traefik" "$TRAEFIK_BIN_DIR.tmp/"
  rm -rf "$TRAEFIK_BIN_DIR" "$out"; mv "$TRAEFIK_BIN_DIR.tmp" "$TRAEFIK_BIN_DIR"
  traefik_ok || die "built traefik does not report $TRAEFIK_VERSION"
  log "traefik $TRAEFIK_VERSION: done in $((SECONDS - t))s -> $TRAEFIK_BIN_DIR"
fi

log "node binaries ready in $((SECONDS - total_start))s under $CLUSTER_CACHE"
