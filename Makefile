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
# make test: the whole test suite (starts its own redis-server; PostgreSQL when reachable).
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

test: dev-deps
	@scripts/ensure_test_services.sh
	$(PY) -m pytest -q $(PYTEST_ARGS)

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
