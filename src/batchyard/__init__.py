"""batchyard: self-hosted bulk imports. ``Client`` and ``AsyncClient`` are the Python SDK.

The SDK is imported on first use only, so the server and CLI start without loading it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["AsyncClient", "Client", "__version__"]

if TYPE_CHECKING:
    from batchyard.client import AsyncClient, Client


def __getattr__(name: str) -> Any:
    if name in {"Client", "AsyncClient"}:
        from batchyard import client

        return getattr(client, name)
    raise AttributeError(f"module 'batchyard' has no attribute {name!r}")
