# Yingji: two commands set up a fresh machine — `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test bench system-test-deps clean

install: $(STAMP) mapui/node_modules/.package-lock.json

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

mapui/node_modules/.package-lock.json: mapui/package.json mapui/package-lock.json
	cd mapui && npm ci --no-audit --no-fund --loglevel=error

demo: install
	$(BIN)/yingji demo

system-test-deps:
	sh scripts/test-deps.sh

test: install system-test-deps
	$(BIN)/python -m pytest

bench: install system-test-deps
	$(BIN)/python -m tests.bench

clean:
	rm -rf $(VENV) mapui/node_modules var test-artifacts
