# ccphost: `make run` serves the demo, `make test` runs every test. See README.md.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
CRM_PORT ?= 8001
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
STREAMS_VERSION := 2.28.2
STREAMS := tests/browser/vendor/node_modules/amazon-connect-streams/release/connect-streams.js
# Scale-out services of this machine, used by the second test pass and run-scaled.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/ccphost
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15

.PHONY: saml-deps run run-scaled bench bench-quick test test-embedded test-scaled lint format deps test-deps check-deploy clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.deps: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

deps: $(VENV)/.deps

# Debian's xmlsec1, which verifies SAML signatures.
saml-deps:
	@command -v xmlsec1 >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq xmlsec1; }

# Debian's Chromium (never a downloaded browser) and the official Streams library from npm.
test-deps: deps saml-deps
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }
	@[ -f $(STREAMS) ] || npm install --silent --no-audit --no-fund --prefix tests/browser/vendor amazon-connect-streams@$(STREAMS_VERSION)

# ccphost on PORT, and the sample CRM (examples/crm) on CRM_PORT, an origin the demo approves.
run: deps saml-deps
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py demo
	@echo "Sample CRM: http://$(HOST):$(CRM_PORT)/"
	$(BIN)/python -m http.server $(CRM_PORT) --bind $(HOST) --directory examples/crm >/dev/null 2>&1 & \
	trap 'kill $$! 2>/dev/null' EXIT INT TERM; \
	$(BIN)/python -m ccphost.serve --host $(HOST) --port $(PORT)

# Scale-out on this machine: PostgreSQL + Redis + WORKERS uvicorn processes behind one port.
WORKERS ?= 2
SCALED_ENV := DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=redis://127.0.0.1:6379/0
run-scaled: deps
	$(SCALED_ENV) $(BIN)/python tools/ensure_database.py
	$(SCALED_ENV) $(BIN)/python manage.py migrate --noinput
	$(SCALED_ENV) $(BIN)/python manage.py demo
	$(SCALED_ENV) $(BIN)/python -m ccphost.serve --host $(HOST) --port $(PORT) --workers $(WORKERS) --no-access-log

test: test-deps
	$(MAKE) test-embedded
	$(MAKE) test-scaled

# The default configuration: SQLite and the embedded channel layer.
test-embedded:
	env -u DATABASE_URL -u REDIS_URL $(BIN)/pytest -q $(PYTEST_ARGS)

# PostgreSQL and Redis, when this machine runs them (always in CI).
test-scaled:
	@if $(BIN)/python -c "import socket; [socket.create_connection(('127.0.0.1', p), 1).close() for p in (5432, 6379)]" 2>/dev/null; then \
		DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(BIN)/pytest -q -m "not browser" $(PYTEST_ARGS); \
	elif [ -n "$$CI" ]; then echo "CI needs PostgreSQL on 5432 and Redis on 6379" >&2; exit 1; \
	else echo "PostgreSQL/Redis not running here: scale-out tests skipped"; fi

# The benchmark (bench/run.py): both modes, full size; BENCH_ARGS=--quick for seconds.
# Chromium (test-deps) measures the time to ring in a host page.
bench: test-deps
	$(BIN)/python -m bench.run --mode embedded $(BENCH_ARGS)
	$(SCALED_ENV) $(BIN)/python tools/ensure_database.py
	$(BIN)/python -m bench.run --mode scaled --workers 2 $(BENCH_ARGS)

bench-quick:
	$(MAKE) bench BENCH_ARGS=--quick

lint: deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy ccphost integrations bench

format: deps
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

check-deploy: deps
	DEBUG=0 SECRET_KEY=check-deploy-$$(head -c 32 /dev/urandom | base64 | tr -dc a-zA-Z0-9) \
		SITE_URL=https://ccp.example.com $(BIN)/python manage.py check --deploy --fail-level WARNING

clean:
	rm -rf $(VENV) var staticfiles tests/browser/vendor test-artifacts
