# Two commands set everything up on a fresh machine with Python ≥ 3.11, make and git:
#   make run   — create .venv, install fleetwave, migrate, serve on 127.0.0.1:3001 (SQLite in ./var)
#   make test  — create .venv, install fleetwave with its test tools, run the whole suite
#   make demo  — a server, 50 simulated devices and a staged rollout with rollbacks, live

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: install run demo test lint check clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

run: install
	$(BIN)/fleetwave migrate
	$(BIN)/fleetwave serve --no-migrate

demo: install
	$(BIN)/fleetwave demo

# two tests at a time, a file's tests on one worker; solo tests alone (tests/turns.py)
TEST_WORKERS ?= 2

test: install
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check $(wildcard src tests bench)
	$(BIN)/ruff format --check $(wildcard src tests bench)
	$(BIN)/mypy
	$(BIN)/lint-imports

check: lint test

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
