#!/usr/bin/env bash
# Install the Debian packages the real test node of `make e2e-pods` needs (idempotent: apt-get runs only
# when one is missing). Needs root.
#
#   containerd, runc                 container runtime (CRI) and OCI runtime
#   containernetworking-plugins      CNI plugins: bridge, host-local, loopback, portmap
#   iptables, conntrack              kube-proxy's iptables mode
#   buildah, debootstrap             images from the repository's Dockerfiles, bases from Debian packages
#   nftables, iproute2, socat, ethtool   the bridge, port-forward and kubelet's host checks
#   dnsmasq-base                     the node's cluster DNS: Service names from a hosts file (node-up.sh)
set -euo pipefail
PACKAGES=(containerd runc containernetworking-plugins iptables conntrack buildah debootstrap nftables iproute2 socat
  ethtool openssl curl dnsmasq-base)
log() { printf '[node-deps %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f '${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then log "all installed"; exit 0; fi
[[ $(id -u) -eq 0 ]] || { log "ERROR: need root to install: ${missing[*]}"; exit 1; }
log "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The Debian package starts containerd as a system service on the default socket; the test node runs its
# own containerd with a generated config, so the packaged one stays off.
if command -v systemctl >/dev/null && systemctl is-active --quiet containerd 2>/dev/null; then
  systemctl disable --now containerd >/dev/null 2>&1 || true
fi
log "installed"
