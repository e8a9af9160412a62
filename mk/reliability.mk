# Reliability and security suite: faults, fuzzing, sustained load, security. Included by the
# root Makefile; `make test` does not collect tests/reliability, CI runs `make reliability` after it.
#   make reliability        the whole suite (~6-8 min on 2 cores, bounded in time and requests), then the
#                           figures: out/reliability.json -> docs/reliability.md (between its markers)
#   make reliability-tools  the pinned extra tools in the project venv (schemathesis, pip-audit)
# Pass pytest arguments with RELIABILITY_ARGS, e.g. RELIABILITY_ARGS='-k faults'.

RELIABILITY_PINS  := 'schemathesis==4.32.5' 'pip-audit==2.10.1'
RELIABILITY_STAMP := $(VENV)/.reliability-tools
RELIABILITY_ARGS  ?=

.PHONY: reliability reliability-tools reliability-report

$(RELIABILITY_STAMP): $(STAMP) mk/reliability.mk
	$(PY) -m pip install -q -c requirements/lock.txt $(RELIABILITY_PINS)
	@touch $@

reliability-tools: install $(RELIABILITY_STAMP) ## schemathesis and pip-audit (pinned) in the project venv

reliability: install reliability-tools k8s-tools ## faults, fuzzing, 60 s soak, security, pip-audit; figures -> docs/reliability.md
	@mkdir -p out
	@rm -f out/reliability.json
	$(PY) -m pytest -q -o addopts="-ra --strict-markers" --timeout=600 tests/reliability $(RELIABILITY_ARGS); \
	  rc=$$?; $(PY) tests/reliability/render_report.py out/reliability.json docs/reliability.md || rc=1; exit $$rc

reliability-report: ## re-render docs/reliability.md from out/reliability.json
	$(PY) tests/reliability/render_report.py out/reliability.json docs/reliability.md
