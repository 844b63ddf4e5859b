"""How a file is read, as CLI flags and inference take it: delimiters, null markers, mappings."""

from __future__ import annotations

import io

import pytest
import typer

from batchyard.cli.reading_options import parse_delimiter, with_reading_options
from batchyard.client.infer import infer_schema
from batchyard.client.models import Column, DatasetSchema


@pytest.mark.parametrize(
    ("given", "meant"),
    [
        (",", ","),
        ("tab", "\t"),
        ("\\t", "\t"),
        ("\t", "\t"),
        ("TAB", "\t"),
        (";", ";"),
        ("pipe", "|"),
    ],
)
def test_a_delimiter_is_named_as_a_shell_makes_easy(given, meant):
    assert parse_delimiter(given) == meant


def test_an_unknown_delimiter_is_a_usage_error():
    with pytest.raises(typer.BadParameter, match="is not one of"):
        parse_delimiter("x")


def test_the_flags_win_over_the_same_keys_in_options():
    merged = with_reading_options(
        {"max_errors": 3, "delimiter": ","},
        "semicolon",
        ["", "NA"],
        ["Contact Phone Number=phone", "a=b=c"],
    )
    assert merged == {
        "max_errors": 3,
        "delimiter": ";",
        "null_markers": ["", "NA"],
        # The column is after the last "=": a field may hold one.
        "columns": {"Contact Phone Number": "phone", "a=b": "c"},
    }
    assert with_reading_options(None, None, None, None) is None
    with pytest.raises(typer.BadParameter, match="FIELD=COLUMN"):
        with_reading_options(None, None, None, ["phone"])


def test_inference_reads_a_tab_separated_sample_with_its_delimiter():
    sample = io.BytesIO(b"id\trate\n1\t2.5\n2\t3.5\n")
    schema = infer_schema(sample, "rates", delimiter="\t")
    assert [(c.name, c.type) for c in schema.columns] == [("id", "integer"), ("rate", "float")]


def test_the_sdk_writes_from_and_default_as_the_api_names_them():
    schema = DatasetSchema(
        name="c",
        columns=[Column(name="phone", type="string", from_="Contact Phone", default="-")],
    )
    assert schema.to_dict() == {
        "name": "c",
        "columns": [
            {"name": "phone", "type": "string", "from": "Contact Phone", "default": "-"},
        ],
        "primary_key": [],
    }
    assert "null_markers" not in schema.to_dict()
