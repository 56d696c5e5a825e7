# Two commands for a newcomer: `make run` and `make test`. Both set up .venv first:
# `make run` with the runtime dependencies only, `make test` with the dev tools too.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUNTIME := $(VENV)/.runtime
DEV := $(VENV)/.installed
# `make -C <checkout> run` is what a client configuration runs: make must print nothing
# on stdout, which belongs to the protocol (no "Entering directory" lines either).
MAKEFLAGS += --no-print-directory

# Environments are installed from committed lock files (requirements/*.txt, compiled
# from pyproject.toml by `make lock`), so every machine and CI get the same versions.
RUNTIME_LOCK := requirements/runtime.txt
DEV_LOCK := requirements/dev.txt
LOWEST_LOCK := requirements/lowest.txt
LOWEST := .venv-lowest
# What the lower bounds must pass: the SDK internals we rely on, every tool, the stdio
# and HTTP transports end to end, metrics and traces, and the redis-py parser internals the
# pipelined script connection uses.
LOWEST_TESTS := tests/server/test_sdk_contract.py tests/server/test_tools.py \
	tests/server/test_stdio_e2e.py tests/server/test_http_e2e.py tests/server/test_observability.py \
	tests/core/test_multiplex.py
UV_RANGE := uv>=0.9,<1

.PHONY: install runtime run test lint typecheck pytest lowest lock bench reliability clean

install: $(DEV)
runtime: $(RUNTIME)

# The version check runs before anything is created; a venv that fails half-way is
# removed, so the next run starts over instead of trusting a broken .venv.
$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "mcp-working-memory needs Python 3.11 or newer; this is " + sys.version.split()[0] + " (set PYTHON=python3.11 or newer)")' >&2
	$(PYTHON) -m venv $(VENV) && $(BIN)/pip install --quiet --upgrade pip \
		|| { rm -rf $(VENV); exit 1; }

$(RUNTIME): $(RUNTIME_LOCK) pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -r $(RUNTIME_LOCK)
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(RUNTIME)

$(DEV): $(DEV_LOCK) $(RUNTIME)
	$(BIN)/pip install --quiet -r $(DEV_LOCK)
	touch $(DEV)

# `make lock` after any change to the dependencies in pyproject.toml: the runtime set
# and the dev set (every extra) for any platform, and the lowest versions the ranges
# allow (runtime and dev tools only), on the oldest supported Python, for `make lowest`.
# uv keeps the pins an existing lock has where they still fit (no surprise upgrades;
# `rm` a lock first to upgrade it); the lowest lock is always compiled afresh.
lock: | $(BIN)/python
	$(BIN)/pip install --quiet '$(UV_RANGE)'
	rm -f $(LOWEST_LOCK)
	$(BIN)/uv pip compile --quiet --universal --custom-compile-command 'make lock' \
		pyproject.toml -o $(RUNTIME_LOCK)
	$(BIN)/uv pip compile --quiet --universal --custom-compile-command 'make lock' \
		--all-extras pyproject.toml -o $(DEV_LOCK)
	$(BIN)/uv pip compile --quiet --python-version 3.11 --resolution lowest-direct \
		--custom-compile-command 'make lock' --extra dev pyproject.toml -o $(LOWEST_LOCK)

# The lower bounds of every range, in a venv of their own kept between runs.
$(LOWEST)/.installed: $(LOWEST_LOCK) pyproject.toml $(DEV)
	rm -rf $(LOWEST)
	$(BIN)/uv venv --quiet --python $(BIN)/python $(LOWEST)
	$(BIN)/uv pip sync --quiet --python $(LOWEST)/bin/python $(LOWEST_LOCK)
	$(BIN)/uv pip install --quiet --python $(LOWEST)/bin/python --no-deps -e .
	touch $@

lowest: $(LOWEST)/.installed
	$(LOWEST)/bin/pytest -q -p no:cacheprovider $(LOWEST_TESTS)

# Set-up output goes to stderr; stdout carries only the server's protocol stream.
run:
	@$(MAKE) -s runtime >&2
	@exec $(BIN)/mcp-working-memory $(ARGS)

lint: install
	$(BIN)/ruff check memory_core mcp_server tests benchmarks
	$(BIN)/ruff format --check memory_core mcp_server tests benchmarks

typecheck: install
	$(BIN)/mypy

# Coverage covers both packages, server subprocesses included (pyproject [tool.coverage]);
# each package must hold the threshold on its own, not only the total.
COVERAGE_PACKAGES := memory_core mcp_server
COVERAGE_MIN := 90

pytest: install
	$(BIN)/pytest -q -p no:cacheprovider --cov --cov-report=term $(PYTEST_ARGS)
	@for pkg in $(COVERAGE_PACKAGES); do \
		total=$$($(BIN)/coverage report --include="$$pkg/*" --format=total --fail-under=0) || exit 1; \
		echo "$$pkg: $$total% branch coverage (minimum $(COVERAGE_MIN)%)"; \
		$(BIN)/coverage report --include="$$pkg/*" --fail-under=$(COVERAGE_MIN) \
			--format=total >/dev/null || { echo "$$pkg is below $(COVERAGE_MIN)%" >&2; exit 1; }; \
	done

test: lint typecheck pytest lowest

bench: install
	$(BIN)/python -m benchmarks.run $(ARGS)

reliability: install
	WM_RELIABILITY=full $(BIN)/pytest -q -p no:cacheprovider tests/reliability $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) $(LOWEST) .pytest_cache .mypy_cache .ruff_cache .coverage .coverage.*
