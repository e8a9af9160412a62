# End-to-end tests of the Helm chart on a real control plane (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler built from the Go module proxy) with KWOK-simulated CPU and GPU node pools. docs/e2e.md.
.PHONY: e2e e2e-build e2e-up e2e-down

e2e: install ## chart on a real control plane + KWOK GPU/CPU pools: build (cached), start, test, stop
	bash scripts/cluster/e2e.sh $(E2E_ARGS)

e2e-build: ## build/cache kube-apiserver, controller-manager, scheduler, etcd, kwok (first run ~20-40 min)
	bash scripts/cluster/build.sh

e2e-up: ## start the e2e cluster and leave it running (source .cache/e2e-cluster/env)
	bash scripts/cluster/build.sh
	PATH="$$(bash scripts/k8s-tools.sh):$$PATH" bash scripts/cluster/start.sh

e2e-down: ## stop the cluster started by e2e-up
	bash scripts/cluster/stop.sh
