# One entry point for everything. `make test` on a fresh machine creates the environment itself.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

DATASET    ?= bbc-news
MODEL_NAME ?= $(if $(filter chinese-reviews,$(DATASET)),reviews,news)
MODELS     ?= models

# Area makefiles (mk/*.mk) add their own targets and may append to TEST_PREREQS.
TEST_PREREQS :=
-include mk/*.mk

.PHONY: help install test lint train run fmt clean
help: ## list targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | sort | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml requirements/lock.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=24"
	$(PY) -m pip install -q -c requirements/lock.txt -e ".[dev]"
	@touch $@

install: $(STAMP) ## create .venv and install everything (idempotent)

test: install $(TEST_PREREQS) ## the whole test suite (what CI runs)
	$(PY) -m pytest -q --ignore=tests/e2e --ignore=tests/reliability $(PYTEST_ARGS)

lint: install ## ruff + mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy contracts textvec training preprocess_service scoring local_model_server devstack bench scripts/run_local.py

fmt: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

train: install ## train DATASET (bbc-news | chinese-reviews | path) into MODELS/MODEL_NAME/<next version>
	$(PY) -m training train --dataset $(DATASET) --model-name $(MODEL_NAME) --out $(MODELS)

PORT ?= 8080
GRPC_PORT ?= 8500
REST_PORT ?= 8501
run: install ## train if needed, serve DATASET locally (model server + sidecar on 127.0.0.1), Ctrl-C stops
	@$(PY) scripts/run_local.py --dataset $(DATASET) --model-name $(MODEL_NAME) --models $(MODELS) \
		--port $(PORT) --grpc-port $(GRPC_PORT) --rest-port $(REST_PORT)

clean: ## remove build outputs (keeps .venv)
	rm -rf .pytest_cache .mypy_cache .ruff_cache out
