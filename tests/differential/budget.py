"""How many examples each differential test runs: a fixed-seed budget, or ``make fuzz``'s.

The suite runs a fixed-seed budget (derandomized: the same examples every run, about a minute
in all); ``make fuzz`` sets ``DIFFERENTIAL_SCALE`` to run that many times the examples, with
fresh random seeds each run.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

#: How many times the suite's example budget a run makes (``make fuzz`` raises it).
SCALE = int(os.environ.get("DIFFERENTIAL_SCALE", "1"))
#: Chunk size of the harnesses: tens of bytes, so that every file crosses many chunk boundaries.
CHUNK_BYTES = 64
#: On PostgreSQL each chunk is a transaction with its ledger row (~40 ms here): fewer, larger
#: chunks keep its examples affordable, still several per file.
PG_CHUNK_BYTES = 256

PROFILE = settings(
    derandomize=SCALE == 1,
    deadline=None,
    print_blob=True,
    database=None,
    # One harness (databases, storage, an event loop) serves every example of a test: each
    # example imports into a dataset of its own, so examples never see each other's rows.
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


def budget(examples: int) -> settings:
    """The settings of a test that runs ``examples`` examples in the suite."""
    return settings(PROFILE, max_examples=examples * SCALE)
