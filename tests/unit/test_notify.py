"""Alert delivery end to end against the embedded search server and a local Slack Web API stand-in:
dedupe before sending, and updates threaded under the first alert when a bot token is configured."""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import pytest
from osmem_server import OsmemServer
from pydantic import SecretStr

from pipeline.alert import SlackBotAlerter, make_alerter
from pipeline.metrics import Metrics
from pipeline.notify import deliver
from pipeline.search import ensure_templates, make_client
from pipeline.settings import Settings
from pipeline.types import Contradiction, Interval, Side

T0 = datetime(2020, 6, 26, tzinfo=timezone.utc)


class FakeSlackAPI:
    """Stands in for Slack's Web API. ``chat.postMessage`` stores the message (channel, thread,
    metadata) and answers with its ``ts`` and the channel ID; ``conversations.history`` (top-level
    messages, newest first) and ``conversations.replies`` (one thread, oldest first) read them back,
    with metadata only when ``include_all_metadata`` is set, and only by channel ID, as Slack does.

    Faults: ``land_then_fail`` posts that land but answer HTTP 500; ``read_status`` (an HTTP status
    for reads) and ``read_error`` (an ``ok: false`` error for reads)."""

    CHANNEL_IDS = {"#desk": "C0DESK0001"}

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []
        self.reads: list[tuple[str, dict[str, str]]] = []
        self.messages: list[dict] = []
        self.land_then_fail = 0
        self.read_status = 200
        self.read_error: str | None = None
        self.lock = threading.Lock()
        self._last = 0.0
        api = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, answer: dict) -> None:
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with api.lock:
                    api.calls.append((self.headers.get("Authorization", ""), body))
                    if body.get("channel") == "#missing":
                        self._answer(200, {"ok": False, "error": "channel_not_found"})
                        return
                    channel = api.CHANNEL_IDS.get(body.get("channel"), body.get("channel"))
                    api._last = max(api._last + 1e-6, time.time())
                    ts = f"{api._last:.6f}"
                    api.messages.append({"channel": channel, "ts": ts, "thread_ts": body.get("thread_ts"),
                                         "metadata": body.get("metadata"), "text": body.get("text")})
                    fail = api.land_then_fail > 0
                    api.land_then_fail -= fail
                if fail:
                    self._answer(500, {"ok": False, "error": "internal_error"})
                else:
                    self._answer(200, {"ok": True, "ts": ts, "channel": channel})

            def do_GET(self) -> None:  # noqa: N802
                url = urlsplit(self.path)
                method = url.path.rsplit("/", 1)[-1]
                params = dict(parse_qsl(url.query))
                with api.lock:
                    api.reads.append((method, params))
                    if api.read_status != 200:
                        self._answer(api.read_status, {"ok": False})
                        return
                    if api.read_error or not params.get("channel", "").startswith("C"):
                        self._answer(200, {"ok": False, "error": api.read_error or "channel_not_found"})
                        return
                    oldest = float(params.get("oldest", 0))
                    mine = [m for m in api.messages if m["channel"] == params["channel"] and float(m["ts"]) >= oldest]
                    if method == "conversations.history":
                        found = [m for m in reversed(mine) if not m["thread_ts"]]
                    else:
                        found = [m for m in mine if m["ts"] == params["ts"] or m["thread_ts"] == params["ts"]]
                    start, limit = int(params.get("cursor") or 0), int(params.get("limit", 100))
                    page = found[start : start + limit]
                    more = start + limit < len(found)
                    with_metadata = params.get("include_all_metadata") == "true"
                    shown = [{"ts": m["ts"], "text": m["text"], **({"metadata": m["metadata"]} if with_metadata and m["metadata"] else {})}
                             for m in page]
                self._answer(200, {"ok": True, "messages": shown, "has_more": more,
                                   "response_metadata": {"next_cursor": str(start + limit) if more else ""}})

            def log_message(self, *a: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api"

    def posts_of(self, alert: str) -> list[dict]:
        """The messages that carry ``alert`` in their metadata."""
        return [m for m in self.messages if (m["metadata"] or {}).get("event_payload", {}).get("alert_id") == alert]


@pytest.fixture(scope="module")
def es_settings():
    with OsmemServer.start(japanese=False) as server:
        s = Settings(es_url=server.url, es_compat="plain-json", es_refresh=True, es_index_prefix="notify")
        ensure_templates(make_client(s), s)
        yield s


@pytest.fixture
def api():
    fake = FakeSlackAPI()
    yield fake
    fake.server.shutdown()


def _contradiction(version: int, values: tuple[str, ...]) -> Contradiction:
    sides = tuple(Side(value=v, interval=Interval(lo=float(v), hi=float(v)), articles=(f"a{v}",), quotes=(f"{v} held.",)) for v in values)
    return Contradiction(id="c1", story="s1", kind="numeric", about="detained:people@main", sides=sides, version=version,
                         first_seen=T0, last_seen=T0)


def test_bot_token_updates_are_threaded_and_each_version_posts_once(es_settings, api):
    s = es_settings.model_copy(update={
        "slack_bot_token": SecretStr("xoxb-secret-token"), "slack_channel": "#desk",
        "slack_api_url": api.url, "slack_allowed_hosts": ("127.0.0.1",),
    })
    alerter = make_alerter(s)
    assert isinstance(alerter, SlackBotAlerter) and "xoxb" not in repr(alerter)
    client, metrics = make_client(s), Metrics.create()
    first = deliver(client, s, alerter, _contradiction(1, ("14", "19")), "Raid", "new", metrics=metrics, clock=lambda: T0)
    assert first is not None and first.status == "sent" and first.ts
    update = deliver(client, s, alerter, _contradiction(2, ("14", "19", "23")), "Raid", "update", metrics=metrics, clock=lambda: T0)
    assert update is not None and update.thread_ts == first.ts
    # at-least-once replay of the same update: the dedupe key is taken, nothing is posted
    again = deliver(client, s, alerter, _contradiction(2, ("14", "19", "23")), "Raid", "update", metrics=metrics, clock=lambda: T0)
    assert again is None
    assert len(api.calls) == 2
    assert all(auth == "Bearer xoxb-secret-token" for auth, _ in api.calls)
    assert "thread_ts" not in api.calls[0][1] and api.calls[1][1]["thread_ts"] == first.ts
    assert api.calls[0][1]["channel"] == "#desk" and api.calls[0][1]["blocks"]
    stored = client.get(index=s.index("alerts"), id=update.id)["_source"]
    assert stored["status"] == "sent" and stored["thread_ts"] == first.ts


def test_web_api_error_is_a_visible_failure(es_settings, api):
    s = es_settings.model_copy(update={
        "slack_bot_token": SecretStr("xoxb-t"), "slack_channel": "#missing",
        "slack_api_url": api.url, "slack_allowed_hosts": ("127.0.0.1",), "es_index_prefix": "notify2",
    })
    client = make_client(s)
    ensure_templates(client, s)
    rec = deliver(client, s, make_alerter(s), _contradiction(1, ("1", "2")), "X", "new", metrics=Metrics.create(), clock=lambda: T0)
    assert rec is not None and rec.status == "failed" and "channel_not_found" in (rec.error or "")
    assert client.get(index=s.index("alerts"), id=rec.id)["_source"]["status"] == "failed"


class FlakyWebhook:
    """Answers 500 while ``down`` is set, else 200; records what it accepted."""

    def __init__(self) -> None:
        self.down = True
        self.accepted: list[dict] = []
        self.requests = 0
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                hook.requests += 1
                if hook.down:
                    self.send_response(500)
                    self.end_headers()
                    return
                hook.accepted.append(body)
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *a: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/T/B/x"


def test_failed_and_orphaned_alerts_are_resent_once_by_the_outbox_sweep(es_settings):
    from datetime import timedelta

    from pipeline.notify import alert_id, retry_due
    from pipeline.search import claim_alert
    from pipeline.types import AlertRecord

    hook = FlakyWebhook()
    s = es_settings.model_copy(update={
        "slack_webhook_url": SecretStr(hook.url), "slack_allowed_hosts": ("127.0.0.1",), "es_index_prefix": "outbox",
        "alert_max_retries": 1, "alert_pending_timeout_s": 60.0,
    })
    client = make_client(s)
    ensure_templates(client, s)
    now = [T0]
    clock = lambda: now[0]  # noqa: E731
    alerter = make_alerter(s, sleep=lambda _d: None)
    metrics = Metrics.create()
    failed = deliver(client, s, alerter, _contradiction(1, ("14", "19")), "Raid", "new", metrics=metrics, clock=clock)
    assert failed is not None and failed.status == "failed" and failed.next_attempt is not None
    # a worker that died after claiming: a pending record with no outcome
    orphan_c = _contradiction(1, ("3", "0")).model_copy(update={"id": "c2"})
    orphan = AlertRecord(id=alert_id(orphan_c), contradiction="c2", story="s1", kind="new", status="pending",
                         channel="slack", created=T0, story_title="Raid", body=orphan_c.model_dump_json())
    assert claim_alert(client, s, orphan)
    hook.down = False
    watch: dict = {}
    mono = [0.0]
    sweep = lambda: retry_due(client, s, alerter, metrics=metrics, clock=clock, watch=watch, monotonic=lambda: mono[0])  # noqa: E731
    assert sweep() == 0  # nothing due yet
    now[0] = T0 + timedelta(hours=2)
    # the failed one is due at once; the orphaned claim must first be seen unchanged for the timeout
    assert sweep() == 1
    mono[0] += 30
    assert sweep() == 0
    mono[0] += 31
    assert sweep() == 1
    assert sweep() == 0  # never twice
    assert len(hook.accepted) == 2
    for rid in (failed.id, orphan.id):
        assert client.get(index=s.index("alerts"), id=rid)["_source"]["status"] == "sent"
    hook.server.shutdown()


def test_pending_timeout_must_outlive_one_retry_wait():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="alert_pending_timeout_s"):
        Settings(alert_pending_timeout_s=30, alert_timeout_s=10, alert_max_wait_s=60)
    assert Settings(alert_pending_timeout_s=5, alert_timeout_s=2, alert_max_wait_s=2).alert_pending_timeout_s == 5


