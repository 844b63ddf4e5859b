"""Per-record outcomes: why a single record was not applied."""

from __future__ import annotations

import enum


class RecordErrorCode(enum.StrEnum):
    """Stable codes for a record's failure, as written in the results file."""

    #: A value is missing (null or empty) in a column declared nullable: false.
    MISSING_VALUE = "missing_value"
    #: A string column got what is not text a target stores: an object or a list, a NUL character.
    INVALID_STRING = "invalid_string"
    INVALID_INTEGER = "invalid_integer"
    INVALID_FLOAT = "invalid_float"
    INVALID_DECIMAL = "invalid_decimal"
    INVALID_BOOLEAN = "invalid_boolean"
    INVALID_DATE = "invalid_date"
    INVALID_TIMESTAMP = "invalid_timestamp"
    INVALID_UUID = "invalid_uuid"
    INVALID_JSON = "invalid_json"
    #: A string is longer than max_length.
    TOO_LONG = "too_long"
    PATTERN_MISMATCH = "pattern_mismatch"
    NOT_IN_ENUM = "not_in_enum"
    BELOW_MINIMUM = "below_minimum"
    ABOVE_MAXIMUM = "above_maximum"
    #: A CSV row with more or fewer fields than the header.
    WRONG_FIELD_COUNT = "wrong_field_count"
    #: A JSON Lines line that is not a JSON object.
    MALFORMED_RECORD = "malformed_record"
    #: Bytes that are not valid UTF-8.
    INVALID_ENCODING = "invalid_encoding"
    #: A record larger than the server accepts.
    RECORD_TOO_LARGE = "record_too_large"
    #: A field the dataset does not declare (without options.ignore_unknown_columns).
    UNKNOWN_COLUMN = "unknown_column"
    #: The target already holds a record with this primary key (insert).
    DUPLICATE_KEY = "duplicate_key"
    #: delete of a key the target does not hold.
    KEY_NOT_FOUND = "key_not_found"
    #: The target database refused the record for another reason.
    REJECTED_BY_TARGET = "rejected_by_target"
