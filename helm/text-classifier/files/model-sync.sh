#!/bin/sh
# Sync model versions from object storage into the pod's model volume (rclone, remote "store").
#   model-sync.sh once   sync, publish, exit non-zero unless at least one version is live (init container)
#   model-sync.sh loop   sync every SYNC_INTERVAL_SECONDS forever (sync sidecar)
# The bucket is mirrored into a staging directory; each complete version is then copied next to the
# live ones and renamed into place, so TF Serving and the sidecar never see half a version
# (ARCHITECTURE.md, contract 1). Published versions are immutable; versions deleted from the bucket
# are retired, except that the last live version is never removed.
set -eu
: "${MODEL_NAME:?}" "${MODEL_BUCKET:?}" "${MODEL_ROOT:=/models}" "${SYNC_INTERVAL_SECONDS:=60}"
SRC="store:${MODEL_BUCKET}/${MODEL_PREFIX:+${MODEL_PREFIX%/}/}${MODEL_NAME}"
STAGE="${MODEL_ROOT}/.staging/${MODEL_NAME}"
LIVE="${MODEL_ROOT}/${MODEL_NAME}"

is_version() { case "$1" in ''|*[!0-9]*) return 1 ;; *) return 0 ;; esac; }

sync_once() {
  mkdir -p "$STAGE" "$LIVE"
  rclone sync --checksum --fast-list "$SRC" "$STAGE" || return 1
  staged=0
  for dir in "$STAGE"/*; do
    v="${dir##*/}"
    is_version "$v" && [ -d "$dir" ] || continue
    [ -f "$dir/saved_model.pb" ] && [ -f "$dir/assets/vectorizer.json" ] || continue
    staged=$((staged + 1))
    [ -d "$LIVE/$v" ] && continue
    tmp="${MODEL_ROOT}/.staging/.publish-$v"
    rm -rf "$tmp"
    cp -R "$dir" "$tmp"
    mv "$tmp" "$LIVE/$v"
    echo "model-sync: published ${MODEL_NAME}/$v"
  done
  [ "$staged" -gt 0 ] || { echo "model-sync: no complete version under $SRC" >&2; return 1; }
  for dir in "$LIVE"/*; do
    v="${dir##*/}"
    is_version "$v" && [ -d "$dir" ] || continue
    if [ ! -d "$STAGE/$v" ]; then
      rm -rf "$dir"
      echo "model-sync: retired ${MODEL_NAME}/$v (deleted from the bucket)"
    fi
  done
}

case "${1:-once}" in
  once) sync_once ;;
  loop)
    while true; do
      sync_once || echo "model-sync: sync failed, keeping the live versions" >&2
      sleep "$SYNC_INTERVAL_SECONDS"
    done ;;
  *) echo "usage: $0 once|loop" >&2; exit 2 ;;
esac
