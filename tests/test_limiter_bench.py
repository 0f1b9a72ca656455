"""The rate-limit measurement behind finding 17 of docs/benchmarks.md runs."""

from __future__ import annotations

from loadtests.limiter import measure


async def test_limiter_measures_both_storages() -> None:
    rows = await measure([10, 300], hits=50)
    assert [live for live, _, _ in rows] == [10, 300]
    assert all(library > 0 and broker > 0 for _, library, broker in rows)
