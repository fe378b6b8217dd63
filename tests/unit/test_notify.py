"""Alert delivery end to end against the embedded search server and a local Slack Web API stand-in:
dedupe before sending, and updates threaded under the first alert when a bot token is configured."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                api.calls.append((self.headers.get("Authorization", ""), body))
                answer = {"ok": True, "ts": f"1600000000.{len(api.calls):06d}", "channel": body.get("channel")}
                if body.get("channel") == "#missing":
                    answer = {"ok": False, "error": "channel_not_found"}
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *a: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api"


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
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
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
