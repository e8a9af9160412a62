#!/usr/bin/env bash
# Build the container images of `make e2e-pods` with buildah, from the repository's Dockerfiles, on bases
# assembled locally from Debian packages (no container registry is reachable), and cache them:
#
#   localhost/text-classifier-e2e/python:3.11-bookworm   debootstrap bookworm (minbase) + Debian's python3.11
#                                                        (the Dockerfiles' PYTHON_IMAGE build arg)
#   localhost/text-classifier-e2e/busybox:<deb version>  Debian's busybox-static in an empty image
#                                                        (the base of the pause image)
#   localhost/text-classifier-e2e/pause:1                the pod sandbox image containerd is configured with
#   localhost/text-classifier-e2e/sidecar:<key>          docker/Dockerfile.sidecar
#   localhost/text-classifier-e2e/trainer:<key>          docker/Dockerfile.trainer
#   localhost/text-classifier-e2e/tfserving-standin:<key>  docker/e2e/Dockerfile.standin (TEST ONLY)
#
#   scripts/cluster/images.sh build     build what is missing (keys are content hashes of the inputs)
#   scripts/cluster/images.sh export D  write each image as D/<name>.tar (docker-archive: uncompressed) and D/images.env
#   scripts/cluster/images.sh refs      print the application images' names for the current sources
#
# Storage: buildah's vfs store under $IMAGE_CACHE (default ${XDG_CACHE_HOME:-$HOME/.cache}/text-classifier/images),
# outside the repository. Needs root and the Debian packages from scripts/cluster/node-deps.sh.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
# shellcheck source-path=SCRIPTDIR source=versions.sh
source "$here/versions.sh"
IMAGE_CACHE="${IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/text-classifier/images}"
PREFIX="localhost/text-classifier-e2e"
DEBIAN_SUITE="${DEBIAN_SUITE:-bookworm}"
BASE_PACKAGES="python3.11,python3.11-venv,python3-venv,python-is-python3,ca-certificates,passwd"
BASE_RECIPE=1   # bump when python_base() changes what goes into the base image

