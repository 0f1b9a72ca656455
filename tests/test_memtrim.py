"""Giving the C heap's free pages back to the system."""

from __future__ import annotations

from loadtests.allocstats import MIB
from loadtests.allocstats import rss as resident
from server import memtrim


def test_freed_heap_pages_go_back_to_the_system() -> None:
    """Memory freed between live allocations stays resident until the trim."""
    chunks = [b"\x01" * (64 * 1024) for _ in range(1024)]  # 64 MiB, every page written
    kept = chunks[15::16]  # the last among them: free() alone cannot shrink the heap
    del chunks
    before = resident()

    assert memtrim.release_free_memory()

    assert before - resident() >= 32 * MIB
    assert len(kept) == 64
