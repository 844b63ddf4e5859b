"""schemathesis over /openapi.json of a real server: a member's and an admin's token, both backends.

Every documented operation gets generated requests; none may answer 500, every status and
content type must be one the schema documents, and every body must match its documented schema.
Bounded (a few examples per operation) so that the four runs stay well under 2 minutes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from benchmarks.datagen import ORDERS_SCHEMA
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from support.servers import ADMIN_TOKEN, BatchyardServer

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "5"))


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def fuzzed_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[BatchyardServer, dict[str, str]]]:
    """The server and a token per role: the member's requests run before the admin's."""
    data = tmp_path_factory.mktemp(f"fuzz-{request.param}") / "data"
    # URL sources may only point at this machine's loopback, which nothing else listens on.
    env = {"BATCHYARD_ALLOW_PRIVATE_SOURCES": "false"}
    if request.param == "postgresql":
        pg_url = str(request.getfixturevalue("module_pg_url"))
        env["BATCHYARD_DATABASE_URL"] = pg_url.replace("postgresql://", "postgresql+psycopg://")
    running = BatchyardServer(data, env=env).start()
    try:
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        created = httpx.post(f"{running.url}/datasets", json=ORDERS_SCHEMA, headers=admin)
        assert created.status_code == 201, created.text
        member = httpx.post(
            f"{running.url}/users", json={"name": "fuzzing_member", "role": "member"}, headers=admin
        )
        assert member.status_code == 201, member.text
        yield running, {"member": member.json()["token"]["token"], "admin": ADMIN_TOKEN}
    finally:
        running.stop()


@pytest.mark.parametrize("role", ["member", "admin"])
def test_no_server_errors_and_responses_as_documented(
    fuzzed_server: tuple[BatchyardServer, dict[str, str]], role: str
) -> None:
    server, tokens = fuzzed_server
    auth = {"Authorization": f"Bearer {tokens[role]}"}
    api_schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 20
    failures: list[str] = []
    calls = 0
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def exercise(case: schemathesis.Case) -> None:
            nonlocal calls
            calls += 1
            case.call_and_validate(headers=auth, checks=CHECKS, timeout=30)

        try:
            exercise()
        except Exception as error:  # collect every operation's failure, then report them all
            failures.append(f"{operation.label}: {error}")
    assert not failures, "\n\n".join(failures)
    assert calls > 2 * len(operations)
