#!/usr/bin/env bash
# Stop the real test node started by node-up.sh and put the host back as it was: pods' containers, Traefik,
# kube-proxy, kubelet, containerd (by recorded pid), kubelet's mounts, pod network namespaces, the bridge,
# the iptables rules (restored from the copy node-up.sh saved) and the two sysctls. Keeps logs in
# $NODE_STATE/logs (the caller copies them on failure). Safe to run twice.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=node-env.sh
source "$here/node-env.sh"
log() { printf '[node %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
ctr_() { ctr --address "$CONTAINERD_SOCK" -n k8s.io "$@"; }
pidof_() { awk -v n="$1" '$1 == n {print $2}' "$NODE_STATE/pids" 2>/dev/null | tail -1; }
stop_pid() { # <name>
  local pid; pid="$(pidof_ "$1")"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null; log "stopping $1 (pid $pid)"
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.25; done
  kill -KILL "$pid" 2>/dev/null; log "killed $1 (pid $pid)"
}

[[ -d "$NODE_STATE" ]] || { log "no node state in $NODE_STATE"; exit 0; }
stop_pid traefik
stop_pid dns-sync
stop_pid dnsmasq
stop_pid kube-proxy
stop_pid kubelet

# Every container of the node: kill its task (the shims outlive containerd), then remove it with its snapshot.
if [[ -S "$CONTAINERD_SOCK" ]]; then
  for id in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks kill -s SIGKILL "$id" >/dev/null 2>&1; done
  sleep 1
  for id in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks delete -f "$id" >/dev/null 2>&1; done
  for id in $(ctr_ containers ls -q 2>/dev/null); do ctr_ containers delete "$id" >/dev/null 2>&1; done
fi
stop_pid containerd
# Shims whose containerd is gone (started with this node's socket path on their command line).
for pid in $(pgrep -f "containerd-shim-runc-v2 .*-address $CONTAINERD_SOCK" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done

# Mounts left by kubelet (secret/projected volumes), containerd (sandbox shm, rootfs) and CNI (netns).
for root in "$KUBELET_ROOT" "$NODE_RUN" "$CONTAINERD_ROOT"; do
  awk -v r="$root" 'index($2, r) == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
done
for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep '^cni-'); do ip netns delete "$ns" 2>/dev/null; done
rm -rf "$KUBELET_ROOT" "$NODE_RUN"

ip link show "$BRIDGE" >/dev/null 2>&1 && { ip link delete "$BRIDGE"; log "bridge $BRIDGE deleted"; }
ip route del "$SERVICE_CIDR" 2>/dev/null
# Replace kube-proxy's, kubelet's, CNI's and the guard's rules with the host's rules from before node-up.
for v in iptables ip6tables; do
  [[ -f "$NODE_STATE/$v.before" ]] || continue
  for t in nat filter mangle; do "$v" -t "$t" -F 2>/dev/null; "$v" -t "$t" -X 2>/dev/null; done
  "$v-restore" <"$NODE_STATE/$v.before" && log "$v restored"
done
if [[ -s "$NODE_STATE/sysctl.before" ]]; then
  { read -r fwd; read -r brnf; } <"$NODE_STATE/sysctl.before"
  echo "$fwd" >/proc/sys/net/ipv4/ip_forward; echo "$brnf" >/proc/sys/net/bridge/bridge-nf-call-iptables
fi
# kubelet's cgroups (cgroup v1: one kubepods tree per controller), deepest first.
for c in /sys/fs/cgroup/*/kubepods; do
  [[ -d "$c" ]] && find "$c" -depth -type d -exec rmdir {} + 2>/dev/null
done
: >"$NODE_STATE/pids"
log "node down"
