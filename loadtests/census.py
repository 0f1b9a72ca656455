"""What a process's live objects are: how many of each type, and where they sit.

``python -m loadtests.allocstats --census`` has the embedded server take a census at
each reading. Compared with the first, it tells what the rest of the run added (the
objects of the live window, or a queue that grows) and which small objects made
during the run still sit in stretches of the address space that held none at the
first reading: one such object is enough to keep a 1 MiB pymalloc arena resident.

Only objects the garbage collector tracks, and everything they refer to, are seen;
the server's start-up objects are frozen out of the collector, but a census is only
ever compared with another, so what both miss cancels out.
"""

from __future__ import annotations

import gc
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

SMALL = 512  # bytes: CPython's own allocator serves objects up to this size
WINDOW_BITS = 20  # 1 MiB, the size of one pymalloc arena


def type_name(obj: object) -> str:
    """module.Qualname of obj's type, read without calling anything on it."""
    kind = type(obj)
    module = kind.__dict__.get("__module__", "builtins")
    return f"{module}.{kind.__qualname__}" if isinstance(module, str) else kind.__name__


def live_objects() -> dict[int, object]:
    """Every object the collector tracks and all they refer to, by address."""
    gc.collect()
    found: dict[int, object] = {}
    frontier = gc.get_objects()
    for obj in frontier:
        found[id(obj)] = obj
    while frontier:
        reached = []
        for obj in frontier:
            for referent in gc.get_referents(obj):
                if id(referent) not in found:
                    found[id(referent)] = referent
                    reached.append(referent)
        frontier = reached
    return found


@dataclass(slots=True)
class Census:
    """Counts and bytes by type; small objects' types by 1 MiB window."""

    counts: Counter[str] = field(default_factory=Counter)
    sizes: Counter[str] = field(default_factory=Counter)
    windows: dict[int, Counter[str]] = field(default_factory=dict)


def take() -> Census:
    """A census of this process, now."""
    census = Census()
    for address, obj in live_objects().items():
        name = type_name(obj)
        try:
            size = sys.getsizeof(obj)
        except TypeError:  # a few extension types refuse
            continue
        census.counts[name] += 1
        census.sizes[name] += size
        if size <= SMALL:
            census.windows.setdefault(address >> WINDOW_BITS, Counter())[name] += 1
    return census


def compare(first: Census, later: Census, *, top: int = 8) -> dict[str, Any]:
    """What later has beyond first: the types that grew most, in bytes, and the
    small objects in windows that held no small object in first."""
    grown = sorted(
        (
            (
                later.sizes[name] - first.sizes[name],
                later.counts[name] - first.counts[name],
                name,
            )
            for name in later.sizes
        ),
        reverse=True,
    )
    new_windows = [w for w in later.windows if w not in first.windows]
    stranded: Counter[str] = Counter()
    for window in new_windows:
        stranded.update(later.windows[window])
    return {
        "grown": [[name, count, size] for size, count, name in grown[:top] if size > 0],
        "new_windows": len(new_windows),
        "stranded": sum(stranded.values()),
        "stranded_types": stranded.most_common(top),
    }
