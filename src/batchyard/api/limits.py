"""Limits kept in this process's memory: requests per minute per token, and uploads per user.

They are per API process: behind N replicas a client can reach up to N times these. The quotas
that matter across replicas (unfinished batches, datasets) are counted in the metadata store by
the service layer instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterable, AsyncIterator, Iterator

from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from batchyard.domain.errors import QuotaExceeded, RateLimited
from batchyard.settings import Settings

_HOUR = 3600
_DAY_HOURS = 24


class RequestRate:
    """Requests per minute per token (a sliding window; 0 turns it off)."""

    def __init__(self, per_minute: int) -> None:
        self._item = RateLimitItemPerMinute(per_minute) if per_minute > 0 else None
        self._limiter = SlidingWindowCounterRateLimiter(MemoryStorage())

    async def check(self, token: str) -> None:
        """Count a request made with ``token``; RateLimited once it is over the limit."""
        if self._item is None:
            return
        # The token itself is a secret: key the window by its digest.
        key = hashlib.sha256(token.encode()).hexdigest()
        if await self._limiter.hit(self._item, key):
            return
        stats = await self._limiter.get_window_stats(self._item, key)
        limit = self._item.amount
        raise RateLimited(
            f"This token sent more than {limit} requests in a minute; slow down",
            retry_after=math.ceil(stats.reset_time - time.time()),
            details={"limit_per_minute": limit},
        )


class UploadMeter:
    """Concurrent uploads and uploaded bytes per rolling day, per user (0: no limit)."""

    def __init__(self, concurrent: int, bytes_per_day: int) -> None:
        self._concurrent = concurrent
        self._bytes_per_day = bytes_per_day
        self._active: Counter[str] = Counter()
        self._hourly: defaultdict[str, Counter[int]] = defaultdict(Counter)

    @contextlib.contextmanager
    def slot(self, user_id: str) -> Iterator[None]:
        """Hold one of the user's concurrent uploads for the block; QuotaExceeded if none is free.

        Also refuses at once a user whose bytes for the day are already spent.
        """
        if self._concurrent and self._active[user_id] >= self._concurrent:
            raise QuotaExceeded(
                f"You already have {self._active[user_id]} uploads in progress (the most "
                f"allowed at once); wait for one to finish",
                retry_after=5,
                details={"quota": "concurrent_uploads", "limit": self._concurrent},
            )
        self._check_bytes(user_id)
        self._active[user_id] += 1
        try:
            yield
        finally:
            self._active[user_id] -= 1
            if not self._active[user_id]:
                del self._active[user_id]

    async def metered(self, user_id: str, chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
        """``chunks``, counted against the user's bytes per day; QuotaExceeded past it."""
        async for chunk in chunks:
            self._hourly[user_id][int(time.time()) // _HOUR] += len(chunk)
            self._check_bytes(user_id)
            yield chunk

    def _check_bytes(self, user_id: str) -> None:
        if not self._bytes_per_day:
            return
        hours = self._hourly[user_id]
        oldest = int(time.time()) // _HOUR - _DAY_HOURS + 1
        for hour in [h for h in hours if h < oldest]:
            del hours[hour]
        if sum(hours.values()) <= self._bytes_per_day:
            return
        frees_at = (min(hours) + _DAY_HOURS) * _HOUR
        raise QuotaExceeded(
            f"You uploaded more than {self._bytes_per_day} bytes in the last 24 hours",
            retry_after=math.ceil(frees_at - time.time()),
            details={"quota": "upload_bytes_per_day", "limit": self._bytes_per_day},
        )


class Limits:
    """The in-process limits of one API process, built from settings."""

    def __init__(self, settings: Settings) -> None:
        self.requests = RequestRate(settings.rate_limit_per_minute)
        self.uploads = UploadMeter(
            settings.quota_concurrent_uploads, settings.quota_upload_bytes_per_day
        )
