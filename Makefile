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

.PHONY: install runtime run test lint typecheck pytest bench reliability clean

install: $(DEV)
runtime: $(RUNTIME)

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "mcp-working-memory needs Python 3.11 or newer; this is " + sys.version.split()[0] + " (set PYTHON=python3.11 or newer)")' >&2
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(RUNTIME): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $(RUNTIME)

$(DEV): pyproject.toml $(RUNTIME)
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(DEV)

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

test: lint typecheck pytest

bench: install
	$(BIN)/python -m benchmarks.run $(ARGS)

reliability: install
	WM_RELIABILITY=full $(BIN)/pytest -q -p no:cacheprovider tests/reliability $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage .coverage.*
