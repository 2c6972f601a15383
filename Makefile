# Two commands on a fresh machine:  `make run`  and  `make test`.
# Everything they need (Python venv, system packages for the tests) is set up here.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Two installs: `make run` needs the package only; `make test` adds the test extras
# (pytest, Playwright, moto, emulators, ruff, ...) on top.
RUN_STAMP  := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test
PYTEST_ARGS ?=

# System packages the stack runs: the encoder's default fan-out arrangement encodes with
# Debian's oggenc (vorbis-tools), as the Docker image does.
RUN_APT_PACKAGES := vorbis-tools
RUN_APT_PROBES   := /usr/bin/oggenc
# ... and those the test-suite drives for real on top: nginx (secure_link comparison),
# wrk (benchmarks), PostgreSQL (database backend), Chromium (browser e2e test),
# Redis (shared rate limits).
APT_PACKAGES := $(RUN_APT_PACKAGES) nginx-light wrk postgresql chromium redis-server
APT_PROBES   := $(RUN_APT_PROBES) /usr/sbin/nginx /usr/bin/wrk /usr/lib/postgresql /usr/bin/chromium /usr/bin/redis-server

.PHONY: run test test-fast lint deps run-deps venv test-venv clean bench help

help:
	@echo "make run    set up and serve the stack on embedded defaults"
	@echo "make test   set up and run ruff + the whole test-suite"
	@echo "make test-fast  ruff + the tests not marked slow (no e2e stack): the inner loop"
	@echo "make bench  run the benchmarks under bench/"
	@echo "make clean  remove ./data and the virtualenv"

$(RUN_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $(RUN_STAMP)

$(TEST_STAMP): $(RUN_STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(TEST_STAMP)

venv: $(RUN_STAMP)

test-venv: $(TEST_STAMP)

# Installs the packages $(1) unless every path of $(2) exists (apt-get, with sudo when not root).
define apt_install
	@missing=0; for p in $(2); do test -e $$p || missing=1; done; \
	if [ $$missing = 1 ]; then \
	  echo "installing system packages: $(1)"; \
	  if [ "$$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi; \
	  $$SUDO apt-get update -q >/dev/null && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $(1) >/dev/null; \
	fi
endef

deps:
	$(call apt_install,$(APT_PACKAGES),$(APT_PROBES))

run-deps:
	$(call apt_install,$(RUN_APT_PACKAGES),$(RUN_APT_PROBES))

lint: test-venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: test-venv deps lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The inner loop: everything but the tests marked `slow` (the end-to-end stack, process
# soak tests); `make test` still runs those too.
test-fast: test-venv deps lint
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

run: venv run-deps
	$(BIN)/python -m scripts.run_stack

bench: test-venv deps
	for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf data $(VENV)
