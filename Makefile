# Qala: `make demo` runs the service on http://127.0.0.1:5000; `make test` runs ruff, mypy and pytest.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000
DEMO_FEED ?= gtfs_data/almaty

.PHONY: install node demo test test-pg lint typecheck pytest bench bench-ticketing clean chromium screenshots

$(BIN)/qala: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

# the pages' browser libraries (Leaflet) and the browser tests' axe-core come from npm, pinned by package-lock.json
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

node: node_modules/.package-lock.json

install: $(BIN)/qala node

# migrate, import the feed, simulate 2 days and train a model (first run only), then serve the web app and run the
# worker with today's simulated city streaming live; Ctrl-C stops every process (app/demo.py)
demo: install
	$(BIN)/qala demo --feed $(DEMO_FEED) --host $(HOST) --port $(PORT)

lint: install
	$(BIN)/ruff check app prediction tests bench gtfs_data migrations/env.py

typecheck: install
	$(BIN)/mypy

pytest: install
	$(BIN)/python -m pytest

test: lint typecheck pytest

# the suite on the local PostgreSQL and Redis (as CI's first pass): a fresh database $(PG_TEST_DB), Redis db 14
PG_TEST_DB ?= qala_local_test
test-pg: install
	psql -h 127.0.0.1 -U postgres -d postgres -v ON_ERROR_STOP=1 -q \
	  -c "DROP DATABASE IF EXISTS $(PG_TEST_DB) WITH (FORCE)" -c "CREATE DATABASE $(PG_TEST_DB)"
	TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/$(PG_TEST_DB) TEST_REDIS_URL=redis://127.0.0.1:6379/14 \
	  $(BIN)/python -m pytest

bench: install
	$(BIN)/python bench/gtfs_import.py

# Ticketing benchmarks (PostgreSQL from BENCH_DATABASE_URL, Redis from BENCH_REDIS_URL; see docs/ticketing.md).
# bench/faults.py restarts the local PostgreSQL server twice (FAULTS_ARGS="--pg-restarts 0" leaves it alone).
bench-ticketing: install
	$(BIN)/python bench/taps.py
	$(BIN)/python bench/taps.py --rate 500
	$(BIN)/python bench/backlog.py
	$(BIN)/python bench/faults.py $(FAULTS_ARGS)

# Browser tests and screenshots use Debian's chromium (never `playwright install`).
chromium:
	@test -x /usr/bin/chromium || apt-get install -y chromium

screenshots: install chromium
	QALA_SCREENSHOTS=docs $(BIN)/python -m pytest -q tests/test_browser_display.py tests/test_browser_rider.py \
		tests/test_browser_dashboard.py tests/test_browser_card.py tests/test_browser_pwa.py tests/test_browser_map.py \
		tests/test_search.py tests/test_browser_axe.py

clean:
	rm -rf $(VENV) instance .pytest_cache .mypy_cache .ruff_cache