def test_a_taken_over_delivery_stops_posting(es_settings):
    """The sweep took the claim over while this sender waited out a 429: it must not post again."""
    from pipeline.alert import TAKEN_OVER, SlackWebhookAlerter
    from pipeline.notify import alert_id
    from pipeline.search import take_over_alert

    calls: list[int] = []

    class Storm(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers["Content-Length"]))
            calls.append(1)
            self.send_response(429)
            self.send_header("Retry-After", "0")
            self.end_headers()

        def log_message(self, *a: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Storm)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    s = es_settings.model_copy(update={"es_index_prefix": "takeover"})
    client = make_client(s)
    ensure_templates(client, s)
    c = _contradiction(1, ("1", "5"))
    stolen = []

    def sleep(_d: float) -> None:
        if not stolen:  # another worker takes the claim over during the first wait
            doc = client.get(index=s.index("alerts"), id=alert_id(c))
            from pipeline.types import AlertRecord

            rec = AlertRecord.model_validate({k: v for k, v in doc["_source"].items() if k in AlertRecord.model_fields})
            stolen.append(take_over_alert(client, s, rec, (doc["_seq_no"], doc["_primary_term"])))

    alerter = SlackWebhookAlerter(SecretStr(f"http://127.0.0.1:{server.server_address[1]}/hook"), allowed_hosts=("127.0.0.1",),
                                  max_retries=5, sleep=sleep)
    assert deliver(client, s, alerter, c, "X", "new", metrics=Metrics.create(), clock=lambda: T0) is None
    assert stolen and stolen[0] is not None and len(calls) == 1
    server.shutdown()
    assert TAKEN_OVER


