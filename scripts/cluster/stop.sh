#!/usr/bin/env bash
# Stop the e2e test cluster started by start.sh: every recorded process (by pid, in reverse start order),
# then delete the state directory (set E2E_KEEP_STATE=1 to keep logs and data for debugging).
set -uo pipefail
STATE="${E2E_CLUSTER_DIR:-.cache/e2e-cluster}"
log() { printf '[cluster %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
[[ -f "$STATE/pids" ]] || { log "no cluster state in $STATE"; exit 0; }
mapfile -t entries < <(tac "$STATE/pids")
for e in "${entries[@]}"; do
  read -r name pid <<<"$e"
  if kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid" 2>/dev/null && log "stopping $name (pid $pid)"; fi
done
for e in "${entries[@]}"; do
  read -r name pid <<<"$e"
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  if kill -0 "$pid" 2>/dev/null; then log "killing $name (pid $pid)"; kill -KILL "$pid" 2>/dev/null; fi
done
: >"$STATE/pids"
if [[ "${E2E_KEEP_STATE:-0}" == 1 ]]; then
  log "stopped; state kept in $STATE"
else
  rm -rf "$STATE"; log "stopped; state removed"
fi
