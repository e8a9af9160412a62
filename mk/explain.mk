# Latency of `explain: true` against plain classify at concurrency 8 (bench/explain_latency.py).
# `make bench` runs it first; `make bench-explain` alone takes about half a minute.
EXPLAIN_DATASET ?= $(BENCH_DATASET)
EXPLAIN_MODEL   ?= $(BENCH_MODEL)
EXPLAIN_TRANSPORT ?= rest

.PHONY: bench-explain
bench: bench-explain

bench-explain: install ## explain p99 vs plain classify p99 at concurrency 8 (bench/raw/explain-<dataset>.json)
	$(PY) -m bench.explain_latency --models $(MODELS) --model-name $(EXPLAIN_MODEL) --dataset $(EXPLAIN_DATASET) \
		--transport $(EXPLAIN_TRANSPORT) --out bench/raw/explain-$(EXPLAIN_DATASET)-$(EXPLAIN_TRANSPORT).json
