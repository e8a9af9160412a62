# Benchmark of the serving path. Included by the root Makefile.
#   make bench         the full run (~5 min on 2 cores): bench/results.json, bench/results.png, table on stdout
#   make bench-smoke   the same path in seconds, written under bench/raw/ (the recorded run is untouched)
# Both train $(BENCH_DATASET) into $(MODELS)/$(BENCH_MODEL) first when no version is there.
# Logs, the dense export and scratch files go to bench/raw/ (git-ignored).

BENCH_DATASET ?= bbc-news
BENCH_MODEL   ?= news
BENCH_ARGS    ?=

TEST_PREREQS += bench-tools

.PHONY: bench bench-smoke bench-tools

bench-tools: ## ss (iproute2): the benchmark reads per-socket bytes_sent with it
	@command -v ss >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get install -y -q iproute2 >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q iproute2 >/dev/null; }; \
	  else echo "bench-tools: 'ss' (package iproute2) is missing; install it (as root: apt-get install iproute2)"; exit 1; fi; }
	@command -v ss >/dev/null 2>&1 || { echo "bench-tools: 'ss' still missing after installing iproute2"; exit 1; }

bench: install bench-tools ## benchmark: in-process ceiling vs dense-REST baseline vs sidecar (REST/gRPC, batching on/off)
	$(PY) -m bench run --models $(MODELS) --model-name $(BENCH_MODEL) --dataset $(BENCH_DATASET) $(BENCH_ARGS)

bench-smoke: install bench-tools ## the benchmark end to end with tiny windows (seconds of load), under bench/raw/
	$(PY) -m bench run --smoke --models $(MODELS) --model-name $(BENCH_MODEL) --dataset $(BENCH_DATASET) $(BENCH_ARGS)