# ------------------------------------------------------------- no duplicate post with a bot token


def _bot(es_settings: Settings, api: FakeSlackAPI, prefix: str, channel: str = "C0DESK0001") -> tuple[Settings, object]:
    s = es_settings.model_copy(update={
        "slack_bot_token": SecretStr("xoxb-t"), "slack_channel": channel, "slack_api_url": api.url,
        "slack_allowed_hosts": ("127.0.0.1",), "es_index_prefix": prefix, "alert_max_retries": 2,
    })
    client = make_client(s)
    ensure_templates(client, s)
    return s, client


def _die_mid_delivery(client, s, alerter, c: Contradiction, kind: str = "new", *, post: bool, thread_ts: str | None = None):
    """What a worker killed with SIGKILL leaves: the claim (pending), and the message in Slack when
    ``post`` (Slack accepted it; "sent" was never stored)."""
    from pipeline.alert import AlertMessage
    from pipeline.notify import alert_id
    from pipeline.search import claim_alert
    from pipeline.types import AlertRecord

    record = AlertRecord(id=alert_id(c), contradiction=c.id, story=c.story, kind=kind, status="pending", channel="slack",
                         created=T0, story_title="Raid", body=c.model_dump_json())
    assert claim_alert(client, s, record) is not None
    if post:
        assert alerter.send(AlertMessage(c, "Raid", kind, thread_ts=thread_ts, alert_id=record.id)).ok
    return record


