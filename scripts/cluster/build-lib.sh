# Functions shared by build.sh (control plane) and build-node.sh (kubelet, kube-proxy, Ingress controller):
# progress-logged go builds and the throw-away wrapper module that builds commands of k8s.io/kubernetes.
# Needs versions.sh sourced and log/die defined.
# shellcheck shell=bash
#
# k8s.io/kubernetes is not meant to be used as a module: its go.mod requires the staging modules
# (k8s.io/api, k8s.io/apiserver, ...) at v0.0.0 and replaces them with ./staging/src paths, which a
# dependent module cannot see. So the wrapper requires k8s.io/kubernetes and maps every staging module to
# its published tag (v1.X.Y -> v0.X.Y).

# go build -v prints each package as it is compiled; turn that into one progress line every 100 packages
# and keep the whole log for errors.
build_with_progress() { # <label> <logfile> <go build args...>
  local label="$1" logf="$2"; shift 2
  local start=$SECONDS rc=0
  log "$label: go build $* (full log: $logf)"
  set +e
  go build -v "$@" 2>&1 | tee "$logf" | awk -v l="$label" -v t0="$(date +%s)" '
    /^[a-zA-Z0-9_.\/-]+$/ { n++; if (n % 100 == 0) { printf "[build] %s: %d packages compiled (%ds)\n", l, n, systime()-t0; fflush() } ; next }
    { print "[build] " l ": " $0; fflush() }' >&2
  rc=${PIPESTATUS[0]}
  set -e
  [[ $rc -eq 0 ]] || die "$label: go build failed (exit $rc); see $logf"
  log "$label: built in $((SECONDS - start))s"
}

new_module() { # <dir> <module name>
  rm -rf "$1"; mkdir -p "$1"
  printf 'module %s\n\ngo %s\n' "$2" "$(go env GOVERSION | sed -E 's/^go([0-9]+\.[0-9]+).*/\1/')" >"$1/go.mod"
}

# k8s_wrapper_module <dir>: create the wrapper module in <dir>, or reuse it when it already requires
# k8s.io/kubernetes $K8S_VERSION (its go.sum and the module cache then make a rebuild incremental).
k8s_wrapper_module() {
  local mod="$1"
  if grep -Eq "^[[:space:]]*(require[[:space:]]+)?k8s\.io/kubernetes $K8S_VERSION([[:space:]]|$)" "$mod/go.mod" 2>/dev/null && [[ -s "$mod/go.sum" ]]; then
    log "kubernetes $K8S_VERSION: reusing wrapper module $mod"
    return 0
  fi
  new_module "$mod" "example.invalid/e2e-build/kubernetes"
  log "kubernetes $K8S_VERSION: fetching k8s.io/kubernetes module (large, ~1 GiB unpacked)"
  local gomod staging_tag n_repl
  gomod="$(cd "$mod" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -nE 's/^\s*"GoMod": "(.*)",?$/\1/p')"
  [[ -f "$gomod" ]] || die "could not download k8s.io/kubernetes@$K8S_VERSION"
  staging_tag="v0.${K8S_VERSION#v1.}"
  {
    printf '\nrequire k8s.io/kubernetes %s\n\nreplace (\n' "$K8S_VERSION"
    # every "k8s.io/x => ./staging/src/k8s.io/x" line of upstream's go.mod becomes "k8s.io/x => k8s.io/x v0.X.Y"
    sed -nE 's#^\s*(k8s\.io/[A-Za-z0-9._/-]+) => \./staging/src/k8s\.io/.*$#\t\1 => \1 '"$staging_tag"'#p' "$gomod"
    printf ')\n'
  } >>"$mod/go.mod"
  n_repl="$(grep -c "=> .* $staging_tag" "$mod/go.mod" || true)"
  [[ "$n_repl" -ge 20 ]] || die "found only $n_repl staging modules in k8s.io/kubernetes' go.mod"
  log "kubernetes $K8S_VERSION: wrapper module maps $n_repl staging modules to $staging_tag; resolving dependencies"
  (cd "$mod" && { go get "k8s.io/kubernetes@$K8S_VERSION" >/dev/null 2>&1 || true; })
}

# k8s_ldflags: stamp the release's version with the -X variables upstream's hack/lib/version.sh sets,
# so `kubelet --version` reports it.
k8s_ldflags() {
  local minor build_date ld="-s -w" pkg
  minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
  build_date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ld+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date"
  done
  printf '%s' "$ld"
}
