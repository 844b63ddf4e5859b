# One entry point for developers; CI runs .ci/run (the README's test command).
UV ?= uv

.PHONY: install serve test test-fast fuzz lint format typecheck bench bench-pg all

install:
	$(UV) sync

serve:
	$(UV) run batchyard serve

test:
	$(UV) run pytest

test-fast:
	$(UV) run pytest tests/unit tests/integration tests/api

# The differential tests with FUZZ_SCALE times their examples and fresh random seeds.
FUZZ_SCALE ?= 50
fuzz:
	DIFFERENTIAL_SCALE=$(FUZZ_SCALE) $(UV) run pytest tests/differential --timeout 0 -x

lint:
	$(UV) run ruff check src tests benchmarks
	$(UV) run ruff format --check src tests benchmarks

format:
	$(UV) run ruff format src tests benchmarks
	$(UV) run ruff check --fix src tests benchmarks

typecheck:
	$(UV) run mypy

bench:
	$(UV) run python -m benchmarks.sqlite_import

bench-pg:
	$(UV) run python -m benchmarks.postgres_import --rows 5000000

all: lint typecheck test
