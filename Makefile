# make run: the whole service (web + events + worker) from the Procfile, with a local
#           Redis started if none is reachable and SQLite by default; the schema is
#           upgraded first (`python -m models.migrate`, the Procfile's release step).
#           Ctrl-C stops the service and the Redis it started (not one already running).
# make run-real (= make run FREESWITCH_DEMO=real): the same against the real FreeSWITCH
#           of ../shared/freeswitch (FREESWITCH_DIST), started with `fs start` and its
#           settings, DEFAULT_GATEWAY=farend; stopped on exit.
# make simulator: the ESL simulator on FREESWITCH_PORT (8021), reading gateways from
#           the same FREESWITCH_GATEWAY_DIR that `make run` gives the service.
# make migrate: only the schema upgrade (safe to run any number of times).
# make test: the whole test suite (starts its own redis-server; PostgreSQL when reachable),
#           as TEST_JOBS (default 3) pytest processes at once (scripts/run_tests.py);
#           PYTEST_ARGS with a path runs one plain pytest instead.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
export PORT ?= 3001
export REDIS_URL ?= redis://127.0.0.1:6379/0
# The service's default (config.py); `make simulator` must read the folder it writes.
export FREESWITCH_GATEWAY_DIR ?= $(CURDIR)/freeswitch/conf/gateways
FREESWITCH_DEMO ?=

.PHONY: run run-real migrate test deps dev-deps lint bench simulator clean

deps:
	@scripts/bootstrap.sh requirements.txt

dev-deps:
	@scripts/bootstrap.sh requirements-dev.txt

run: deps migrate
	@FREESWITCH_DEMO="$(FREESWITCH_DEMO)" scripts/run.sh

run-real: FREESWITCH_DEMO = real
run-real: run

migrate: deps
	$(PY) -m models.migrate

test: dev-deps ts-tools
	@scripts/ensure_test_services.sh
	$(PY) scripts/run_tests.py $(PYTEST_ARGS)

lint: dev-deps
	$(VENV)/bin/ruff check .

# A stand-in FreeSWITCH for demos: `make simulator` in one terminal, `make run` in another.
simulator: dev-deps
	@mkdir -p "$(FREESWITCH_GATEWAY_DIR)"
	$(PY) -m tests.esl_sim --port $${FREESWITCH_PORT:-8021} --password $${FREESWITCH_PASSWORD:-ClueCon} \
	  --gateway-dir "$(FREESWITCH_GATEWAY_DIR)"

bench: dev-deps
	@for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf .run .pytest_cache

# The browser pages' libraries (uPlot, axe-core) from the npm versions pinned in
# web/package-lock.json, copied into web/vendor/. The copies are committed, so a clone
# with no network serves the pages as they are; run this only to change a version.
.PHONY: ts-tools
# The pinned TypeScript tools of tests/integration/test_typescript_types.py (clients/ts);
# without npm the test is skipped (outside CI) with the reason.
ts-tools:
	@if [ -x clients/ts/node_modules/.bin/tsc ]; then :; \
	elif command -v npm >/dev/null; then cd clients/ts && npm ci --no-audit --no-fund; \
	else echo "npm not found: the TypeScript contract test will be skipped"; fi

.PHONY: web-assets
web-assets:
	cd web && npm ci --no-audit --no-fund
	mkdir -p web/vendor
	cp web/node_modules/uplot/dist/uPlot.esm.js web/node_modules/uplot/dist/uPlot.min.css web/vendor/
	cp web/node_modules/uplot/LICENSE web/vendor/uPlot.LICENSE
	cp web/node_modules/axe-core/axe.min.js web/vendor/
	cp web/node_modules/axe-core/LICENSE web/vendor/axe-core.LICENSE
	# SIP.js (the browser phone, web/phone/) ships ES modules only: esbuild (pinned in
	# devDependencies) bundles them into one ES module, web/vendor/sip.min.js.
	cd web && node_modules/.bin/esbuild node_modules/sip.js/lib/index.js --bundle --format=esm \
		--minify --target=es2020 --legal-comments=none --outfile=vendor/sip.min.js
	cp web/node_modules/sip.js/LICENSE.md web/vendor/sip.js.LICENSE
