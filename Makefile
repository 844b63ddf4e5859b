# One entry point for developers; CI runs .ci/run (the README's test command).
UV ?= uv
# The tests, linters and benchmarks' tools are in the dependency group dev (not synced by default).
RUN = $(UV) run --group dev

.PHONY: install serve test test-fast fuzz lint format typecheck bench bench-pg all

install:
	$(UV) sync --group dev

serve:
	$(UV) run batchyard serve  # only what the service runs

test:
	$(RUN) pytest

test-fast:
	$(RUN) pytest tests/unit tests/integration tests/api

# The differential tests with FUZZ_SCALE times their examples and fresh random seeds.
FUZZ_SCALE ?= 50
fuzz:
	DIFFERENTIAL_SCALE=$(FUZZ_SCALE) $(RUN) pytest tests/differential --timeout 0 -x

lint:
	$(RUN) ruff check src tests benchmarks
	$(RUN) ruff format --check src tests benchmarks

format:
	$(RUN) ruff format src tests benchmarks
	$(RUN) ruff check --fix src tests benchmarks

typecheck:
	$(RUN) mypy

bench:
	$(RUN) python -m benchmarks.sqlite_import

bench-pg:
	$(RUN) python -m benchmarks.postgres_import --rows 5000000

all: lint typecheck test