def _sweep_until_taken(client, s, alerter, metrics, clock=lambda: T0 + timedelta(minutes=10)) -> int:
    """Run the outbox sweep as a fresh worker would: it takes a pending claim over only after
    seeing it unchanged for the pending timeout (monotonic time is simulated)."""
    from pipeline.notify import retry_due

    watch: dict = {}
    mono = [0.0]
    taken = retry_due(client, s, alerter, metrics=metrics, clock=clock, watch=watch, monotonic=lambda: mono[0])
    mono[0] += s.alert_pending_timeout_s + 1
    return taken + retry_due(client, s, alerter, metrics=metrics, clock=clock, watch=watch, monotonic=lambda: mono[0])


def _stored(client, s, rid: str) -> dict:
    return client.get(index=s.index("alerts"), id=rid)["_source"]


def test_bot_does_not_repost_an_alert_that_landed_before_the_worker_died(es_settings, api):
    s, client = _bot(es_settings, api, "landed")
    alerter, metrics = make_alerter(s), Metrics.create()
    c = _contradiction(1, ("14", "19"))
    record = _die_mid_delivery(client, s, alerter, c, post=True)
    assert api.posts_of(record.id) and api.messages[0]["metadata"]["event_type"] == "crosswire_alert"
    assert _sweep_until_taken(client, s, alerter, metrics) == 1
    assert len(api.calls) == 1  # no second post
    stored = _stored(client, s, record.id)
    assert stored["status"] == "sent" and stored["ts"] == api.messages[0]["ts"] and stored["error"] is None
    method, params = api.reads[0]
    assert method == "conversations.history" and params["include_all_metadata"] == "true" and params["channel"] == "C0DESK0001"
    assert metrics.alerts.labels("slack", "recovered")._value.get() == 1
    # the recovered ts is the thread root: the next update goes into it
    update = deliver(client, s, alerter, _contradiction(2, ("14", "19", "23")), "Raid", "update", metrics=metrics, clock=lambda: T0)
    assert update is not None and update.thread_ts == api.messages[0]["ts"] and len(api.calls) == 2


def test_bot_does_not_repost_a_threaded_update_that_landed(es_settings, api):
    s, client = _bot(es_settings, api, "landed-thread")
    alerter, metrics = make_alerter(s), Metrics.create()
    first = deliver(client, s, alerter, _contradiction(1, ("14", "19")), "Raid", "new", metrics=metrics, clock=lambda: T0)
    assert first is not None and first.ts
    c2 = _contradiction(2, ("14", "19", "23"))
    record = _die_mid_delivery(client, s, alerter, c2, "update", post=True, thread_ts=first.ts)
    assert _sweep_until_taken(client, s, alerter, metrics) == 1
    assert len(api.calls) == 2 and len(api.posts_of(record.id)) == 1
    assert _stored(client, s, record.id)["status"] == "sent"
    assert api.reads[-1][0] == "conversations.replies" and api.reads[-1][1]["ts"] == first.ts


