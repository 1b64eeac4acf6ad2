"""The services' proposals cache: bounded in size (least recently used leaves first) and in age."""

from __future__ import annotations

import pytest

from daas_services.hub_users import ExpiringLRU


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_least_recently_used_entry_leaves_when_full() -> None:
    cache: ExpiringLRU[str] = ExpiringLRU(max_entries=2, max_age=60, clock=Clock())
    cache.put("alice", "a")
    cache.put("bob", "b")
    assert cache.get("alice") == "a"  # alice is now the more recently used
    cache.put("carol", "c")
    assert len(cache) == 2
    assert (cache.get("alice"), cache.get("bob"), cache.get("carol")) == ("a", None, "c")


def test_many_callers_never_grow_it_beyond_its_bound() -> None:
    cache: ExpiringLRU[int] = ExpiringLRU(max_entries=100, max_age=60, clock=Clock())
    for number in range(10_000):
        cache.put(f"user{number}", number)
    assert len(cache) == 100
    assert cache.get("user9999") == 9999 and cache.get("user0") is None


def test_entries_expire_after_max_age() -> None:
    clock = Clock()
    cache: ExpiringLRU[str] = ExpiringLRU(max_entries=10, max_age=30, clock=clock)
    cache.put("alice", "a")
    clock.now = 29.9
    assert cache.get("alice") == "a"  # reading does not extend its life
    clock.now = 30.0
    assert cache.get("alice") is None
    assert len(cache) == 0
    cache.put("alice", "a2")
    assert cache.get("alice") == "a2"


def test_a_cache_holds_at_least_one_entry() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ExpiringLRU(max_entries=0, max_age=30)
