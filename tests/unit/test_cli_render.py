"""What the CLI prints for a batch, as a user sees it: signed URLs whole on a narrow terminal,
and ``--json`` timestamps in epoch seconds as the API gives them."""

from __future__ import annotations

import json
import re

import msgspec
import pytest

from batchyard.cli import render
from batchyard.client import Batch

SIGNED = "http://127.0.0.1:8000/files/" + "a1b2c3d4" * 12 + "?expires=1796150000&sig=" + "f" * 64
API_BATCH = {
    "batch": "0c455df3-c4d9-4385-8a51-cef6ba1ab092",
    "dataset": "orders",
    "operation": "insert",
    "status": "completed",
    "created_ts": 1796146765.245,
    "updated_ts": 1796146765.397,
    "started_ts": 1796146765.257,
    "completed_ts": 1796146765.397,
    "total_operations": 2000,
    "processed_operations": 2000,
    "successful_operations": 2000,
    "download": {"url": SIGNED, "failed_records_url": SIGNED + "2", "validity_ts": 1796150000.0},
}


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch):
    """stdout as an 80-column terminal, as rich detects one."""
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "80")
    render.console.cache_clear()
    yield
    render.console.cache_clear()


def test_signed_urls_are_not_broken_on_a_narrow_terminal(terminal, capsys):
    render.show_batch(msgspec.convert(API_BATCH, Batch, strict=False))
    out = re.sub(r"\x1b\[[0-9;]*m", "", capsys.readouterr().out)
    assert "completed" in out
    assert any(line.endswith(f"  {SIGNED}") for line in out.splitlines()), out
    assert any(line.endswith(f"  {SIGNED}2") for line in out.splitlines()), out


def test_json_timestamps_are_epoch_seconds_as_in_the_api(capsys):
    render.print_json([msgspec.convert(API_BATCH, Batch, strict=False)])
    printed = json.loads(capsys.readouterr().out)[0]
    assert printed["created_ts"] == pytest.approx(API_BATCH["created_ts"])
    assert printed["download"]["validity_ts"] == pytest.approx(1796150000.0)
