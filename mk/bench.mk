# Benchmark of the serving path. Included by the root Makefile.
#   make bench         the full run (~5 min on 2 cores): bench/results.json, bench/results.png, table on stdout;
#                      then batch scoring next to the in-process ceiling (mk/score.mk, bench/raw/score_throughput.json),
#                      measured even when a serving target was missed; the exit status is non-zero if either failed
#   make bench-smoke   the same path in seconds, written under bench/raw/ (the recorded run is untouched)
# Both train $(BENCH_DATASET) into $(MODELS)/$(BENCH_MODEL) first when no version is there.
# Logs, the dense export and scratch files go to bench/raw/ (git-ignored).

BENCH_DATASET ?= bbc-news
BENCH_MODEL   ?= news
BENCH_ARGS    ?=

.PHONY: bench bench-smoke

bench: install ## benchmark: in-process ceiling vs dense-REST baseline vs sidecar (REST/gRPC, batching on/off), then batch scoring
	@$(PY) -m bench run --models $(MODELS) --model-name $(BENCH_MODEL) --dataset $(BENCH_DATASET) $(BENCH_ARGS); \
	  status=$$?; $(MAKE) --no-print-directory bench-score || status=1; exit $$status

bench-smoke: install ## the benchmark end to end with tiny windows (seconds of load), under bench/raw/
	$(PY) -m bench run --smoke --models $(MODELS) --model-name $(BENCH_MODEL) --dataset $(BENCH_DATASET) $(BENCH_ARGS)
