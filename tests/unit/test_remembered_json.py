"""Answers of remembered status reads: encoded once per remembered value, anew for a new one."""

from __future__ import annotations

from batchyard.api.routes import remembered_json


class Encoder:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> bytes:
        self.calls += 1
        return b'{"n":%d}' % self.calls


def test_the_same_value_is_encoded_once() -> None:
    value, encode = ["snapshot"], Encoder()
    answers = [remembered_json(value, encode).body for _ in range(3)]
    assert answers == [b'{"n":1}'] * 3
    assert encode.calls == 1


def test_a_value_read_afresh_is_encoded_anew_even_when_equal() -> None:
    encode = Encoder()
    assert remembered_json(["snapshot"], encode).body == b'{"n":1}'
    assert remembered_json(["snapshot"], encode).body == b'{"n":2}'


def test_what_else_the_answer_depends_on_is_part_of_the_key() -> None:
    value, encode = ["orders"], Encoder()
    assert remembered_json(value, encode, 10).body == b'{"n":1}'
    assert remembered_json(value, encode, 11).body == b'{"n":2}'  # the row count moved
    assert remembered_json(value, encode, 11).body == b'{"n":2}'
    assert remembered_json(value, encode, 11).media_type == "application/json"
