"""The allocator accounts behind finding 9 of docs/benchmarks.md."""

from __future__ import annotations

from pathlib import Path

from loadtests.allocstats import ROWS, malloc_stats, measure, pymalloc_stats, table


def test_this_process_allocators_are_read() -> None:
    small = pymalloc_stats()
    assert small["arena_bytes"] >= small["blocks_in_use"] > 0
    assert small["arena_bytes"] % small["arenas"] == 0  # whole arenas
    big = malloc_stats()
    assert big["malloc_in_use"] > 0
    assert big["sqlite_in_use"] >= 0


async def test_a_server_reports_its_allocators_before_and_after_flows(
    tmp_path: Path,
) -> None:
    readings = await measure(1.0, 0.0, tmp_path, first_flows=30)
    assert [moment for moment, _, _ in readings][0] == "after the first flows"
    assert len(readings) == 3
    first, after, settled = (reading for _, _, reading in readings)
    assert readings[1][1] > 30  # the load ran
    for reading in (first, after, settled):
        assert reading["rss"] > reading["blocks_in_use"] > 0
        assert reading["malloc_in_use"] > 0
    # The server opened and used its SQLite database.
    assert settled["sqlite_in_use"] > 0
    rendered = table(readings)
    assert all(label in rendered for label, _ in ROWS)


async def test_a_census_reports_what_the_flows_left(tmp_path: Path) -> None:
    readings = await measure(1.0, 0.0, tmp_path, first_flows=30, with_census=True)
    first, after, settled = (reading for _, _, reading in readings)
    assert "census" not in first  # the one the others are compared with
    for reading in (after, settled):
        assert {"grown", "new_windows", "stranded", "stranded_types"} <= set(
            reading["census"]
        )
    assert "small objects in" in table(readings)
