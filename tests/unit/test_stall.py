"""The stall watchdog's decision (pipeline.stall): re-read a partition only when its committed
offset has sat at or before the last read offset, with nothing in flight, for the whole window."""

from __future__ import annotations

from pipeline.stall import Progress, StallWatch

TP = ("crosswire-articles", 0)


def _run(watch: StallWatch, readings: list[tuple[float, int | None, int | None, bool, float]]) -> list[int | None]:
    return [watch.check(TP, committed=c, read=r, busy=b, idle_s=idle, now=t) for t, c, r, b, idle in readings]


def test_a_dropped_message_is_re_read_after_the_window():
    w = StallWatch(30.0)
    # offset 192 was read and dropped; 193..499 went through; nothing is in flight
    got = _run(w, [(0, 192, 499, False, 1), (10, 192, 499, False, 11), (29, 192, 499, False, 30), (31, 192, 499, False, 32)])
    assert got == [None, None, None, 192]
    # the watch starts over after a re-read
    assert _run(w, [(35, 192, 499, False, 36)]) == [None]


def test_healthy_partitions_are_left_alone():
    w = StallWatch(30.0)
    # committed runs one past the last read offset: caught up
    assert _run(w, [(t, 500, 499, False, t) for t in (0, 40, 80)]) == [None, None, None]
    # committed trails reads by one commit interval but keeps moving
    assert _run(w, [(0, 100, 130, False, 0), (20, 131, 160, False, 0), (45, 161, 190, False, 0)]) == [None, None, None]
    # nothing read yet, or nothing committed yet
    assert _run(w, [(0, None, None, False, 100), (50, None, 10, False, 100), (99, 5, None, False, 100)]) == [None, None, None]


def test_a_slow_or_busy_partition_is_not_a_stall():
    w = StallWatch(30.0)
    # a batch in flight for minutes (the search server is down, say): never re-read
    assert _run(w, [(t, 192, 223, True, t) for t in (0, 40, 120)]) == [None, None, None]
    # behind at the same offset for long, but it finished a message recently: wait
    w2 = StallWatch(30.0)
    assert _run(w2, [(0, 192, 300, False, 5), (40, 192, 300, False, 5), (80, 192, 300, False, 31)]) == [None, None, 192]
    # the window restarts when the committed offset moves
    w3 = StallWatch(30.0)
    assert _run(w3, [(0, 192, 300, False, 40), (25, 193, 300, False, 40), (50, 193, 300, False, 60), (56, 193, 300, False, 60)]) == [None, None, None, 193]


def test_forget_drops_a_revoked_partition():
    w = StallWatch(30.0)
    assert _run(w, [(0, 192, 499, False, 100)]) == [None]
    w.forget(TP)
    assert _run(w, [(40, 192, 499, False, 140)]) == [None]  # starts a fresh window


def _run_topic(watch: StallWatch, readings: list[tuple[float, int, int, float, int | None, float]]) -> list[int | None]:
    """Readings of (now, committed, read, partition idle, highest offset finished, topic idle)."""
    return [watch.check(TP, committed=c, read=r, busy=False, idle_s=idle, now=t, finished=f, topic_idle_s=ti)
            for t, c, r, idle, f, ti in readings]


def test_a_partition_queued_behind_the_others_is_not_re_read():
    # behind a backlog: offsets 1475.. of this partition wait in faust's buffer for minutes while the
    # agent finishes messages of the topic's other partitions (topic idle 0-2 s)
    w = StallWatch(30.0)
    assert _run_topic(w, [(t, 1475, 1600, t, 1474, t % 3) for t in (0, 40, 80, 160, 300)]) == [None] * 5
    # once the rest of the topic is done and the partition still does not move, it is a stall
    assert _run_topic(w, [(340, 1475, 1600, 340, 1474, 31)]) == [1475]


def test_a_gap_is_re_read_even_while_the_topic_is_busy():
    # offset 192 dropped, 193..300 finished: the partition is not waiting its turn
    w = StallWatch(30.0)
    assert _run_topic(w, [(0, 192, 300, 40, 300, 1), (31, 192, 300, 71, 300, 1)]) == [None, 192]
    # the same readings without a finished offset past 192 wait for the topic to go quiet
    w2 = StallWatch(30.0)
    assert _run_topic(w2, [(0, 192, 300, 40, 191, 1), (31, 192, 300, 71, 191, 1), (62, 192, 300, 102, 191, 30)]) == [None, None, 192]


def test_a_gap_is_re_read_even_while_the_partition_keeps_finishing_later_offsets():
    # offset 192 never processed while 193.. keep going through (partition idle 0-2 s): offsets of a
    # partition are handled in order, so this is a hole, and waiting for the stream to go quiet
    # could mean waiting for ever on a busy feed
    w = StallWatch(30.0)
    assert _run_topic(w, [(0, 192, 300, 1, 300, 1), (20, 192, 400, 0, 400, 0), (31, 192, 450, 2, 450, 0)]) == [None, None, 192]


def test_progress_counts_the_next_unfinished_offset_through_re_reads():
    p = Progress()
    assert p.next(TP) is None and p.highest(TP) is None
    for off in (10, 11, 12):
        p.finish(TP, off, committed=10)
    assert p.next(TP) == 13
    p.finish(TP, 11)  # a re-read below the account changes nothing
    assert p.next(TP) == 13
    # 13 is never processed (dropped, or committed past by faust): the account stays there
    for off in (14, 15, 16):
        p.finish(TP, off)
    assert p.next(TP) == 13 and p.highest(TP) == 16  # a hole: the watchdog's gap rule fires
    # the re-read from 13 goes through 13..16 again and on
    for off in (13, 14, 15, 16, 17):
        p.finish(TP, off)
    assert p.next(TP) == 18 and p.highest(TP) == 17  # no hole


def test_progress_sees_a_hole_at_the_start_of_an_assignment():
    p = Progress()
    p.finish(TP, 41, committed=40)  # reading started at the committed offset 40, which never came
    assert p.next(TP) == 40
    p2 = Progress()
    p2.finish(TP, 41)  # no committed offset (a new group): the account starts where reading did
    assert p2.next(TP) == 42


def test_progress_skips_offsets_the_log_does_not_hold():
    p = Progress()
    p.finish(TP, 5, committed=5)
    for off in (9, 10):  # 6..8 were compacted away, or are transaction markers
        p.finish(TP, off)
    assert p.next(TP) == 6
    assert p.skip(TP) == (6, 9)
    assert p.next(TP) == 11
    assert p.skip(TP) is None  # no hole left
    p.forget(TP)
    assert p.next(TP) is None


def test_progress_skips_only_up_to_the_first_record_the_log_holds():
    # 20 is a transaction marker, 21 a real message that was dropped, 22.. went through: the log's
    # first record at or after 20 is 21, so only 20 is skipped and 21 stays a hole to re-read
    p = Progress()
    p.finish(TP, 19, committed=19)
    for off in (22, 23):
        p.finish(TP, off)
    assert p.skip(TP, 21) == (20, 21)
    assert p.next(TP) == 21
    p.finish(TP, 21)  # the re-read delivers it
    assert p.next(TP) == 24
    assert p.skip(TP, 24) is None  # nothing below the account to skip
