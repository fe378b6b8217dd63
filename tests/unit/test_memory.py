"""Heap trimming (pipeline.memory): when it is due, and that it really returns memory on glibc."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from pipeline import memory
from pipeline.memory import TrimSchedule


def test_idle_after_a_burst_trims_once() -> None:
    t = TrimSchedule(interval_s=60)
    assert not t.due(0.0, 0)  # nothing done yet
    assert not t.due(5.0, 10)  # busy: the count moved since the last tick
    assert t.due(10.0, 10)  # went idle after work: trim
    assert not t.due(15.0, 10)  # still idle: nothing new to give back
    assert not t.due(600.0, 10)


def test_steady_load_trims_at_most_every_interval() -> None:
    t = TrimSchedule(interval_s=60)
    count, due_at = 0, []
    for tick in range(0, 300, 5):  # a batch between every two ticks for five minutes
        count += 1
        if t.due(float(tick), count):
            due_at.append(tick)
    assert due_at == [60, 120, 180, 240]


def test_zero_interval_turns_it_off() -> None:
    t = TrimSchedule(interval_s=0)
    assert not any(t.due(float(s), n) for s, n in [(0, 0), (5, 3), (10, 3), (100, 3)])


@pytest.mark.skipif(not memory.available(), reason="malloc_trim is glibc's")
def test_trim_returns_freed_heap_to_the_os() -> None:
    # In a child process: free 200 MB of heap blocks below a still-live block (so the heap's top
    # cannot shrink), then compare RSS before and after trim().
    code = textwrap.dedent(
        """
        import os
        from pipeline.memory import trim

        def rss():
            with open("/proc/self/statm") as fh:
                return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

        blocks = [bytes(2000) for _ in range(100_000)]  # 2 KB each: malloc's heap, not pymalloc or mmap
        pin = bytes(2000)
        del blocks
        before = rss()
        trimmed = trim()
        after = rss()
        print(trimmed, before, after, len(pin))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    trimmed, before, after = out[0] == "True", int(out[1]), int(out[2])
    assert trimmed
    assert before - after > 100 * 2**20, (before, after)


@pytest.mark.skipif(not memory.available(), reason="mallopt(M_ARENA_MAX) is glibc's")
def test_arena_limit() -> None:
    assert memory.limit_arenas(0) is False  # 0 keeps glibc's default
    code = "from pipeline.memory import limit_arenas; print(limit_arenas(2))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "True"
