"""When a remembered read is read afresh: soon enough for the new value to land before the old ages.

The status and token caches (``store.fresh``, ``store.principals``) answer a hot key from memory
and start a read of it in the background once its value is past half its life, so that no request
waits for the database. That works while a read takes less than the other half. On a busy server
it does not: every step of an asynchronous read (its start, the answer's arrival, the waiter's
wake-up) waits its turn behind the requests queued on the event loop, and with 50 clients polling
a shared 2-core machine a read measured 60 to 550 ms. The old value then aged out first, and every
request in that gap waited for the read (up to a tenth of all status requests in a run: the p99).

So the lead is half the value's life, or twice the slowest recent read if that is longer, never
more than ``_MOST`` of the life: a value keeps its bound (never served later than its life after
its read started), a quiet server reads a hot key as often as before, and a busy one starts
earlier, no more often than once per ``1 - _MOST`` of the life plus a read.
"""

from __future__ import annotations

#: The lead on a quiet server: a value is read afresh from half its life on.
_LEAST = 0.5
#: The longest lead, as a share of a value's life: a hot key is read at most once per tenth of it.
_MOST = 0.9
#: How much a slow read still counts at each later read: a slow spell stops mattering after some
#: tens of reads (seconds, for a polled key), one slow read among fast ones soon.
_DECAY = 0.9
#: A read's remembered duration times this is the lead it asks for: room for one as slow again.
_ROOM = 2.0


class RefreshLead:
    """How long before a value ages out its background read starts, from how long reads take."""

    def __init__(self, ttl: float) -> None:
        self._ttl = ttl
        self._slow = 0.0

    def observe(self, seconds: float) -> None:
        """A read (first or background) took ``seconds``, from its start to its value."""
        self._slow = max(seconds, self._slow * _DECAY)

    def refresh_from(self, started: float) -> float:
        """When a value whose read started at ``started`` is to be read afresh."""
        lead = min(max(self._ttl * _LEAST, self._slow * _ROOM), self._ttl * _MOST)
        return started + self._ttl - lead
