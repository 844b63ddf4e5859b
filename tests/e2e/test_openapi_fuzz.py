"""schemathesis over /openapi.json of a real server, with a valid admin token.

Every documented operation gets generated requests; none may answer 500, and every status must be
one the schema documents. Bounded (a few examples per operation) so it stays well under 2 minutes.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from benchmarks.datagen import ORDERS_SCHEMA
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error, status_code_conformance

from support.servers import ADMIN_TOKEN, BatchyardServer

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture(scope="module")
def fuzzed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BatchyardServer]:
    data = tmp_path_factory.mktemp("fuzz") / "data"
    # URL sources may only point at this machine's loopback, which nothing else listens on.
    running = BatchyardServer(data, env={"BATCHYARD_ALLOW_PRIVATE_SOURCES": "false"}).start()
    try:
        created = httpx.post(f"{running.url}/datasets", json=ORDERS_SCHEMA, headers=AUTH)
        assert created.status_code == 201, created.text
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def api_schema(fuzzed_server: BatchyardServer) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{fuzzed_server.url}/openapi.json")


def test_no_server_errors_and_only_documented_statuses(
    api_schema: schemathesis.BaseSchema,
) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 20
    failures: list[str] = []
    calls = 0
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=12,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def exercise(case: schemathesis.Case) -> None:
            nonlocal calls
            calls += 1
            case.call_and_validate(
                headers=AUTH, checks=[not_a_server_error, status_code_conformance], timeout=30
            )

        try:
            exercise()
        except Exception as error:  # collect every operation's failure, then report them all
            failures.append(f"{operation.label}: {error}")
    assert not failures, "\n\n".join(failures)
    assert calls > 2 * len(operations)
