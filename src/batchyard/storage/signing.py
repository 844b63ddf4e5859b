"""Temporary signed download URLs: a result file reachable without a token until it expires."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import time
from pathlib import Path
from urllib.parse import urlencode

from batchyard.domain.errors import InvalidSignature
from batchyard.storage.private import make_private_dir

SECRET_FILE = "secret-key"  # noqa: S105 - a file name, not a secret
SECRET_BYTES = 32
#: Separates these signatures from anything else made with the same secret (token hashes).
_CONTEXT = "batchyard-download-v1"


class UrlSigner:
    """HMAC-SHA256 over method, path, batch and expiry: change any of them and the URL fails."""

    def __init__(self, secret: bytes) -> None:
        if not secret:
            raise ValueError("the signing secret must not be empty")
        self._secret = secret

    def sign(self, method: str, path: str, batch_id: str, expires_ts: int) -> str:
        """The query string ``expires=…&signature=…`` to append to ``path``."""
        signature = self._signature(method, path, batch_id, expires_ts)
        return urlencode({"expires": expires_ts, "signature": signature})

    def verify(
        self,
        method: str,
        path: str,
        batch_id: str,
        expires_ts: int,
        signature: str,
        *,
        now: float | None = None,
    ) -> None:
        """Raise InvalidSignature unless ``signature`` was made by ``sign`` and has not expired."""
        expected = self._signature(method, path, batch_id, expires_ts).encode()
        if not hmac.compare_digest(expected, signature.encode("utf-8", "replace")):
            raise InvalidSignature()
        # Checked after the signature, so only a genuine link learns that it has expired.
        if expires_ts < (time.time() if now is None else now):
            raise InvalidSignature("The download link has expired")

    def _signature(self, method: str, path: str, batch_id: str, expires_ts: int) -> str:
        # JSON keeps the fields apart: no path can be crafted to read as another batch's fields.
        message = json.dumps([_CONTEXT, method.upper(), path, batch_id, int(expires_ts)])
        digest = hmac.new(self._secret, message.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def load_or_create_secret(data_dir: Path) -> bytes:
    """The server's secret from ``<data_dir>/secret-key``, created (mode 600) on first start.

    Creation is race-free: the key is written to a private temporary file and linked into place,
    so two processes starting together end up with the same key.
    """
    path = data_dir / SECRET_FILE
    if not path.exists():
        make_private_dir(data_dir)
        _create_secret(path)
    secret = path.read_bytes()
    if len(secret) != SECRET_BYTES:
        raise ValueError(f"{path} is corrupt: expected {SECRET_BYTES} bytes, found {len(secret)}")
    return secret


def _create_secret(path: Path) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(secrets.token_bytes(SECRET_BYTES))
            file.flush()
            os.fsync(file.fileno())
        # If another process won the race, its key is the one everybody uses.
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
