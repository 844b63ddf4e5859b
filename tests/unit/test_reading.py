"""A batch's Reading: which input field each column reads, which columns it checks, which CSV
texts are null, and what a batch may not ask for."""

from __future__ import annotations

import pytest

from batchyard.domain.batches import BatchOptions, Operation
from batchyard.domain.errors import InvalidRequest, InvalidSchema
from batchyard.domain.reading import Reading
from batchyard.domain.schema import Dataset

CONTACTS = Dataset.from_dict(
    {
        "name": "contacts",
        "primary_key": ["id"],
        "null_markers": ["NA"],
        "columns": [
            {"name": "id", "type": "integer", "nullable": False, "from": "Contact ID"},
            {"name": "phone", "type": "string", "from": "Phone"},
            {"name": "mobile", "type": "string"},
        ],
    }
)


def test_columns_read_their_from_else_their_name():
    reading = Reading.of(CONTACTS)
    assert reading.fields == {"id": "Contact ID", "phone": "Phone", "mobile": "mobile"}
    assert reading.column_for("Phone") == CONTACTS.column("phone")
    assert reading.column_for("phone") is None  # the column's name is not its field
    assert reading.describe(CONTACTS.columns[0]) == "'id' (read from 'Contact ID')"
    assert reading.describe(CONTACTS.columns[2]) == "'mobile'"


def test_a_batch_mapping_takes_the_field_from_the_column_that_had_it():
    reading = Reading.of(CONTACTS, BatchOptions(columns={"Phone": "mobile", "ID": "id"}))
    assert reading.fields == {"id": "ID", "mobile": "Phone"}
    assert reading.field_of(CONTACTS.columns[1]) is None  # phone reads nothing in this batch
    assert reading.column_for("Phone") == CONTACTS.column("mobile")
    assert reading.column_for("Contact ID") is None


def test_a_delete_checks_its_key_only_and_still_knows_every_field():
    reading = Reading.of(CONTACTS, operation=Operation.DELETE)
    assert reading.checked == {"id"}
    assert reading.column_for("Phone") == CONTACTS.column("phone")
    assert Reading.of(CONTACTS, operation=Operation.UPSERT).checked == {"id", "phone", "mobile"}


def test_null_markers_come_from_the_batch_else_the_dataset_else_an_empty_field():
    assert Reading.of(CONTACTS).null_markers == ("NA",)
    assert Reading.of(CONTACTS, BatchOptions(null_markers=("", "-"))).null_markers == ("", "-")
    assert Reading.of(CONTACTS, BatchOptions(null_markers=())).null_markers == ()
    plain = Dataset.from_dict({"name": "p", "columns": [{"name": "a", "type": "string"}]})
    assert Reading.of(plain).null_markers == ("",)


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ({"x": "nope"}, "not a column of dataset 'contacts'"),
        ({"A": "phone", "B": "phone"}, "maps both 'A' and 'B' to column 'phone'"),
        ({"__record_number": "phone"}, "a name batchyard keeps for itself"),
        ({"": "phone"}, "1 to 1024 characters"),
    ],
)
def test_a_batch_mapping_that_cannot_apply_is_an_invalid_request(columns, message):
    with pytest.raises(InvalidRequest, match=message) as caught:
        Reading.of(CONTACTS, BatchOptions(columns=columns))
    assert type(caught.value) is InvalidRequest


def test_stored_options_round_trip_through_json():
    options = BatchOptions(columns={"Phone": "mobile"}, null_markers=("", "NA"))
    stored = options.to_json()
    assert stored["columns"] == {"Phone": "mobile"} and stored["null_markers"] == ["", "NA"]
    assert BatchOptions(**stored) == options
    assert "columns" not in BatchOptions().to_json()


def test_a_dataset_round_trips_its_mapping():
    body = CONTACTS.to_dict()
    assert body["columns"][0]["from"] == "Contact ID" and body["null_markers"] == ["NA"]
    assert Dataset.from_dict(body) == CONTACTS


@pytest.mark.parametrize(
    "column",
    [
        {"name": "a", "type": "string", "from": "x" * 1025},
        {"name": "a", "type": "string", "from": "a\0b"},
        {"name": "a", "type": "string", "from": 5},
    ],
)
def test_a_from_that_no_header_should_name_is_refused(column):
    with pytest.raises(InvalidSchema):
        Dataset.from_dict({"name": "d", "columns": [column]})
