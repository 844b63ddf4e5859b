"""Owner-only data files: the databases, blobs and secrets hold every user's data and tokens.

Entry points (``serve``, ``worker``, the account commands) set a private umask, so whatever the
operator's own umask, every file the process creates is 0600 and every directory 0700.
``prepare_data_dir`` makes the embedded layout private even where no entry point set the umask
(an application server importing ``create_app``).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from batchyard.settings import Settings

#: Files 0600, directories 0700.
PRIVATE_UMASK = 0o077


def use_private_umask() -> None:
    """From now on this process creates owner-only files and directories."""
    os.umask(PRIVATE_UMASK)


def make_private_dir(path: Path) -> None:
    """Create ``path`` (and missing parents) as 0700; an existing directory is left as it is."""
    if path.is_dir():
        return
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)  # mkdir's mode is filtered through the umask


def touch_private(path: Path) -> None:
    """Create an empty 0600 file unless it exists (SQLite takes an empty file as a new database,
    and gives its journal files the database file's mode)."""
    with contextlib.suppress(FileExistsError):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.fchmod(fd, 0o600)
        os.close(fd)


def prepare_data_dir(settings: Settings) -> None:
    """The data directory (0700) with the default SQLite databases and blob directory in it
    created owner-only before anything opens them."""
    data_dir = settings.data_dir
    make_private_dir(data_dir)
    if not settings.database_url:
        touch_private(data_dir / "batchyard.db")
    if not settings.resolved_target_url().startswith("postgresql") and not settings.target_url:
        touch_private(data_dir / "target.db")
    if not settings.storage_url:
        make_private_dir(data_dir / "blobs")
