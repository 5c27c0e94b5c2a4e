# Two commands on a bare machine with Python 3.11: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1:8000
# Bytecode is cached even where the environment turns it off: each test process, and each server
# or worker the tests and the benchmark start, would otherwise compile the project again.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: run worker beat test lint security bench profile schema lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-tools.txt

# Stamp files: reinstall only when a requirements file changes. Every package, direct or not, is
# pinned with its hashes (requirements*.txt, compiled from requirements*.in by `make lock`); uv
# installs them (requirements-tools.txt), several times faster than pip. Unlike pip, uv leaves
# the bytecode to the first import unless told: compiled here, every process the tests start
# (servers, workers) imports Django and the rest without compiling them again.
INSTALL = $(BIN)/uv pip install --quiet --python $(BIN)/python --require-hashes --compile-bytecode
$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(INSTALL) -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(INSTALL) -r requirements-dev.txt
	touch $@ $(VENV)/.runtime

# After editing requirements.in or requirements-dev.in: pin every dependency with its hashes.
PIP_COMPILE = $(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
	--no-emit-index-url --no-emit-find-links
lock: $(VENV)/.dev
	$(PIP_COMPILE) --output-file requirements-tools.txt requirements-tools.in
	$(PIP_COMPILE) --output-file requirements.txt requirements.in
	$(PIP_COMPILE) --output-file requirements-dev.txt requirements-dev.in

# The embedded default's files live in var/ (SQLite, media, static files, beat's schedule), with
# a development secret key that survives restarts. The settings never write to disk themselves.
var/dev_secret_key:
	mkdir -p var/staticfiles
	$(PYTHON) -c "import secrets; print(secrets.token_urlsafe(64))" > $@

run: $(VENV)/.runtime var/dev_secret_key
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	$(BIN)/python manage.py runserver $(HOST)

# Background work, with a broker configured (CELERY_BROKER_URL or REDIS_URL); without one, tasks
# run inside `make run` itself and these refuse to start.
worker: $(VENV)/.runtime var/dev_secret_key
	$(BIN)/celery -A pms worker --concurrency 2

beat: $(VENV)/.runtime var/dev_secret_key
	$(BIN)/celery -A pms beat

# One test process per core (pytest-xdist), handed tests two at a time in their order, the slow
# ones first (tests/conftest.py); PYTEST_ARGS= runs them in this process instead.
PYTEST_ARGS ?= -n auto --maxschedchunk=2
test: $(VENV)/.dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

# Static security analysis of the app code: any high-severity finding fails.
security: $(VENV)/.dev
	$(BIN)/bandit -r accounts audit document otp patient pms --exclude '*/migrations/*' --severity-level high --quiet

schema: $(VENV)/.dev
	$(BIN)/python manage.py spectacular --validate --fail-on-warn --file var/openapi.yaml

# Load and scale benchmark against PostgreSQL (BENCH_DATABASE_URL, default
# postgres://postgres@127.0.0.1:5432/pms_bench): BENCH_SCALE=1.0 is 1M patients, BENCH_SECONDS
# the open-loop time per workload. Writes bench/report.md and bench/report.json.
BENCH_SCALE ?= 1.0
BENCH_SECONDS ?= 30
bench: $(VENV)/.dev
	$(BIN)/python -m bench.run --scale $(BENCH_SCALE) --seconds $(BENCH_SECONDS)

# Time per request by layer (middleware, authentication, ORM, database, audit...) for W1 and W5,
# in-process against the bench database (bench/profile.py).
profile: $(VENV)/.dev
	$(BIN)/python -m bench.profile --scale $(BENCH_SCALE)

clean:
	rm -rf $(VENV) var/db.sqlite3