def test_bot_posts_once_when_the_dead_worker_had_not_posted(es_settings, api):
    s, client = _bot(es_settings, api, "notlanded")
    alerter, metrics = make_alerter(s), Metrics.create()
    record = _die_mid_delivery(client, s, alerter, _contradiction(1, ("3", "5")), post=False)
    assert _sweep_until_taken(client, s, alerter, metrics) == 1
    assert len(api.posts_of(record.id)) == 1 and len(api.calls) == 1
    assert [m for m, _ in api.reads] == ["conversations.history"]  # looked first, then posted
    assert _stored(client, s, record.id)["status"] == "sent"


def test_bot_post_that_landed_but_answered_500_is_not_posted_again(es_settings, api):
    s, client = _bot(es_settings, api, "land500")
    api.land_then_fail = 1
    alerter = make_alerter(s, sleep=lambda _d: None)
    rec = deliver(client, s, alerter, _contradiction(1, ("7", "9")), "Raid", "new", metrics=Metrics.create(), clock=lambda: T0)
    assert rec is not None and rec.status == "sent" and rec.attempts == 1
    assert len(api.calls) == 1 and rec.ts == api.messages[0]["ts"]
    assert [m for m, _ in api.reads] == ["conversations.history"]


def test_bot_answering_429_is_retried_without_a_look(es_settings, api):
    """A 429 is a refusal, not an unknown outcome: the retry posts without reading history."""
    s, client = _bot(es_settings, api, "plain429")
    alerter = make_alerter(s, sleep=lambda _d: None)
    orig = alerter._client.post
    answers = [429]

    def post(url, **kw):
        if answers:
            answers.pop()
            import httpx

            return httpx.Response(429, headers={"Retry-After": "0"}, request=httpx.Request("POST", url))
        return orig(url, **kw)

    alerter._client.post = post  # type: ignore[method-assign]
    rec = deliver(client, s, alerter, _contradiction(1, ("1", "2")), "Raid", "new", metrics=Metrics.create(), clock=lambda: T0)
    assert rec is not None and rec.status == "sent" and rec.attempts == 2 and api.reads == []


def test_bot_defers_a_resend_it_cannot_check(es_settings, api):
    """History unreadable (5xx): rather than risk a second post, the alert stays failed and
    visible, and goes out (or is found) on a later round."""
    s, client = _bot(es_settings, api, "cannotcheck")
    alerter, metrics = make_alerter(s, sleep=lambda _d: None), Metrics.create()
    record = _die_mid_delivery(client, s, alerter, _contradiction(1, ("4", "8")), post=True)
    api.read_status = 503
    assert _sweep_until_taken(client, s, alerter, metrics) == 1
    stored = _stored(client, s, record.id)
    assert stored["status"] == "failed" and "could not check" in stored["error"] and stored["next_attempt"]
    assert stored["attempts"] == 1 and len(api.calls) == 1  # the dead worker's post, outcome unknown
    api.read_status = 200
    later = T0 + timedelta(hours=2)
    assert _sweep_until_taken(client, s, alerter, metrics, clock=lambda: later) == 1
    assert len(api.calls) == 1 and _stored(client, s, record.id)["status"] == "sent"


def test_bot_without_history_scope_still_delivers(es_settings, api, caplog):
    s, client = _bot(es_settings, api, "noscope")
    api.read_error = "missing_scope"
    alerter, metrics = make_alerter(s), Metrics.create()
    record = _die_mid_delivery(client, s, alerter, _contradiction(1, ("2", "6")), post=False)
    with caplog.at_level(logging.WARNING):
        assert _sweep_until_taken(client, s, alerter, metrics) == 1
    assert len(api.posts_of(record.id)) == 1 and _stored(client, s, record.id)["status"] == "sent"
    assert "missing_scope" in caplog.text


