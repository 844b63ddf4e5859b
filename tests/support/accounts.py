"""An in-process app with one client per identity: admin, users of each role, broken tokens."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI

from batchyard.api.app import create_app
from batchyard.domain.batches import now
from batchyard.service.auth import hash_token, new_token
from batchyard.service.container import Services
from batchyard.settings import Settings
from batchyard.store import users as user_rows
from support.servers import ADMIN_TOKEN
from support.waiting import TERMINAL

TINY_CSV = b"id,email,amount,status,ts,user_id\n1,a@x.io,1.00,new,,\n2,bad,2.00,paid,,\n"
BASE_URL = "http://batchyard.test"


@dataclass
class Accounts:
    """The running app, a token-less HTTP client, and tokens by name."""

    app: FastAPI
    http: httpx.AsyncClient
    tokens: dict[str, str | None] = field(default_factory=dict)

    @property
    def services(self) -> Services:
        services: Services = self.app.state.services
        return services

    async def call(self, who: str, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send a request as ``who`` (a key of ``tokens``; a None token sends no header)."""
        token = self.tokens[who]
        headers = dict(kwargs.pop("headers", {}) or {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return await self.http.request(method, url, headers=headers, **kwargs)

    async def add_user(self, name: str, role: str) -> str:
        response = await self.call("admin", "POST", "/users", json={"name": name, "role": role})
        assert response.status_code == 201, response.text
        token = str(response.json()["token"]["token"])
        self.tokens[name] = token
        return token

    async def user_id(self, name: str) -> str:
        async with self.services.store.begin() as conn:
            user = await user_rows.require_user(conn, name)
        return user.user_id

    async def add_expired_token(self, name: str, label: str) -> None:
        token = new_token()
        async with self.services.store.begin() as conn:
            user = await user_rows.require_user(conn, name)
            await user_rows.add_token(
                conn, user.user_id, hash_token(self.services.secret, token), expires_ts=now() - 1
            )
        self.tokens[label] = token

    async def add_revoked_token(self, name: str, label: str) -> None:
        response = await self.call("admin", "POST", f"/users/{name}/tokens", json={})
        assert response.status_code == 201, response.text
        issued = response.json()
        revoke = await self.call("admin", "DELETE", f"/users/{name}/tokens/{issued['token_id']}")
        assert revoke.status_code == 204, revoke.text
        self.tokens[label] = issued["token"]

    async def upload(self, who: str, body: bytes = TINY_CSV, **params: str) -> dict[str, Any]:
        response = await self.call(
            who,
            "POST",
            "/batches",
            params={"dataset": "orders", **params},
            content=body,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert response.status_code == 202, response.text
        return dict(response.json())

    async def finished(self, who: str, batch_id: str, within: float = 60) -> dict[str, Any]:
        """Wait (as ``who``, polling with a deadline) until the batch is terminal."""
        deadline = time.monotonic() + within
        while True:
            response = await self.call(who, "GET", f"/batches/{batch_id}")
            response.raise_for_status()
            batch: dict[str, Any] = response.json()
            if batch["status"] in TERMINAL:
                return batch
            if time.monotonic() > deadline:
                raise TimeoutError(f"batch still {batch['status']} after {within}s")
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def open_accounts(settings: Settings) -> AsyncIterator[Accounts]:
    """Start the app (lifespan included) with the admin token from ``support.servers``."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
            yield Accounts(app=app, http=http, tokens={"admin": ADMIN_TOKEN, "none": None})
