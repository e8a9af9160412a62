# Batch scoring benchmark: `python -m scoring` next to the in-process ceiling.
#   make bench-score   writes bench/raw/score_throughput.json (needs a version under $(MODELS)/$(BENCH_MODEL))
SCORE_BENCH_ARGS ?=

.PHONY: bench-score
bench-score: install ## batch scoring throughput vs the in-process ceiling (bench/raw/score_throughput.json)
	@test -n "$$(ls $(MODELS)/$(BENCH_MODEL) 2>/dev/null)" || $(MAKE) train DATASET=$(BENCH_DATASET)
	$(PY) -m bench.score_throughput --models $(MODELS) --model-name $(BENCH_MODEL) --dataset $(BENCH_DATASET) \
		$(SCORE_BENCH_ARGS)
