"""Answers of remembered status reads: encoded once per remembered value, anew for a new one."""

from __future__ import annotations

from batchyard.api import routes
from batchyard.api.routes import remembered_json

KEY = ("history", "b1")


class Encoder:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> bytes:
        self.calls += 1
        return b'{"n":%d}' % self.calls


def test_the_same_value_is_encoded_once() -> None:
    value, encode = ["snapshot"], Encoder()
    answers = [remembered_json(KEY, value, encode).body for _ in range(3)]
    assert answers == [b'{"n":1}'] * 3
    assert encode.calls == 1


def test_a_value_read_afresh_is_encoded_anew_even_when_equal() -> None:
    encode = Encoder()
    assert remembered_json(KEY, ["snapshot"], encode).body == b'{"n":1}'
    assert remembered_json(KEY, ["snapshot"], encode).body == b'{"n":2}'


def test_what_else_the_answer_depends_on_is_compared_too() -> None:
    value, encode, orders = ["orders"], Encoder(), ("dataset", "orders")
    assert remembered_json(orders, value, encode, 10).body == b'{"n":1}'
    assert remembered_json(orders, value, encode, 11).body == b'{"n":2}'  # the row count moved
    answer = remembered_json(orders, value, encode, 11)
    assert (answer.body, answer.media_type) == (b'{"n":2}', "application/json")


def test_one_answer_is_kept_per_key_however_often_its_value_is_read_afresh() -> None:
    """Polling a running batch reads its history afresh every half second: the answers kept
    must not pile up (a history can hold a long log)."""
    encode = Encoder()
    before = len(routes._encoded)
    for _ in range(5):
        remembered_json(("history", "polled"), ["snapshot"], encode)
    assert encode.calls == 5
    assert len(routes._encoded) <= before + 1
