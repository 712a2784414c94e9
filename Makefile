# Two commands set up a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH_PIN := torch==2.13.0

.PHONY: install demo test bench clean

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

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 -p no:cacheprovider tests

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_crossbar.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
