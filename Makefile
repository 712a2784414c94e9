# Two commands set up a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH_PIN := torch==2.13.0

.PHONY: install demo test lint browser bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first and pinned: an unpinned torch pulls a multi-GB CUDA build
	$(BIN)/pip install -q "$(TORCH_PIN)"
	$(BIN)/pip install -q -e ".[test,transformers]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/cimkit demo

test: $(STAMP) lint browser
	$(BIN)/python -m pytest -q -n 2 -p no:cacheprovider tests

# ruff (lint and format) on everything, mypy on src/ (configured in pyproject.toml)
lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples docs/*.py
	$(BIN)/ruff format --check src tests benchmarks examples docs/*.py
	$(BIN)/mypy

# Debian's chromium for the HTML report's browser test; where it cannot be installed the test says so and skips
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		{ apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1 || \
		  { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1; }; } ; } || \
		echo "chromium not installed: the browser test of the HTML report will be skipped"

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_crossbar.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