log() { printf '[images %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
bh() { buildah --root "$IMAGE_CACHE/storage" --runroot "$IMAGE_CACHE/run" --storage-driver vfs "$@"; }
have() { bh inspect --type image "$1" >/dev/null 2>&1; }
hash_of() { sha256sum | cut -c1-16; }

# The Debian mirror this machine's apt already uses (DEBIAN_MIRROR overrides), so debootstrap needs no
# address of its own.
debian_mirror() {
  [[ -n "${DEBIAN_MIRROR:-}" ]] && { echo "$DEBIAN_MIRROR"; return; }
  local m
  m="$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/ {print $2; exit}')"
  [[ -n "$m" ]] || m="$(awk '$1 == "deb" && $3 ~ /^'"$DEBIAN_SUITE"'$/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null)"
  [[ -n "$m" ]] || die "no Debian mirror found in apt's sources; set DEBIAN_MIRROR"
  echo "$m"
}

# The host's CA bundle is mounted into every RUN step (read-only, never copied into an image) so that pip
# inside the build trusts what the host's pip trusts.
BUILD_MOUNTS=(--volume /etc/ssl/certs:/etc/ssl/certs:ro)
bud() { # <image> <dockerfile> [build args...]
  local image="$1" file="$2"; shift 2
  local t=$SECONDS
  log "building $image from $file"
  (cd "$repo" && bh bud --isolation chroot --pull=never --layers=false "${BUILD_MOUNTS[@]}" \
      -f "$file" -t "$image" "$@" . ) >"$IMAGE_CACHE/logs/$(basename "${image%%:*}").log" 2>&1 \
    || { tail -n 30 "$IMAGE_CACHE/logs/$(basename "${image%%:*}").log" >&2; die "build of $image failed"; }
  log "built $image in $((SECONDS - t))s"
}

python_base() {
  local key image rootfs t
  key="$(printf '%s %s %s\n' "$DEBIAN_SUITE" "$BASE_PACKAGES" "$BASE_RECIPE" | hash_of)"
  image="$PREFIX/python:3.11-$DEBIAN_SUITE-$key"
  PYTHON_BASE="$image"
  have "$image" && { log "cached $image"; return; }
  t=$SECONDS
  rootfs="$IMAGE_CACHE/rootfs-python"; rm -rf "$rootfs"
  log "debootstrap $DEBIAN_SUITE (minbase + $BASE_PACKAGES)"
  debootstrap --variant=minbase --include="$BASE_PACKAGES" "$DEBIAN_SUITE" "$rootfs" "$(debian_mirror)" \
    >"$IMAGE_CACHE/logs/debootstrap.log" 2>&1 || { tail -n 20 "$IMAGE_CACHE/logs/debootstrap.log" >&2; die "debootstrap failed"; }
  # An image needs no package lists, caches, docs or man pages; pip in the builds uses the host's CA bundle
  # (mounted) through this pip.conf, and falls back to certifi's elsewhere.
  rm -rf "$rootfs"/var/cache/apt/* "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/*
  printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' >"$rootfs/etc/pip.conf"
  local c; c="$(bh from scratch)"
  bh copy "$c" "$rootfs" / >/dev/null
  bh config --env LANG=C.UTF-8 --cmd python3 "$c"
  bh commit --quiet --rm "$c" "$image" >/dev/null
  rm -rf "$rootfs"
  log "base $image in $((SECONDS - t))s"
}

busybox_base() {
  local t deb ver dir c
  t=$SECONDS
  ver="$(apt-cache policy busybox-static | awk '/Candidate:/ {print $2}' | tr -c 'A-Za-z0-9.\n' '-')"
  [[ -n "$ver" && "$ver" != "-none-" ]] || die "apt knows no busybox-static package"
  BUSYBOX_BASE="$PREFIX/busybox:$ver"
  PAUSE_IMAGE="$PREFIX/pause:$ver"
  if have "$BUSYBOX_BASE" && have "$PAUSE_IMAGE"; then log "cached $BUSYBOX_BASE"; return; fi
  dir="$IMAGE_CACHE/busybox"; rm -rf "$dir"; mkdir -p "$dir/root"
  (cd "$dir" && apt-get download "busybox-static" >/dev/null 2>&1) || die "apt-get download busybox-static failed"
  deb="$(ls "$dir"/busybox-static_*.deb)"
  dpkg-deb -x "$deb" "$dir/deb"
  mkdir -p "$dir/root/bin" "$dir/root/tmp" "$dir/root/etc"
  cp "$dir/deb/bin/busybox" "$dir/root/bin/busybox"
  for a in sh ls cat cp mkdir rm mv ln sleep test echo wget env id stat find chmod tar du head sed; do ln -s busybox "$dir/root/bin/$a"; done
  printf 'root:x:0:0:root:/:/bin/sh\napp:x:10001:10001:app:/tmp:/bin/sh\n' >"$dir/root/etc/passwd"
  printf 'root:x:0:\napp:x:10001:\n' >"$dir/root/etc/group"
  chmod 1777 "$dir/root/tmp"
  c="$(bh from scratch)"; bh copy "$c" "$dir/root" / >/dev/null
  bh config --env PATH=/bin --cmd /bin/sh "$c"; bh commit --quiet --rm "$c" "$BUSYBOX_BASE" >/dev/null
  # Pod sandbox: sleeps until told to stop (a shell as PID 1 only acts on signals it traps).
  c="$(bh from "$BUSYBOX_BASE")"
  bh config --entrypoint '["/bin/sh","-c","trap \"exit 0\" TERM INT; while :; do sleep 3600 & wait $!; done"]' --cmd '' --user 65535:65535 "$c"
  bh commit --quiet --rm "$c" "$PAUSE_IMAGE" >/dev/null
  rm -rf "$dir"
  log "busybox/pause bases in $((SECONDS - t))s"
}

# Cache keys: content hashes of what each image is built from (README.md is left out on purpose: it only
# becomes the package's long description, and docs edits must not rebuild TensorFlow images).
py_inputs() {
  (cd "$repo" && cat .dockerignore pyproject.toml setup.py requirements/lock.txt \
     $(git ls-files contracts textvec training preprocess_service | grep -v '/__pycache__/'))
}
image_key() { # <dockerfile> [extra files...]
  { printf '%s\n' "$PYTHON_BASE"; py_inputs; (cd "$repo" && cat "$@"); } | hash_of
}

image_refs() { # the application images' names for the current sources (PYTHON_BASE set)
  SIDECAR_IMAGE="$PREFIX/sidecar:$(image_key docker/Dockerfile.sidecar)"
  TRAINER_IMAGE="$PREFIX/trainer:$(image_key docker/Dockerfile.trainer)"
  STANDIN_IMAGE="$PREFIX/tfserving-standin:$(image_key docker/Dockerfile.trainer docker/e2e/Dockerfile.standin \
    docker/e2e/Dockerfile.standin.dockerignore docker/e2e/tensorflow_model_server \
    $(cd "$repo" && git ls-files local_model_server))"
}

build_all() {
  mkdir -p "$IMAGE_CACHE/logs"
  python_base
  busybox_base
  image_refs
  have "$SIDECAR_IMAGE" || bud "$SIDECAR_IMAGE" docker/Dockerfile.sidecar --build-arg "PYTHON_IMAGE=$PYTHON_BASE"
  have "$TRAINER_IMAGE" || bud "$TRAINER_IMAGE" docker/Dockerfile.trainer --build-arg "PYTHON_IMAGE=$PYTHON_BASE"
  have "$STANDIN_IMAGE" || bud "$STANDIN_IMAGE" docker/e2e/Dockerfile.standin \
    --ignorefile docker/e2e/Dockerfile.standin.dockerignore --build-arg "TRAINER_IMAGE=$TRAINER_IMAGE"
  cat >"$IMAGE_CACHE/images.env" <<ENV
PAUSE_IMAGE=$PAUSE_IMAGE
BUSYBOX_IMAGE=$BUSYBOX_BASE
PYTHON_IMAGE=$PYTHON_BASE
SIDECAR_IMAGE=$SIDECAR_IMAGE
TRAINER_IMAGE=$TRAINER_IMAGE
STANDIN_IMAGE=$STANDIN_IMAGE
ENV
  prune_stale
  log "images ready (list: $IMAGE_CACHE/images.env)"
}

# Only the current images stay in buildah's store: vfs keeps a full copy of every layer, so each source
# change would otherwise leave several GB behind.
prune_stale() {
  local keep ref
  keep="$(printf '%s\n' "$PAUSE_IMAGE" "$BUSYBOX_BASE" "$PYTHON_BASE" "$SIDECAR_IMAGE" "$TRAINER_IMAGE" "$STANDIN_IMAGE")"
  while read -r ref; do
    [[ "$ref" == "$PREFIX/"* ]] || continue
    grep -qxF -- "$ref" <<<"$keep" && continue
    if bh rmi "$ref" >/dev/null 2>&1; then log "removed stale image $ref"; else log "kept $ref (rmi refused)"; fi
  done < <(bh images --format '{{.Name}}:{{.Tag}}' 2>/dev/null)
  bh rmi --prune >/dev/null 2>&1 || true
}

# Archive format for containerd. docker-archive (`docker save`'s layout) carries uncompressed layers: no
# gzip of the 2 GB TensorFlow layers on export, no gunzip on import. oci-archive is the gzip-compressed
# alternative (buildah 1.28 compresses its layers even with --disable-compression), 3x smaller on disk.
ARCHIVE_FORMAT="${E2E_ARCHIVE_FORMAT:-docker-archive}"

export_all() { # <dir>: archives for `ctr images import`, named by image
  local dir="$1" name ref
  [[ "$ARCHIVE_FORMAT" == docker-archive || "$ARCHIVE_FORMAT" == oci-archive ]] \
    || die "E2E_ARCHIVE_FORMAT must be docker-archive or oci-archive, not $ARCHIVE_FORMAT"
  mkdir -p "$dir"
  # shellcheck disable=SC1091
  source "$IMAGE_CACHE/images.env"
  for name in PAUSE_IMAGE BUSYBOX_IMAGE SIDECAR_IMAGE TRAINER_IMAGE STANDIN_IMAGE; do
    ref="${!name}"
    local t=$SECONDS
    [[ -s "$dir/$name.tar" && "$(cat "$dir/$name.ref" 2>/dev/null)" == "$ref $ARCHIVE_FORMAT" ]] && continue
    rm -f "$dir/$name.tar"
    bh push "$ref" "$ARCHIVE_FORMAT:$dir/$name.tar:$ref" >/dev/null 2>&1 || die "export of $ref failed"
    echo "$ref $ARCHIVE_FORMAT" >"$dir/$name.ref"
    log "exported $ref ($ARCHIVE_FORMAT, $(du -m "$dir/$name.tar" | cut -f1) MB) in $((SECONDS - t))s"
  done
  cp "$IMAGE_CACHE/images.env" "$dir/images.env"
}

case "${1:-}" in
  build) build_all ;;
  refs) python_base >/dev/null 2>&1; image_refs; printf '%s\n' "$SIDECAR_IMAGE" "$TRAINER_IMAGE" "$STANDIN_IMAGE" ;;
  export) [[ $# -eq 2 ]] || die "usage: $0 export DIR"; export_all "$2" ;;
  *) die "usage: $0 build | export DIR" ;;
esac
