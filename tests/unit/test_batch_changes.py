"""Transitions pushed to the listeners of this process: who is told, and who is not."""

from __future__ import annotations

from batchyard.store.changes import BatchChanges


def test_a_change_reaches_the_batchs_listeners_and_those_of_every_batch_only() -> None:
    changes, heard = BatchChanges(), []
    with (
        changes.listening("a", lambda: heard.append("a")),
        changes.listening("b", lambda: heard.append("b")),
        changes.listening_to_all(lambda: heard.append("all")),
    ):
        changes.changed("a")
        assert heard == ["a", "all"]
        heard.clear()
        changes.changed_all()  # announcements lost: everybody reads again
        assert sorted(heard) == ["a", "all", "b"]
    heard.clear()
    changes.changed("a")
    changes.changed_all()
    assert heard == []  # nobody listens after the blocks


def test_a_failing_listener_does_not_keep_the_others_from_hearing() -> None:
    changes, heard = BatchChanges(), []

    def broken() -> None:
        raise RuntimeError("listener bug")

    with changes.listening("a", broken), changes.listening("a", lambda: heard.append("a")):
        changes.changed("a")  # the writer that committed is not failed either
    assert heard == ["a"]
