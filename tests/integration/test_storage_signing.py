"""Signed download URLs and the server secret they are made with."""

from __future__ import annotations

import re
import stat
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from batchyard.domain.errors import InvalidSignature
from batchyard.storage.signing import UrlSigner, load_or_create_secret

BATCH = "6f1d0c2a-8d3e-4a55-9a7e-2c1f0b9d4e11"
PATH = f"/batches/{BATCH}/results"
EXPIRES = 1_900_000_000
NOW = EXPIRES - 60.0


def signed(signer: UrlSigner, expires: int = EXPIRES) -> str:
    query = parse_qs(signer.sign("GET", PATH, BATCH, expires))
    assert query["expires"] == [str(expires)]
    return query["signature"][0]


def test_a_valid_link_verifies() -> None:
    signer = UrlSigner(b"k" * 32)
    signature = signed(signer)
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", signature)  # url-safe base64, no padding
    signer.verify("GET", PATH, BATCH, EXPIRES, signature, now=NOW)


@pytest.mark.parametrize(
    ("method", "path", "batch", "expires"),
    [
        ("POST", PATH, BATCH, EXPIRES),
        ("GET", f"/batches/{BATCH}/failed-records", BATCH, EXPIRES),
        ("GET", PATH.replace(BATCH, "0" * 36), "0" * 36, EXPIRES),
        ("GET", PATH, "0" * 36, EXPIRES),
        ("GET", PATH, BATCH, EXPIRES + 3600),
    ],
    ids=["method", "path", "other-batch-and-path", "other-batch", "later-expiry"],
)
def test_an_altered_link_is_refused(method: str, path: str, batch: str, expires: int) -> None:
    signer = UrlSigner(b"k" * 32)
    with pytest.raises(InvalidSignature, match="invalid"):
        signer.verify(method, path, batch, expires, signed(signer), now=NOW)


def test_a_tampered_signature_is_refused() -> None:
    signer = UrlSigner(b"k" * 32)
    signature = signed(signer)
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    for bad in [flipped, "", signature + "A", "ünïcode"]:
        with pytest.raises(InvalidSignature):
            signer.verify("GET", PATH, BATCH, EXPIRES, bad, now=NOW)


def test_another_secret_does_not_verify() -> None:
    signature = signed(UrlSigner(b"k" * 32))
    with pytest.raises(InvalidSignature):
        UrlSigner(b"j" * 32).verify("GET", PATH, BATCH, EXPIRES, signature, now=NOW)


def test_an_expired_link_is_refused() -> None:
    signer = UrlSigner(b"k" * 32)
    signer.verify("GET", PATH, BATCH, EXPIRES, signed(signer), now=EXPIRES)
    with pytest.raises(InvalidSignature, match="expired"):
        signer.verify("GET", PATH, BATCH, EXPIRES, signed(signer), now=EXPIRES + 0.001)
    with pytest.raises(InvalidSignature, match="expired"):
        signer.verify("GET", PATH, BATCH, 1_000, signed(signer, 1_000))  # real clock


def test_secret_is_created_once_with_mode_600(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"

    first = load_or_create_secret(data_dir)
    again = load_or_create_secret(data_dir)

    assert len(first) == 32
    assert again == first
    path = data_dir / "secret-key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in data_dir.iterdir()) == ["secret-key"]


def test_a_corrupt_secret_file_is_reported(tmp_path: Path) -> None:
    (tmp_path / "secret-key").write_bytes(b"short")
    with pytest.raises(ValueError, match="corrupt"):
        load_or_create_secret(tmp_path)
