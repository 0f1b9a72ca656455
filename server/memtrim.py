"""Give the C allocator's free pages back to the system after a large sweep.

glibc keeps the memory a process frees in its heap for the next allocation and
returns it only from the heap's top. After a burst of logins the memory broker
drops tens of thousands of keys at once; without a trim the pages they used stay
resident long after (23 of 34 MiB in a measured run, docs/benchmarks.md,
finding 19). ``malloc_trim`` hands every whole free page back.
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)


def _find_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, or None on a C library without it."""
    try:
        trim = ctypes.CDLL(None).malloc_trim  # the process's own C library
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim  # type: ignore[no-any-return]


_TRIM = _find_trim()


def release_free_memory() -> bool:
    """Return the C heap's free pages to the system; False where it cannot.

    The call walks the heap with the GIL released: run it in a worker thread so
    the event loop keeps serving meanwhile.
    """
    if _TRIM is None:
        return False
    released = bool(_TRIM(0))
    log.debug("malloc_trim released memory: %s", released)
    return True
