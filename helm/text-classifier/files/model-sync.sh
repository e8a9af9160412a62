#!/bin/sh
# Sync the served model versions from object storage into the pod's model volume (rclone, remote "store").
#   model-sync.sh once   sync, exit non-zero unless at least one served version is live (init container)
#   model-sync.sh loop   sync every SYNC_INTERVAL_SECONDS forever (sync sidecar)
# Only the versions TF Serving serves are copied (declared versions: MODEL_VERSIONS, the `specific`
# list; otherwise the newest MODEL_LATEST complete versions in the bucket), each straight from the
# bucket into a temporary directory next to the live ones and renamed into place, so TF Serving and
# the sidecar never see half a version. A version is complete when it has saved_model.pb and
# assets/vectorizer.json. Live versions that are no longer served are removed, except that the last
# live version is never removed while nothing replaces it.
set -eu
: "${MODEL_NAME:?}" "${MODEL_BUCKET:?}" "${MODEL_ROOT:=/models}" "${SYNC_INTERVAL_SECONDS:=60}"
: "${MODEL_LATEST:=2}" "${MODEL_VERSIONS:=}"
SRC="store:${MODEL_BUCKET}/${MODEL_PREFIX:+${MODEL_PREFIX%/}/}${MODEL_NAME}"
LIVE="${MODEL_ROOT}/${MODEL_NAME}"
TMP="${MODEL_ROOT}/.sync-tmp"

is_version() { case "$1" in ''|*[!0-9]*) return 1 ;; *) return 0 ;; esac; }

# Version directories of an `rclone lsf --dirs-only` listing (stdin), newest first.
versions_of() {
  while read -r d; do
    v="${d%/}"
    if is_version "$v"; then echo "$v"; fi
  done | sort -rn
}

complete_in_bucket() {
  rclone lsf "$SRC/$1/saved_model.pb" | grep -q . && rclone lsf "$SRC/$1/assets/vectorizer.json" | grep -q .
}

publish() {
  v="$1"
  [ -d "$LIVE/$v" ] && return 0
  rm -rf "$TMP"
  mkdir -p "$TMP"
  rclone copy --checksum "$SRC/$v" "$TMP/$v" || { rm -rf "$TMP"; return 1; }
  if [ ! -f "$TMP/$v/saved_model.pb" ] || [ ! -f "$TMP/$v/assets/vectorizer.json" ]; then
    rm -rf "$TMP"
    echo "model-sync: ${MODEL_NAME}/$v changed while copying, not published" >&2
    return 1
  fi
  mv "$TMP/$v" "$LIVE/$v"
  rm -rf "$TMP"
  echo "model-sync: published ${MODEL_NAME}/$v"
}

sync_once() {
  mkdir -p "$LIVE"
  rm -rf "$TMP"
  listing="$(rclone lsf --dirs-only "$SRC")" || return 1
  available="$(echo "$listing" | versions_of)"
  served=""
  if [ -n "$MODEL_VERSIONS" ]; then
    for v in $MODEL_VERSIONS; do
      if echo "$available" | grep -qx "$v" && complete_in_bucket "$v"; then
        publish "$v" && served="$served $v"
      else
        echo "model-sync: declared version ${MODEL_NAME}/$v is not complete in the bucket" >&2
      fi
    done
  else
    n=0
    for v in $available; do
      [ "$n" -ge "$MODEL_LATEST" ] && break
      complete_in_bucket "$v" || continue
      publish "$v" && served="$served $v" && n=$((n + 1))
    done
  fi
  [ -n "$served" ] || { echo "model-sync: no served version is complete under $SRC" >&2; return 1; }
  for dir in "$LIVE"/*; do
    v="${dir##*/}"
    is_version "$v" && [ -d "$dir" ] || continue
    case " $served " in
      *" $v "*) ;;
      *) rm -rf "$dir"; echo "model-sync: retired ${MODEL_NAME}/$v (no longer served)" ;;
    esac
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
