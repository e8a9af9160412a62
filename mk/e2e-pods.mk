# The chart on a REAL node (kubelet, containerd, runc, CNI, kube-proxy) beside the KWOK GPU pool, images built
# from docker/ with buildah, HTTP through Traefik. Needs root. docs/e2e.md.
.PHONY: e2e-pods e2e-pods-build

e2e-pods: install ## chart on a real kubelet/containerd node + Traefik: build (cached), start, test, tear down
	bash scripts/cluster/e2e-pods.sh $(E2E_PODS_ARGS)

e2e-pods-build: ## build/cache everything e2e-pods needs before its cluster starts (binaries, images, archives)
	bash scripts/cluster/build-all.sh

# `make test` runs without a cluster: leave the real-node tests to `make e2e-pods`.
override PYTEST_ARGS += --ignore=tests/e2e_pods
