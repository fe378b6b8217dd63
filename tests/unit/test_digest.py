"""Digests: the window arithmetic and "what changed" as values, then the outbox end to end against
the embedded search server and local stand-ins for a Slack webhook and the Web API: held updates go
out as one digest at the window's end, exactly once, across crashes and replays."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from hypothesis import given, settings as hsettings
from hypothesis import strategies as st
from osmem_server import OsmemServer
from pydantic import SecretStr
from rich.console import Console

from pipeline import notify
from pipeline.alert import AlertMessage, StdoutAlerter, build_digest_blocks, make_alerter
from pipeline.digest import Digest, baseline_versions, build_digest, digest_id, side_changes, sources, window_of
from pipeline.metrics import Metrics
from pipeline.notify import alert_id, deliver, retry_due
from pipeline.search import ensure_templates, make_client
from pipeline.settings import Settings
from pipeline.types import Contradiction, Interval, Side, SideReport
from tests.unit.test_alert import _check_block_kit
from tests.unit.test_notify import FakeSlackAPI

T0 = datetime(2020, 6, 26, 8, 0, tzinfo=UTC)  # a window boundary for windows that divide a day
WINDOW = 600.0


def _side(value: str, *outlets: str) -> Side:
    return Side(value=value, interval=Interval(lo=float(value), hi=float(value)), articles=tuple(f"a-{o}" for o in outlets),
                outlets=outlets, quotes=(f"{value} were held.",))


def _c(version: int, *sides: tuple[str, tuple[str, ...]], cid: str = "c1", story: str = "s1") -> Contradiction:
    return Contradiction(id=cid, story=story, kind="numeric", about=f"detained:people@{cid}",
                         sides=tuple(_side(v, *o) for v, o in sides), version=version, first_seen=T0, last_seen=T0)


# ----------------------------------------------------------------------------------------- values


@given(st.integers(min_value=0, max_value=4_000_000_000), st.sampled_from([1.0, 60.0, 600.0, 3600.0, 86400.0, 0.5]))
def test_window_holds_its_instant_and_is_epoch_aligned(seconds: int, window_s: float) -> None:
    at = datetime.fromtimestamp(seconds, UTC) + timedelta(microseconds=seconds % 997)
    start, end = window_of(at, window_s)
    assert start <= at < end and (end - start).total_seconds() == window_s
    assert (start.timestamp() / window_s) == pytest.approx(round(start.timestamp() / window_s))
    # every instant of the window maps to the same window, so every worker agrees on the digest id
    assert window_of(start, window_s) == (start, end) and window_of(end - timedelta(microseconds=1), window_s) == (start, end)
    assert window_of(end, window_s)[0] == end


def test_window_rejects_a_zero_length() -> None:
    with pytest.raises(ValueError):
        window_of(T0, 0)


def test_naive_times_are_utc() -> None:
    assert window_of(T0.replace(tzinfo=None), WINDOW) == window_of(T0, WINDOW)


def test_digest_id_is_per_story_and_window() -> None:
    start, _ = window_of(T0 + timedelta(seconds=5), WINDOW)
    assert digest_id("s1", start) == digest_id("s1", window_of(T0 + timedelta(seconds=599), WINDOW)[0])
    assert digest_id("s1", start) != digest_id("s2", start)
    assert digest_id("s1", start) != digest_id("s1", window_of(T0 + timedelta(seconds=600), WINDOW)[0])


def test_side_changes_name_new_values_and_added_sources() -> None:
    before = _c(2, ("14", ("Reuters",)), ("19", ("AP",)))
    after = _c(4, ("14", ("Reuters", "BBC")), ("19", ("AP",)), ("23", ("AFP", "DPA")))
    changes = side_changes(before, after)
    assert [(ch.value, ch.new, ch.sources) for ch in changes] == [("14", False, ("BBC",)), ("23", True, ("AFP", "DPA"))]
    assert side_changes(after, after) == ()
    assert all(ch.new for ch in side_changes(None, after)) and len(side_changes(None, after)) == 3


def test_sources_keep_outlet_and_attribution_together() -> None:
    side = Side(value="19", articles=("a1", "a2"), reports=(
        SideReport(article="a1", outlet="Reuters", attributed_to="a police official", quote="q"),
        SideReport(article="a2", quote="q2"),
    ))
    assert sources(side) == ("Reuters (a police official)", "a2")


values = st.sampled_from(["1", "2", "3", "5", "8", "13"])
outlet_sets = st.lists(st.sampled_from(["Reuters", "AP", "AFP", "BBC", "DPA"]), min_size=1, max_size=3, unique=True)
side_lists = st.lists(st.tuples(values, outlet_sets), min_size=1, max_size=5, unique_by=lambda t: t[0])


@given(side_lists, side_lists)
def test_side_changes_report_exactly_what_is_new(before_sides: list, after_sides: list) -> None:
    before = _c(1, *[(v, tuple(o)) for v, o in before_sides])
    after = _c(2, *[(v, tuple(o)) for v, o in after_sides])
    changes = {ch.value: ch for ch in side_changes(before, after)}
    old = {v: set(o) for v, o in before_sides}
    for v, outlets in after_sides:
        gained = [o for o in outlets if o not in old.get(v, set())]
        if v not in old:
            assert changes[v].new and list(changes[v].sources) == list(outlets)
        elif gained:
            assert not changes[v].new and list(changes[v].sources) == gained
        else:
            assert v not in changes


@given(st.permutations([("al-1", 3), ("al-2", 4), ("al-3", 5), ("al-4", 2)]))
def test_digest_is_the_same_whatever_order_its_updates_come_in(order: list[tuple[str, int]]) -> None:
    held = [(aid, _c(v, ("1", ("A",)), ("2", ("B",)), cid="c1" if v != 2 else "c0")) for aid, v in order]
    d = build_digest("d", "s1", "Raid", (T0, T0 + timedelta(seconds=WINDOW)), held, {"c1": _c(2, ("1", ("A",)))})
    assert [e.contradiction.id for e in d.entries] == ["c0", "c1"]
    c1 = d.entries[1]
    assert c1.contradiction.version == 5 and c1.from_version == 2 and c1.alert_ids == ("al-1", "al-2", "al-3")
    assert d.entries[0].from_version == 1  # no announced version known: the one before the first held
    assert d.alert_ids == {"al-1", "al-2", "al-3", "al-4"} and d.updates == 4
    assert Digest.model_validate_json(d.model_dump_json()) == d


def test_baseline_is_the_version_before_the_first_held_one() -> None:
    assert baseline_versions([_c(5), _c(3), _c(4), _c(2, cid="c2")]) == {"c1": 2, "c2": 1}


def _digest(n_entries: int, n_sides: int = 3, outlets: int = 2) -> Digest:
    held = []
    for i in range(n_entries):
        sides = [(str(10 + j), tuple(f"Outlet {k} " + "x" * 40 for k in range(outlets))) for j in range(n_sides)]
        held.append((f"al-{i}", _c(3, *sides, cid=f"c{i:03d}")))
    return build_digest("d", "s1", "Raid on militia HQ", (T0, T0 + timedelta(seconds=WINDOW)), held, {})


@hsettings(max_examples=25, deadline=None)
@given(st.integers(1, 80), st.integers(1, 60), st.integers(1, 12))
def test_digest_blocks_are_always_valid(n_entries: int, n_sides: int, outlets: int) -> None:
    payload = build_digest_blocks(_digest(n_entries, n_sides, outlets))
    _check_block_kit(payload)
    text = json.dumps(payload, ensure_ascii=False)
    assert "Raid on militia HQ" in text and f"{n_entries} contradiction" in text


def test_digest_blocks_say_what_changed() -> None:
    held = [("al-1", _c(3, ("14", ("Reuters", "BBC")), ("19", ("AP",)), ("23", ("AFP",))))]
    d = build_digest("d", "s1", "Raid", (T0, T0 + timedelta(seconds=WINDOW)), held, {"c1": _c(2, ("14", ("Reuters",)), ("19", ("AP",)))})
    text = json.dumps(build_digest_blocks(d), ensure_ascii=False)
    assert "new value *23* — AFP" in text and "*14* now also from BBC" in text and "version 2 → 3" in text
    assert "14 vs 19 vs 23" in text


def test_stdout_prints_a_digest() -> None:
    buf = io.StringIO()
    d = _digest(2)
    result = StdoutAlerter(Console(file=buf, width=200, color_system=None)).send(
        AlertMessage(None, "Raid", "digest", digest=d, alert_id=d.id))
    assert result.status == "printed" and "DIGEST" in buf.getvalue() and "Outlet 0" in buf.getvalue()


def test_a_message_is_a_contradiction_or_a_digest() -> None:
    with pytest.raises(ValueError):
        AlertMessage(None, "T", "new")
    with pytest.raises(ValueError):
        AlertMessage(_c(1, ("1", ("A",))), "T", "digest", digest=_digest(1))


# ------------------------------------------------------------------------------------------ outbox


class Hook:
    """A Slack incoming webhook stand-in: answers ``status`` (200 by default) and records the
    bodies it accepted."""

    def __init__(self) -> None:
        self.status = 200
        self.accepted: list[dict] = []
        self.lock = threading.Lock()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with hook.lock:
                    status = hook.status
                    if status == 200:
                        hook.accepted.append(body)
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok" if status == 200 else b"error")

            def log_message(self, *a: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/T/B/x"

    def digests(self) -> list[dict]:
        return [b for b in self.accepted if b["text"].startswith("Digest")]


@pytest.fixture(scope="module")
def base() -> Iterator[Settings]:
    with OsmemServer.start(japanese=False) as server:
        yield Settings(es_url=server.url, es_compat="plain-json", es_refresh=True)


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook()
    yield h
    h.server.shutdown()


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def _env(base: Settings, prefix: str, **extra: Any) -> tuple[Settings, Any]:
    s = base.model_copy(update={"es_index_prefix": prefix, "alert_digest_window_s": WINDOW, "alert_digest_min_updates": 2,
                                "slack_allowed_hosts": ("127.0.0.1",), "alert_max_retries": 0, "alert_rate_per_s": 1000.0, **extra})
    client = make_client(s)
    ensure_templates(client, s)
    return s, client


def _story(client, s, alerter, clock: Clock, metrics: Metrics) -> list:
    """c1 appears (v1), then 5 updates of c1 and one of c2 in one window: with at most 2 update
    messages per window, v2 and v3 of c1 go at once and the rest is held."""
    out = []
    clock.at = T0 + timedelta(seconds=10)
    out.append(deliver(client, s, alerter, _c(1, ("14", ("Reuters",)), ("19", ("AP",))), "Raid", "new", metrics=metrics, clock=clock))
    out.append(deliver(client, s, alerter, _c(1, ("3", ("AP",)), ("0", ("DPA",)), cid="c2"), "Raid", "new", metrics=metrics, clock=clock))
    for v, extra in enumerate([("Reuters", "BBC"), ("Reuters", "BBC", "CNN")], start=2):
        clock.at += timedelta(seconds=30)
        out.append(deliver(client, s, alerter, _c(v, ("14", extra), ("19", ("AP",))), "Raid", "update", metrics=metrics, clock=clock))
    for v, new_value in [(4, "23"), (5, "25")]:
        clock.at += timedelta(seconds=30)
        sides = [("14", ("Reuters", "BBC", "CNN")), ("19", ("AP",)), ("23", ("AFP",))] + ([("25", ("DPA",))] if v == 5 else [])
        out.append(deliver(client, s, alerter, _c(v, *sides), "Raid", "update", metrics=metrics, clock=clock))
    clock.at += timedelta(seconds=30)
    out.append(deliver(client, s, alerter, _c(2, ("3", ("AP", "BBC")), ("0", ("DPA",)), cid="c2"), "Raid", "update", metrics=metrics, clock=clock))
    return out


def _src(client, s, rid: str) -> dict:
    return client.get(index=s.index("alerts"), id=rid)["_source"]


def test_digests_off_send_every_update(base: Settings, hook: Hook) -> None:
    s, client = _env(base, "dg-off", alert_digest_window_s=0.0, slack_webhook_url=SecretStr(hook.url))
    records = _story(client, s, make_alerter(s), Clock(T0), Metrics.create())
    assert all(r is not None and r.status == "sent" for r in records) and len(hook.accepted) == 7


def test_updates_beyond_the_threshold_go_out_as_one_digest(base: Settings, hook: Hook) -> None:
    s, client = _env(base, "dg-main", slack_webhook_url=SecretStr(hook.url))
    alerter, metrics, clock = make_alerter(s), Metrics.create(), Clock(T0)
    records = _story(client, s, alerter, clock, metrics)
    assert [r.status for r in records] == ["sent", "sent", "sent", "sent", "held", "held", "held"]
    assert len(hook.accepted) == 4  # two new alerts, two updates
    held = records[4:]
    did = digest_id("s1", T0)
    assert {r.digest for r in held} == {did} and all(r.next_attempt == T0 + timedelta(seconds=WINDOW) for r in held)
    assert all(_src(client, s, r.id)["status"] == "held" for r in held)  # visible in the index
    # a replayed event while held: nothing new
    assert deliver(client, s, alerter, _c(4, ("14", ("Reuters",))), "Raid", "update", metrics=metrics, clock=clock) is None
    # not before the window's end
    assert retry_due(client, s, alerter, metrics=metrics, clock=clock) == 0 and len(hook.accepted) == 4
    clock.at = T0 + timedelta(seconds=WINDOW)
    assert retry_due(client, s, alerter, metrics=metrics, clock=clock) == 1
    assert len(hook.accepted) == 5 and len(hook.digests()) == 1
    text = json.dumps(hook.digests()[0], ensure_ascii=False)
    assert "3 updates to 2 contradictions" in text
    assert "new value *23* — AFP" in text and "new value *25* — DPA" in text and "version 3 → 5" in text
    assert "*3* now also from BBC" in text and "version 1 → 2" in text
    digest = _src(client, s, did)
    assert digest["kind"] == "digest" and digest["status"] == "sent" and digest["attempts"] == 1
    assert sorted(json.loads(digest["body"])["entries"][1]["alert_ids"] + json.loads(digest["body"])["entries"][0]["alert_ids"]) \
        == sorted(r.id for r in held)
    for r in held:
        src = _src(client, s, r.id)
        assert src["status"] == "sent" and src["digest"] == did and src["next_attempt"] is None
    # never twice: another sweep, a replay after the window, a second worker
    assert retry_due(client, s, alerter, metrics=metrics, clock=clock) == 0
    assert deliver(client, s, alerter, _c(5, ("14", ("Reuters",))), "Raid", "update", metrics=metrics, clock=clock) is None
    assert retry_due(client, s, make_alerter(s), metrics=Metrics.create(), clock=clock) == 0
    assert len(hook.accepted) == 5
    # the next window starts afresh: the next update goes at once
    clock.at = T0 + timedelta(seconds=WINDOW + 5)
    nxt = deliver(client, s, alerter, _c(6, ("14", ("Reuters",)), ("30", ("NYT",))), "Raid", "update", metrics=metrics, clock=clock)
    assert nxt is not None and nxt.status == "sent" and len(hook.accepted) == 6


def test_every_update_held_with_zero_threshold_and_printed(base: Settings) -> None:
    s, client = _env(base, "dg-zero", alert_digest_min_updates=0)
    buf = io.StringIO()
    alerter, metrics, clock = StdoutAlerter(Console(file=buf, width=200, color_system=None)), Metrics.create(), Clock(T0)
    records = _story(client, s, alerter, clock, metrics)
    assert [r.status for r in records] == ["printed", "printed", "held", "held", "held", "held", "held"]
    clock.at = T0 + timedelta(seconds=WINDOW + 1)
    assert retry_due(client, s, alerter, metrics=metrics, clock=clock) == 1
    assert buf.getvalue().count("DIGEST") == 1 and "5 updates to 2 contradictions" in buf.getvalue()
    assert all(_src(client, s, r.id)["status"] == "printed" for r in records[2:])


def test_bot_digest_goes_in_the_story_thread_with_its_id(base: Settings) -> None:
    api = FakeSlackAPI()
    try:
        s, client = _env(base, "dg-bot", slack_bot_token=SecretStr("xoxb-t"), slack_channel="C0DESK0001", slack_api_url=api.url)
        alerter, metrics, clock = make_alerter(s), Metrics.create(), Clock(T0)
        records = _story(client, s, alerter, clock, metrics)
        story_root = records[0].ts
        assert story_root and all(m["thread_ts"] in (None, story_root, records[1].ts) for m in api.messages)
        clock.at = T0 + timedelta(seconds=WINDOW)
        assert retry_due(client, s, alerter, metrics=metrics, clock=clock) == 1
        did = digest_id("s1", T0)
        (post,) = api.posts_of(did)
        assert post["thread_ts"] == story_root  # two contradictions: the story's first alert
        assert _src(client, s, did)["ts"] == post["ts"] and _src(client, s, did)["thread_ts"] == story_root
    finally:
        api.server.shutdown()


def test_single_contradiction_digest_goes_in_its_own_thread(base: Settings) -> None:
    api = FakeSlackAPI()
    try:
        s, client = _env(base, "dg-bot1", slack_bot_token=SecretStr("xoxb-t"), slack_channel="C0DESK0001", slack_api_url=api.url,
                         alert_digest_min_updates=0)
        alerter, metrics, clock = make_alerter(s), Metrics.create(), Clock(T0 + timedelta(seconds=1))
        deliver(client, s, alerter, _c(1, ("1", ("A",)), cid="c0"), "Raid", "new", metrics=metrics, clock=clock)
        root = deliver(client, s, alerter, _c(1, ("1", ("A",)), ("2", ("B",))), "Raid", "new", metrics=metrics, clock=clock)
        deliver(client, s, alerter, _c(2, ("1", ("A",)), ("2", ("B", "C"))), "Raid", "update", metrics=metrics, clock=clock)
        clock.at = T0 + timedelta(seconds=WINDOW)
        assert retry_due(client, s, alerter, metrics=metrics, clock=clock) == 1
        assert api.posts_of(digest_id("s1", T0))[0]["thread_ts"] == root.ts
    finally:
        api.server.shutdown()


class Killed(BaseException):
    """SIGKILL, as far as the code under test can tell: nothing after it runs."""


class Dies:
    """Wraps an alerter: the worker dies in ``send`` of a digest, after the post when ``post``."""

    def __init__(self, inner: Any, post: bool) -> None:
        self.inner, self.post, self.channel = inner, post, inner.channel

    def send(self, message: AlertMessage):
        if message.kind == "digest":
            if self.post:
                self.inner.send(message)
            raise Killed
        return self.inner.send(message)


def _recover(client, s, alerter, clock: Clock) -> int:
    """A fresh worker's sweeps until the dead one's claim is old enough to take over."""
    watch: dict = {}
    mono = [0.0]
    taken = 0
    for _ in range(3):
        taken += retry_due(client, s, alerter, metrics=Metrics.create(), clock=clock, watch=watch, monotonic=lambda: mono[0])
        mono[0] += s.alert_pending_timeout_s + 1
        clock.at += timedelta(seconds=s.alert_pending_timeout_s + 1)
    return taken


def test_worker_killed_before_posting_a_digest_loses_nothing(base: Settings, hook: Hook) -> None:
    s, client = _env(base, "dg-kill0", slack_webhook_url=SecretStr(hook.url))
    alerter, clock = make_alerter(s), Clock(T0)
    records = _story(client, s, alerter, clock, Metrics.create())
    clock.at = T0 + timedelta(seconds=WINDOW)
    with pytest.raises(Killed):
        retry_due(client, s, Dies(alerter, post=False), metrics=Metrics.create(), clock=clock)
    did = digest_id("s1", T0)
    assert _src(client, s, did)["status"] == "pending" and not hook.digests()  # persisted before sending
    assert _recover(client, s, alerter, clock) >= 1
    assert len(hook.digests()) == 1
    assert _src(client, s, did)["status"] == "sent"
    assert all(_src(client, s, r.id)["status"] == "sent" for r in records[4:])


def test_bot_worker_killed_after_posting_a_digest_does_not_post_it_again(base: Settings) -> None:
    api = FakeSlackAPI()
    try:
        s, client = _env(base, "dg-kill1", slack_bot_token=SecretStr("xoxb-t"), slack_channel="C0DESK0001", slack_api_url=api.url)
        alerter, clock = make_alerter(s), Clock(T0)
        records = _story(client, s, alerter, clock, Metrics.create())
        clock.at = T0 + timedelta(seconds=WINDOW)
        with pytest.raises(Killed):
            retry_due(client, s, Dies(alerter, post=True), metrics=Metrics.create(), clock=clock)
        did = digest_id("s1", T0)
        assert len(api.posts_of(did)) == 1 and _src(client, s, did)["status"] == "pending"
        assert _recover(client, s, alerter, clock) >= 1
        assert len(api.posts_of(did)) == 1  # found in the thread, not posted again
        assert _src(client, s, did)["status"] == "sent" and _src(client, s, did)["ts"] == api.posts_of(did)[0]["ts"]
        assert all(_src(client, s, r.id)["status"] == "sent" for r in records[4:])
        assert any(method == "conversations.replies" for method, _ in api.reads)
    finally:
        api.server.shutdown()


def test_killed_after_the_digest_was_stored_before_its_updates_were(base: Settings, hook: Hook,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    s, client = _env(base, "dg-kill2", slack_webhook_url=SecretStr(hook.url))
    alerter, clock = make_alerter(s), Clock(T0)
    records = _story(client, s, alerter, clock, Metrics.create())
    settle = notify._settle_members

    def die(*a: Any, **kw: Any) -> None:
        raise Killed

    monkeypatch.setattr(notify, "_settle_members", die)
    clock.at = T0 + timedelta(seconds=WINDOW)
    with pytest.raises(Killed):
        retry_due(client, s, alerter, metrics=Metrics.create(), clock=clock)
    monkeypatch.setattr(notify, "_settle_members", settle)
    assert len(hook.digests()) == 1 and all(_src(client, s, r.id)["status"] == "held" for r in records[4:])
    _recover(client, s, alerter, clock)
    assert len(hook.digests()) == 1  # reconciled, not re-sent
    assert all(_src(client, s, r.id)["status"] == "sent" for r in records[4:])


def test_a_failed_digest_stays_visible_and_is_retried_once(base: Settings, hook: Hook) -> None:
    s, client = _env(base, "dg-fail", slack_webhook_url=SecretStr(hook.url))
    alerter, clock = make_alerter(s, sleep=lambda _d: None), Clock(T0)
    records = _story(client, s, alerter, clock, Metrics.create())
    hook.status = 500
    clock.at = T0 + timedelta(seconds=WINDOW)
    assert retry_due(client, s, alerter, metrics=Metrics.create(), clock=clock) == 1
    did = digest_id("s1", T0)
    failed = _src(client, s, did)
    assert failed["status"] == "failed" and "HTTP 500" in failed["error"] and failed["next_attempt"]
    for r in records[4:]:
        src = _src(client, s, r.id)
        assert src["status"] == "held" and did in src["error"] and src["next_attempt"] == failed["next_attempt"]
    assert retry_due(client, s, alerter, metrics=Metrics.create(), clock=clock) == 0  # not due yet
    hook.status = 200
    clock.at += timedelta(hours=1)
    assert retry_due(client, s, alerter, metrics=Metrics.create(), clock=clock) == 1
    assert retry_due(client, s, alerter, metrics=Metrics.create(), clock=clock) == 0
    assert len(hook.digests()) == 1 and _src(client, s, did)["status"] == "sent"
    assert all(_src(client, s, r.id)["status"] == "sent" for r in records[4:])


def test_an_update_held_after_its_digest_went_out_is_sent_on_its_own(base: Settings, hook: Hook) -> None:
    """A race at the window's end: the digest was composed, then one more update was held for it."""
    s, client = _env(base, "dg-late", slack_webhook_url=SecretStr(hook.url))
    alerter, metrics, clock = make_alerter(s), Metrics.create(), Clock(T0)
    _story(client, s, alerter, clock, metrics)
    clock.at = T0 + timedelta(seconds=WINDOW)
    assert retry_due(client, s, alerter, metrics=metrics, clock=clock) == 1
    clock.at = T0 + timedelta(seconds=WINDOW - 1)  # a worker whose clock is a second behind
    late = deliver(client, s, alerter, _c(7, ("14", ("Reuters",)), ("40", ("WSJ",))), "Raid", "update", metrics=metrics, clock=clock)
    assert late is not None and late.status == "held" and late.digest == digest_id("s1", T0)
    clock.at = T0 + timedelta(seconds=WINDOW + 10)
    retry_due(client, s, alerter, metrics=metrics, clock=clock)
    assert len(hook.digests()) == 1 and "40" in hook.accepted[-1]["text"]
    src = _src(client, s, late.id)
    assert src["status"] == "sent" and src["digest"] is None
    assert alert_id(_c(7)) == late.id


def test_digests_work_on_an_alerts_index_created_before_the_digest_field(base: Settings, hook: Hook) -> None:
    """ensure_templates leaves an existing index's mapping alone: the outbox must not need the
    ``digest`` field to be indexed."""
    from pipeline.search import load_template

    s = base.model_copy(update={"es_index_prefix": "dg-old"})
    old = load_template("alerts", s.es_index_prefix)["template"]
    del old["mappings"]["properties"]["digest"]
    client = make_client(s)
    client.indices.create(index=s.index("alerts"), mappings=old["mappings"], settings=old["settings"])
    s, client = _env(base, "dg-old", slack_webhook_url=SecretStr(hook.url))
    assert "digest" not in client.indices.get_mapping(index=s.index("alerts"))[s.index("alerts")]["mappings"]["properties"]
    alerter, clock = make_alerter(s), Clock(T0)
    records = _story(client, s, alerter, clock, Metrics.create())
    clock.at = T0 + timedelta(seconds=WINDOW)
    assert retry_due(client, s, alerter, metrics=Metrics.create(), clock=clock) == 1
    assert len(hook.digests()) == 1 and all(_src(client, s, r.id)["status"] == "sent" for r in records[4:])