def test_bot_learns_the_channel_id_from_its_first_post(es_settings, api):
    """Configured with a channel name, the look uses the ID Slack returned for an earlier post."""
    s, client = _bot(es_settings, api, "byname", channel="#desk")
    alerter, metrics = make_alerter(s), Metrics.create()
    assert deliver(client, s, alerter, _contradiction(1, ("1", "9")), "Raid", "new", metrics=metrics, clock=lambda: T0)
    other = _contradiction(1, ("2", "8")).model_copy(update={"id": "c9"})
    record = _die_mid_delivery(client, s, alerter, other, post=True)
    assert _sweep_until_taken(client, s, alerter, metrics) == 1
    assert len(api.posts_of(record.id)) == 1 and api.reads[-1][1]["channel"] == "C0DESK0001"


def test_replayed_failed_alert_is_looked_for_before_reposting(es_settings, api):
    """A replayed event reclaims a failed alert; its earlier attempts may have landed."""
    s, client = _bot(es_settings, api, "replayfailed")
    api.land_then_fail = 3  # every post of the first delivery lands but answers 500 ...
    api.read_status = 503  # ... and history cannot be read then
    alerter, metrics = make_alerter(s, sleep=lambda _d: None), Metrics.create()
    c = _contradiction(1, ("5", "50"))
    first = deliver(client, s, alerter, c, "Raid", "new", metrics=metrics, clock=lambda: T0)
    assert first is not None and first.status == "failed" and len(api.calls) == 1
    api.read_status = 200
    again = deliver(client, s, alerter, c, "Raid", "new", metrics=metrics, clock=lambda: T0 + timedelta(minutes=5))
    assert again is not None and again.status == "sent" and again.attempts == 1
    assert len(api.calls) == 1


def test_update_posted_before_its_thread_was_known_is_found_in_the_channel(es_settings, api):
    s, client = _bot(es_settings, api, "nothread")
    alerter, metrics = make_alerter(s), Metrics.create()
    first = deliver(client, s, alerter, _contradiction(1, ("14", "19")), "Raid", "new", metrics=metrics, clock=lambda: T0)
    record = _die_mid_delivery(client, s, alerter, _contradiction(2, ("14", "19", "23")), "update", post=True, thread_ts=None)
    assert _sweep_until_taken(client, s, alerter, metrics) == 1
    assert len(api.posts_of(record.id)) == 1 and len(api.calls) == 2
    assert [m for m, _ in api.reads] == ["conversations.replies", "conversations.history"]
    assert first is not None and _stored(client, s, record.id)["status"] == "sent"


# ----------------------------------------------------------- claimed in line, sent from a queue


def test_a_queued_claim_taken_over_by_a_sweep_is_not_sent_again(es_settings, api):
    """The sender renews its claim just before posting: if another worker's sweep took the alert
    over while it waited in the queue, the queued copy posts nothing."""
    from pipeline.notify import Claimed, claim, send_claimed
    from pipeline.search import get_alert, take_over_alert

    s = es_settings.model_copy(update={"slack_bot_token": SecretStr("xoxb-t"), "slack_channel": "#desk", "slack_api_url": api.url,
                                       "slack_allowed_hosts": ("127.0.0.1",), "es_index_prefix": "queued1"})
    client = make_client(s)
    ensure_templates(client, s)
    alerter, metrics = make_alerter(s), Metrics.create()
    got = claim(client, s, alerter, _contradiction(1, ("14", "19")), "Raid", "new", metrics=metrics, clock=lambda: T0)
    assert isinstance(got, Claimed) and got.record.status == "pending"
    assert _stored(client, s, got.record.id)["status"] == "pending"  # persisted before anything is sent
    assert api.calls == []
    # another worker's sweep takes the claim over (it looked abandoned)
    stored, lease = get_alert(client, s, got.record.id)
    assert take_over_alert(client, s, stored.model_copy(update={"created": T0 + timedelta(minutes=5)}), lease) is not None
    assert send_claimed(client, s, alerter, got, metrics=metrics, clock=lambda: T0 + timedelta(minutes=6)) is None
    assert api.calls == []
    # the update may not overtake the first alert, which the other worker still holds: deferred
    second = claim(client, s, alerter, _contradiction(2, ("14", "19", "23")), "Raid", "update", metrics=metrics, clock=lambda: T0)
    assert isinstance(second, Claimed)
    deferred = send_claimed(client, s, alerter, second, metrics=metrics, clock=lambda: T0 + timedelta(minutes=6, seconds=3))
    assert deferred is not None and deferred.status == "failed" and deferred.attempts == 0 and "deferred" in (deferred.error or "")
    assert deferred.next_attempt is not None and deferred.next_attempt > T0 + timedelta(minutes=6, seconds=3)
    assert api.calls == []
    # the other worker delivers the first alert; then the sweep sends the update, once, in its thread
    from pipeline.notify import retry_due

    first, first_lease = get_alert(client, s, got.record.id)
    sent = first.model_copy(update={"status": "sent", "ts": "1700000000.000100", "sent": T0 + timedelta(minutes=7)})
    assert take_over_alert(client, s, sent, first_lease) is not None
    later = lambda: T0 + timedelta(minutes=10)  # noqa: E731
    assert retry_due(client, s, alerter, metrics=metrics, clock=later) == 1
    assert len(api.calls) == 1 and api.calls[0][1].get("thread_ts") == "1700000000.000100"
    assert _stored(client, s, second.record.id)["status"] == "sent"
    assert retry_due(client, s, alerter, metrics=metrics, clock=later) == 0
    # a replayed event claims nothing
    assert claim(client, s, alerter, _contradiction(2, ("14", "19", "23")), "Raid", "update", metrics=metrics, clock=lambda: T0) is None


