"""When the status and token caches read a hot key afresh: at half its life on a quiet server,
sooner when reads have been slow, and never so soon that a hot key is read without pause."""

from __future__ import annotations

import pytest

from batchyard.store.refresh_lead import RefreshLead


def test_fast_reads_refresh_a_value_from_half_its_life() -> None:
    lead = RefreshLead(ttl=1.0)
    lead.observe(0.01)
    assert lead.refresh_from(100.0) == pytest.approx(100.5)


def test_a_slow_read_leaves_room_for_one_as_slow_before_the_value_ages_out() -> None:
    lead = RefreshLead(ttl=1.0)
    lead.observe(0.3)  # a busy event loop: the read took 0.3 s
    assert lead.refresh_from(100.0) == pytest.approx(100.4)  # 0.6 s before it ages out


def test_however_slow_the_reads_a_value_is_read_afresh_only_after_a_tenth_of_its_life() -> None:
    lead = RefreshLead(ttl=1.0)
    lead.observe(5.0)
    assert lead.refresh_from(100.0) == pytest.approx(100.1)


def test_a_slow_spell_stops_counting_once_reads_are_fast_again() -> None:
    lead = RefreshLead(ttl=1.0)
    lead.observe(0.4)
    for _ in range(50):
        lead.observe(0.01)
    assert lead.refresh_from(100.0) == pytest.approx(100.5)
