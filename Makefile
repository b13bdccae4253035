# interest-tracker: two commands on a fresh machine.
#   make demo   - set up .venv (first time) and run the whole pipeline in Spark local mode
#   make test   - set up .venv (first time) and run every test
VENV   ?= .venv
PY     := $(VENV)/bin/python
RUN_DATE ?= 2026-11-28
DEMO_DIR ?= demo_output
PYTEST_ARGS ?=

.PHONY: env demo test bench clean help

help:
	@echo "make demo | make test | make bench | make clean"

# Idempotent: each step is skipped when already done (markers inside .venv).
env:
	@scripts/bootstrap_env.sh $(VENV) --with-horovod

demo: env
	@scripts/demo.sh $(VENV) $(DEMO_DIR) $(RUN_DATE)

test: env
	$(PY) -m pytest tests $(PYTEST_ARGS)

bench: env
	@echo "see docs/benchmarks.md for the commands; each bench/ script prints its figures"

clean:
	rm -rf $(DEMO_DIR) spark-warehouse metastore_db derby.log .pytest_cache
