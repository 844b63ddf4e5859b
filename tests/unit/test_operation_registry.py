"""The operation seam's pure parts: per-record outcomes, settings checks and secrets, and
plugins found through real package metadata (a dist-info directory on sys.path)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from batchyard.apply.operations import NO_OUTCOME, Outcomes, split_result
from batchyard.domain.errors import InvalidOperationSettings, UnknownOperation
from batchyard.domain.outcomes import RECORD_NUMBER
from batchyard.operations.registry import REDACTED, available_operations, operation_named
from batchyard.pipeline.addresses import Reach

PUBLIC_ONLY = Reach.of(False)


def records(*numbers: int) -> pa.Table:
    return pa.table({"id": list(numbers), RECORD_NUMBER: pa.array(numbers, pa.int64())})


def test_a_record_given_no_outcome_fails_and_outputs_are_json() -> None:
    outcomes = Outcomes()
    outcomes.succeeded(1, {"a": [1, 2]})
    outcomes.failed(2, "nope", "refused")
    failures, outputs = split_result(outcomes, records(1, 2, 3))
    assert failures.select(["record_number", "code"]).to_pylist() == [
        {"record_number": 2, "code": "nope"},
        {"record_number": 3, "code": NO_OUTCOME},
    ]
    assert outputs.to_pylist() == [{"record_number": 1, "output": '{"a":[1,2]}'}]


def test_http_settings_are_checked_and_headers_are_secret() -> None:
    http = operation_named("http")
    with pytest.raises(InvalidOperationSettings, match="'url' is a required property"):
        http.check({}, PUBLIC_ONLY)
    with pytest.raises(InvalidOperationSettings, match="not a public address"):
        http.check({"url": "http://10.0.0.8/hook"}, PUBLIC_ONLY)
    with pytest.raises(InvalidOperationSettings, match="not a public address"):
        http.check({"url": "http://[::1]:8080/hook"}, PUBLIC_ONLY)
    given = {"url": "https://example.com/h", "headers": {"Authorization": "Bearer x"}}
    assert http.check(given, PUBLIC_ONLY) == given
    assert http.shown(given) == {
        "url": "https://example.com/h",
        "headers": {"Authorization": REDACTED},
    }
    with pytest.raises(UnknownOperation):
        operation_named("teleport")
    with pytest.raises(InvalidOperationSettings):
        operation_named("insert").check({"anything": 1}, PUBLIC_ONLY)


@pytest.fixture
def plugin_path(tmp_path: Path) -> Iterator[Path]:
    """A directory on sys.path holding installed-package metadata, as pip would leave it."""
    sys.path.insert(0, str(tmp_path))
    available_operations.cache_clear()
    try:
        yield tmp_path
    finally:
        sys.path.remove(str(tmp_path))
        available_operations.cache_clear()


def install(path: Path, name: str, entry_points: str, module: str | None = None) -> None:
    info = path / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[batchyard.operations]\n{entry_points}\n")
    if module is not None:
        (path / f"{name}.py").write_text(module)


def test_plugins_are_found_and_a_broken_one_is_left_out(
    plugin_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    install(
        plugin_path,
        "upper_plugin",
        "upper = upper_plugin:Upper",
        "class Upper:\n"
        "    '''Upper-case a column.'''\n"
        "    settings_schema = {'type': 'object', 'properties': {'column': {'type': 'string'}}}\n"
        "    def apply(self, records, context):\n"
        "        raise NotImplementedError\n",
    )
    install(plugin_path, "broken_plugin", "broken = no_such_module:Thing")
    install(plugin_path, "shadow_plugin", "insert = upper_plugin:Upper")
    with caplog.at_level(logging.ERROR, logger="batchyard.operations"):
        found = available_operations()
    assert found["upper"].description == "Upper-case a column."
    assert found["upper"].operation.keeps_input_order is False
    assert "broken" not in found
    assert "operation broken" in caplog.text
    assert found["insert"].writes_table  # a plugin cannot replace a built-in
