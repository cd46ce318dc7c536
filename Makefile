# make run: the whole service (web + events + worker) from the Procfile, with a local
#           Redis started if none is reachable and SQLite by default; the schema is
#           upgraded first (`python -m models.migrate`, the Procfile's release step).
# make migrate: only the schema upgrade (safe to run any number of times).
# make test: the whole test suite (starts its own redis-server; PostgreSQL when reachable).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
export PORT ?= 3001
export REDIS_URL ?= redis://127.0.0.1:6379/0

.PHONY: run migrate test deps dev-deps lint bench simulator clean

deps:
	@scripts/bootstrap.sh requirements.txt

dev-deps:
	@scripts/bootstrap.sh requirements-dev.txt

run: deps migrate
	@scripts/ensure_redis.sh
	@mkdir -p recordings
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/honcho start -f Procfile web events worker

migrate: deps
	$(PY) -m models.migrate

test: dev-deps
	@scripts/ensure_test_services.sh
	$(PY) -m pytest -q $(PYTEST_ARGS)

lint: dev-deps
	$(VENV)/bin/ruff check .

# A stand-in FreeSWITCH for demos: `make simulator` in one terminal, `make run` in another.
simulator: dev-deps
	$(PY) -m tests.esl_sim --port $${FREESWITCH_PORT:-8021} --password $${FREESWITCH_PASSWORD:-ClueCon}

bench: dev-deps
	@for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf .run .pytest_cache
