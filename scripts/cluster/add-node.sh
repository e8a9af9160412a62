#!/usr/bin/env bash
# Add one simulated node (a KWOK node: no kubelet, no containers) to the running e2e cluster.
#
#   scripts/cluster/add-node.sh NAME cpu|gpu ZONE        apply it (needs KUBECONFIG and kubectl on PATH)
#   scripts/cluster/add-node.sh --print NAME cpu|gpu ZONE   only print the manifest
#
# Labels and taints follow what managed clusters and NVIDIA's GPU operator put on GPU nodes: pool labels
# (e2e.text-classifier.io/pool=cpu|gpu and GKE's cloud.google.com/gke-nodepool=cpu-pool|gpu-pool),
# nvidia.com/gpu.present=true, the GPU product and count, and a nvidia.com/gpu=present:NoSchedule taint,
# so only pods that tolerate it land there. GPU nodes have 4 nvidia.com/gpu. Every node has 16 CPUs and
# 64Gi of memory, and its InternalIP is 127.0.0.1 (the address is never contacted).
set -euo pipefail
print_only=0
if [[ "${1:-}" == "--print" ]]; then print_only=1; shift; fi
[[ $# -eq 3 ]] || { echo "usage: $0 [--print] NAME cpu|gpu ZONE" >&2; exit 2; }
name="$1" pool="$2" zone="$3"
case "$pool" in
  cpu) gpu_labels="" gpu_taint="  taints: []" gpu_res="" ;;
  gpu)
    gpu_labels=$'    nvidia.com/gpu.present: "true"\n    nvidia.com/gpu.product: NVIDIA-L4\n    nvidia.com/gpu.count: "4"'
    gpu_taint=$'  taints:\n  - key: nvidia.com/gpu\n    value: present\n    effect: NoSchedule'
    gpu_res=$'    nvidia.com/gpu: "4"' ;;
  *) echo "pool must be cpu or gpu, not '$pool'" >&2; exit 2 ;;
esac
manifest="$(cat <<YAML
apiVersion: v1
kind: Node
metadata:
  name: $name
  annotations:
    kwok.x-k8s.io/node: fake
  labels:
    kubernetes.io/arch: amd64
    kubernetes.io/os: linux
    kubernetes.io/hostname: $name
    type: kwok
    e2e.text-classifier.io/pool: $pool
    cloud.google.com/gke-nodepool: $pool-pool
    node.kubernetes.io/instance-type: e2e-$pool-16
    topology.kubernetes.io/zone: $zone
${gpu_labels}
spec:
${gpu_taint}
status:
  allocatable:
    cpu: "16"
    memory: 64Gi
    pods: "110"
${gpu_res}
  capacity:
    cpu: "16"
    memory: 64Gi
    pods: "110"
${gpu_res}
YAML
)"
if [[ $print_only -eq 1 ]]; then printf '%s\n' "$manifest"; exit 0; fi
printf '%s\n' "$manifest" | kubectl apply -f - >&2
kubectl wait --for=condition=Ready "node/$name" --timeout=60s >&2
