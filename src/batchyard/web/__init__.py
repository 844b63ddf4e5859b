"""The web dashboard: pages served by the API process itself, data fetched from the public API."""

from __future__ import annotations

from batchyard.web.pages import mount_dashboard

__all__ = ["mount_dashboard"]