def test_the_sweep_leaves_claims_in_this_workers_queue_alone(es_settings):
    """However long a claim waits in this worker's own queue, its sweep does not take it over;
    once the id has left the queue (the process died, say) the usual timeout applies."""
    from pipeline.notify import Claimed, claim, retry_due

    hook = FlakyWebhook()
    hook.down = False
    s = es_settings.model_copy(update={"slack_webhook_url": SecretStr(hook.url), "slack_allowed_hosts": ("127.0.0.1",),
                                       "es_index_prefix": "queued2", "alert_pending_timeout_s": 60.0})
    client = make_client(s)
    ensure_templates(client, s)
    alerter, metrics = make_alerter(s, sleep=lambda _d: None), Metrics.create()
    got = claim(client, s, alerter, _contradiction(1, ("3", "5")), "Raid", "new", metrics=metrics, clock=lambda: T0)
    assert isinstance(got, Claimed)
    clock = lambda: T0 + timedelta(minutes=30)  # noqa: E731
    watch: dict = {}
    mono = [0.0]
    for queued in ({got.record.id}, {got.record.id}, set()):
        taken = retry_due(client, s, alerter, metrics=metrics, clock=clock, watch=watch, monotonic=lambda: mono[0],
                          queued=lambda q=queued: q)
        mono[0] += s.alert_pending_timeout_s + 1
        assert taken == 0 and hook.accepted == []
    # out of the queue and seen unchanged for the timeout: taken over and sent, once
    assert retry_due(client, s, alerter, metrics=metrics, clock=clock, watch=watch, monotonic=lambda: mono[0]) == 1
    assert len(hook.accepted) == 1 and _stored(client, s, got.record.id)["status"] == "sent"
    hook.server.shutdown()


def test_alert_sender_sends_in_claim_order_without_blocking_the_caller(caplog):
    """``put`` returns at once while a send is stuck; sends happen one at a time in claim order; an
    exception in one send is logged and does not stop the next; ``queued`` names what is unsettled."""
    from pipeline.notify import Claimed
    from pipeline.types import AlertRecord
    from pipeline.worker import AlertSender

    gate = threading.Event()
    sent: list[str] = []

    def send(c: Claimed) -> None:
        if c.record.id == "a1":
            gate.wait(10)
        if c.record.id == "a2":
            raise RuntimeError("search server said no")
        sent.append(c.record.id)

    metrics = Metrics.create()
    sender = AlertSender(send, metrics=metrics)
    recs = [Claimed(AlertRecord(id=f"a{i}", contradiction="c", story="s", kind="new", status="pending", channel="slack"), (1, 1))
            for i in range(1, 5)]
    t0 = time.monotonic()
    for r in recs:
        sender.put(r)
    assert time.monotonic() - t0 < 0.5  # the caller (the story agent) never waits for Slack
    assert sender.queued() == {"a1", "a2", "a3", "a4"}
    assert metrics.registry.get_sample_value("crosswire_alert_queue") == 4
    assert not sender.join(0.2) and sent == []
    gate.set()
    with caplog.at_level(logging.ERROR, logger="crosswire.worker"):
        assert sender.join(10)
    assert sent == ["a1", "a3", "a4"]
    assert sender.queued() == frozenset()
    assert metrics.registry.get_sample_value("crosswire_alert_queue") == 0
    assert any("a2" in r.getMessage() and "outbox sweep" in r.getMessage() for r in caplog.records)


