"""Hand freed heap memory back to the operating system (glibc), so a worker's RSS follows what
it really holds.

A worker allocates and frees many small objects per batch (parsed articles, spaCy ``Doc``
objects, JSON). glibc keeps freed memory in its arenas, one per thread that ever allocated
(up to 8 per core), and returns it only from the top of a heap. After a burst (a backlog read at
full speed), RSS therefore stays at the burst's high-water mark even though the memory is free:
the process looks as if it leaked, and a memory limit or alert set on RSS misfires.

Two remedies, both no-ops where the C library is not glibc (musl, macOS):

- :func:`limit_arenas`: at most ``n`` malloc arenas (``mallopt(M_ARENA_MAX)``, the same as
  ``MALLOC_ARENA_MAX``). A worker's threads (faust's consumer, spaCy's, the executor's, the
  alert sender's) take turns under the GIL anyway, so more arenas buy nothing but fragmentation.
- :func:`trim`: ``malloc_trim(0)`` releases every free page of every arena, not only the top.
  :class:`TrimSchedule` decides when: once after each burst of work, when the worker has gone
  idle, and otherwise at most every ``interval_s`` while it is busy. A trim of a worker's heap
  takes a few milliseconds; it runs off the event loop.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

log = logging.getLogger(__name__)

#: ``M_ARENA_MAX`` from glibc's ``malloc.h``.
M_ARENA_MAX = -8


@lru_cache(maxsize=1)
def _glibc() -> Any:
    """glibc's handle, or ``None`` when the C library is another one."""
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.gnu_get_libc_version  # noqa: B018 - present in glibc only
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        libc.malloc_trim.restype = ctypes.c_int
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.mallopt.restype = ctypes.c_int
    except (OSError, AttributeError):
        return None
    return libc


def available() -> bool:
    """Whether this process runs on glibc (trimming and the arena limit work)."""
    return _glibc() is not None


def limit_arenas(n: int) -> bool:
    """Use at most ``n`` malloc arenas from now on (0 leaves glibc's default). Call it before
    threads start: arenas already made stay. Returns whether the limit was applied."""
    libc = _glibc()
    if libc is None or n <= 0:
        return False
    return bool(libc.mallopt(M_ARENA_MAX, int(n)))


def trim() -> bool:
    """Return free heap pages to the OS. Returns whether any memory was released (``False``
    also where this is not glibc)."""
    libc = _glibc()
    if libc is None:
        return False
    return bool(libc.malloc_trim(0))


@dataclass
class TrimSchedule:
    """When to trim, from a count of work done (batches handled) read at each tick.

    A trim is due when work was done since the last trim and either the count has not moved
    since the previous tick (the worker went idle after a burst: trim once, then not again until
    new work) or ``interval_s`` has passed since the last trim (steady load). ``interval_s`` 0
    turns trimming off."""

    interval_s: float
    _last_trim: float | None = None
    _trimmed_at_count: int = 0
    _last_count: int = 0

    def due(self, now: float, count: int) -> bool:
        if self.interval_s <= 0:
            return False
        if self._last_trim is None:
            self._last_trim = now
        worked = count != self._trimmed_at_count
        idle = count == self._last_count
        self._last_count = count
        if worked and (idle or now - self._last_trim >= self.interval_s):
            self._last_trim = now
            self._trimmed_at_count = count
            return True
        return False


__all__ = ["M_ARENA_MAX", "TrimSchedule", "available", "limit_arenas", "trim"]
