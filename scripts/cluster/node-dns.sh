#!/usr/bin/env bash
# The real test node's cluster DNS, for `make e2e-pods`: there is no CoreDNS here, so dnsmasq (Debian) answers
# on the node's bridge address from a hosts file that this loop rewrites from the Service list every 2 s:
# <svc>.<ns>.svc.cluster.local, <svc>.<ns>.svc and <svc>.<ns> -> ClusterIP. It forwards nothing: other names
# do not resolve. Started by node-up.sh (which records both pids); stopped by node-down.sh.
#
#   scripts/cluster/node-dns.sh sync HOSTS_FILE DNSMASQ_PIDFILE    the loop (runs until killed)
set -euo pipefail
[[ "${1:-}" == sync && $# -eq 3 ]] || { echo "usage: $0 sync HOSTS_FILE DNSMASQ_PIDFILE" >&2; exit 2; }
hosts="$2" pidfile="$3"
while :; do
  if kubectl get services -A -o jsonpath='{range .items[*]}{.spec.clusterIP} {.metadata.name} {.metadata.namespace}{"\n"}{end}' \
      >"$hosts.new" 2>/dev/null; then
    awk '$1 != "" && $1 != "None" {printf "%s %s.%s.svc.cluster.local %s.%s.svc %s.%s\n", $1, $2, $3, $2, $3, $2, $3}' \
      "$hosts.new" >"$hosts.next"
    if ! cmp -s "$hosts.next" "$hosts"; then
      mv "$hosts.next" "$hosts"
      [[ -s "$pidfile" ]] && kill -HUP "$(cat "$pidfile")" 2>/dev/null || true
    fi
  fi
  sleep 2
done