def test_after_a_failed_delivery_the_queue_behind_it_is_deferred_not_hammered(es_settings):
    """Slack is down: the first queued alert runs its retry policy and fails; the ones queued
    behind it are deferred to its next attempt without a post each. When Slack is back, the sweep
    sends every one of them, once."""
    from pipeline.notify import Claimed, claim, retry_due
    from pipeline.worker import StoryEffects

    hook = FlakyWebhook()
    s = es_settings.model_copy(update={"slack_webhook_url": SecretStr(hook.url), "slack_allowed_hosts": ("127.0.0.1",),
                                       "es_index_prefix": "queued3", "alert_max_retries": 1})
    client = make_client(s)
    ensure_templates(client, s)
    now = [T0]
    clock = lambda: now[0]  # noqa: E731
    alerter, metrics = make_alerter(s, sleep=lambda _d: None), Metrics.create()
    effects = StoryEffects(s, client=client, alerter=alerter, metrics=metrics, clock=clock)
    claims = []
    for i in range(3):
        c = _contradiction(1, (str(10 + i), str(20 + i))).model_copy(update={"id": f"c{i}"})
        got = claim(client, s, alerter, c, "Raid", "new", metrics=metrics, clock=clock, take_failed=False)
        assert isinstance(got, Claimed)
        claims.append(got)
    for got in claims:
        effects._send(got)
    first = _stored(client, s, claims[0].record.id)
    assert first["status"] == "failed" and first["attempts"] == 2 and hook.requests == 2  # one delivery: 1 + 1 retry
    for got in claims[1:]:
        rec = _stored(client, s, got.record.id)
        assert rec["status"] == "failed" and rec["attempts"] == 0 and "deferred" in rec["error"]
        assert rec["next_attempt"] == first["next_attempt"]
    assert metrics.registry.get_sample_value("crosswire_alerts_total", {"channel": "slack", "outcome": "deferred"}) == 2
    # a replay of the failed alert does not take it over: the sweep owns its retries
    again = claim(client, s, alerter, _contradiction(1, ("10", "20")).model_copy(update={"id": "c0"}), "Raid", "new",
                  metrics=metrics, clock=clock, take_failed=False)
    assert again is None
    hook.down = False
    now[0] = T0 + timedelta(hours=1)
    assert retry_due(client, s, alerter, metrics=metrics, clock=clock) == 3
    assert len(hook.accepted) == 3 and all(_stored(client, s, g.record.id)["status"] == "sent" for g in claims)
    hook.server.shutdown()


def test_alert_sender_stop_finishes_the_delivery_in_flight_and_sends_nothing_more():
    from pipeline.notify import Claimed
    from pipeline.types import AlertRecord
    from pipeline.worker import AlertSender

    started, gate = threading.Event(), threading.Event()
    finished: list[str] = []

    def send(c: Claimed) -> None:
        started.set()
        gate.wait(10)
        finished.append(c.record.id)

    sender = AlertSender(send)
    for i in range(3):
        sender.put(Claimed(AlertRecord(id=f"s{i}", contradiction="c", story="s", kind="new", status="pending", channel="slack"), (1, 1)))
    assert started.wait(5)
    threading.Timer(0.3, gate.set).start()
    left = sender.stop(5)
    assert finished == ["s0"]  # the one in flight completed (its outcome is stored), no other began
    assert left == 2 and not sender.alive()
    assert sender.queued() == frozenset()  # no sender thread: the outbox sweep may take them over
