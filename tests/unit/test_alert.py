"""Alerters against a recording webhook server standing in for Slack."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from hypothesis import given, settings as hsettings
from hypothesis import strategies as st
from pydantic import SecretStr
from rich.console import Console

from pipeline.alert import (
    MAX_BLOCKS,
    MAX_FIELD_TEXT,
    MAX_FIELDS,
    MAX_HEADER_CHARS,
    MAX_SECTION_TEXT,
    AlertMessage,
    DeliveryResult,
    SlackWebhookAlerter,
    StdoutAlerter,
    WebhookConfigError,
    build_blocks,
    make_alerter,
    truncate,
)
from pipeline.settings import Settings
from pipeline.types import AlertRecord, Contradiction, Interval, Side, stable_id

SECRET_PATH = "/services/T000SECRET/B000SECRET/xoxSECRETtoken"
T0 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)


# ----------------------------------------------------------------------------------- fake Slack


class FakeSlack:
    """Records every POST; answers from a script of (status, headers) then 200 ``ok``."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.script: list[tuple[int, dict[str, str]]] = []
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with fake.lock:
                    fake.posts.append({"path": self.path, "json": json.loads(body)})
                    status, headers = fake.script.pop(0) if fake.script else (200, {})
                payload = b"ok" if status == 200 else b"rate_limited" if status == 429 else b"server_error"
                if status == 200 and self.path.endswith("/chat.postMessage"):  # the Web API answers JSON
                    payload = json.dumps({"ok": True, "ts": f"1700000000.{len(fake.posts):06d}", "channel": "C0TEST0001"}).encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}{SECRET_PATH}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def slack() -> Iterator[FakeSlack]:
    fake = FakeSlack()
    yield fake
    fake.close()


def _contradiction(n_sides: int = 2, quote_len: int = 60, quotes_per_side: int = 2) -> Contradiction:
    sides = tuple(
        Side(
            value=str(14 + 9 * i),
            interval=Interval(lo=14 + 9 * i, hi=14 + 9 * i),
            articles=(f"art-{i}",),
            outlets=(f"Outlet {i}",),
            attributed_to=(f"official {i}",),
            quotes=tuple(f"Quote {i}.{q} " + "x" * quote_len for q in range(quotes_per_side)),
            claim_ids=(f"c{i}",),
        )
        for i in range(n_sides)
    )
    return Contradiction(
        id=stable_id("story", "numeric", "detained:people@raid"),
        story="story",
        kind="numeric",
        about="detained:people@raid",
        sides=sides,
        confidence=0.83,
        first_seen=T0,
        last_seen=T0,
        internal=True,
    )


def _alerter(url: str, sleeps: list[float], **kw: Any) -> SlackWebhookAlerter:
    return SlackWebhookAlerter(SecretStr(url), allowed_hosts=("127.0.0.1",), sleep=sleeps.append, timeout_s=5, **kw)


def _all_strings(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)


# ------------------------------------------------------------------------------------ Block Kit


def _check_block_kit(payload: dict[str, Any]) -> None:
    """The structural rules Slack enforces on what we send."""
    assert isinstance(payload["text"], str) and payload["text"]
    blocks = payload["blocks"]
    assert 1 <= len(blocks) <= MAX_BLOCKS
    for b in blocks:
        assert b["type"] in {"header", "section", "divider", "context"}
        if b["type"] == "header":
            assert b["text"]["type"] == "plain_text" and 0 < len(b["text"]["text"]) <= MAX_HEADER_CHARS
        if b["type"] == "section":
            assert ("text" in b) or ("fields" in b)
            if "text" in b:
                assert b["text"]["type"] == "mrkdwn" and len(b["text"]["text"]) <= MAX_SECTION_TEXT
            for f in b.get("fields", []):
                assert f["type"] == "mrkdwn" and 0 < len(f["text"]) <= MAX_FIELD_TEXT
            assert len(b.get("fields", [])) <= MAX_FIELDS
        if b["type"] == "context":
            assert 1 <= len(b["elements"]) <= 10
    json.dumps(payload)


def test_blocks_show_title_kind_sides_and_context() -> None:
    c = _contradiction()
    payload = build_blocks(c, "Raid on militia HQ", "new")
    _check_block_kit(payload)
    blocks = payload["blocks"]
    assert blocks[0] == {"type": "header", "text": {"type": "plain_text", "text": "Raid on militia HQ", "emoji": False}}
    assert "Conflicting figures" in blocks[1]["text"]["text"] and "detained people (raid)" in blocks[1]["text"]["text"]
    fields = [f["text"] for b in blocks if "fields" in b for f in b["fields"]]
    assert len(fields) == len(c.sides)
    for side, text in zip(c.sides, fields, strict=True):
        assert text.startswith(f"*{side.value}*")
        assert side.outlets[0] in text and side.attributed_to[0] in text
        assert all(f"\n>{q}" in text for q in side.quotes)
    context = _all_strings(blocks[-1])
    assert "0.83" in context and "Internal dispute" in context and "2024-03-01 08:00 UTC" in context


@pytest.mark.parametrize("title", ["", "   ", "\n\t"])
def test_blank_titles_get_a_placeholder_header(title: str) -> None:
    payload = build_blocks(_contradiction(), title, "new")
    _check_block_kit(payload)
    assert payload["blocks"][0]["text"]["text"] == "Untitled story"


def test_update_blocks_say_version() -> None:
    c = _contradiction().model_copy(update={"version": 3})
    assert "version 3" in build_blocks(c, "T", "update")["blocks"][1]["text"]["text"]


def test_mrkdwn_control_characters_are_escaped() -> None:
    c = _contradiction()
    side = c.sides[0].model_copy(update={"quotes": ("<!channel> said 5 > 4 & more",)})
    payload = build_blocks(c.model_copy(update={"sides": (side, *c.sides[1:])}), "T", "new")
    text = _all_strings(payload)
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text and "5 &gt; 4 &amp; more" in text


def test_huge_contradictions_stay_within_slack_limits() -> None:
    c = _contradiction(n_sides=600, quote_len=5000, quotes_per_side=20)
    payload = build_blocks(c, "T" * 500, "new")
    _check_block_kit(payload)
    assert "…" in _all_strings(payload)
    assert "not shown" in _all_strings(payload["blocks"][-1])


@hsettings(max_examples=40, deadline=None)
@given(
    n_sides=st.integers(min_value=1, max_value=30),
    quote_len=st.integers(min_value=0, max_value=4000),
    quotes=st.integers(min_value=0, max_value=12),
    title=st.text(max_size=400),
)
def test_blocks_are_always_valid(n_sides: int, quote_len: int, quotes: int, title: str) -> None:
    _check_block_kit(build_blocks(_contradiction(n_sides, quote_len, quotes), title, "new"))


@given(st.text(max_size=300), st.integers(min_value=1, max_value=200))
def test_truncate_respects_limit(text: str, limit: int) -> None:
    out = truncate(text, limit)
    assert len(out) <= limit
    if len(" ".join(text.split())) <= limit:
        assert out == " ".join(text.split())
    else:
        assert out.endswith("…")


# -------------------------------------------------------------------------------------- delivery


def test_delivers_exactly_once_with_every_side(slack: FakeSlack) -> None:
    sleeps: list[float] = []
    c = _contradiction()
    result = _alerter(slack.url, sleeps).send(AlertMessage(c, "Raid on militia HQ", "new"))
    assert result == DeliveryResult("sent", "slack", 1)
    assert len(slack.posts) == 1 and slack.posts[0]["path"] == SECRET_PATH
    sent = _all_strings(slack.posts[0]["json"])
    assert "Raid on militia HQ" in sent
    for side in c.sides:
        assert side.value in sent and side.outlets[0] in sent
        assert all(q in sent for q in side.quotes)
    assert sleeps == []


def test_429_sleeps_retry_after_then_delivers_once(slack: FakeSlack) -> None:
    slack.script = [(429, {"Retry-After": "1"}), (429, {"Retry-After": "1"})]
    sleeps: list[float] = []
    result = _alerter(slack.url, sleeps).send(AlertMessage(_contradiction(), "T", "new"))
    assert result.status == "sent" and result.attempts == 3
    assert sleeps == [1.0, 1.0]
    assert len(slack.posts) == 3  # two refused, exactly one accepted
    assert slack.posts[0]["json"] == slack.posts[2]["json"]


def test_unusable_retry_after_falls_back_to_backoff(slack: FakeSlack) -> None:
    slack.script = [(429, {"Retry-After": "nan"}), (429, {}), (429, {"Retry-After": "100000"})]
    sleeps: list[float] = []
    result = _alerter(slack.url, sleeps, backoff_base_s=0.5, max_retry_after_s=30).send(AlertMessage(_contradiction(), "T", "new"))
    assert result.status == "sent"
    assert sleeps == [0.5, 1.0, 30.0]


def test_500_backs_off_then_delivers(slack: FakeSlack) -> None:
    slack.script = [(500, {}), (503, {})]
    sleeps: list[float] = []
    result = _alerter(slack.url, sleeps, backoff_base_s=0.5).send(AlertMessage(_contradiction(), "T", "new"))
    assert result.status == "sent" and len(slack.posts) == 3
    assert sleeps == [0.5, 1.0]


def test_gives_up_after_max_retries(slack: FakeSlack) -> None:
    slack.script = [(429, {"Retry-After": "2"})] * 10
    sleeps: list[float] = []
    result = _alerter(slack.url, sleeps, max_retries=2).send(AlertMessage(_contradiction(), "T", "new"))
    assert result.status == "failed" and result.attempts == 3 and len(slack.posts) == 3
    assert sleeps == [2.0, 2.0]
    assert "429" in (result.error or "")


def test_client_errors_are_not_retried(slack: FakeSlack) -> None:
    slack.script = [(404, {})]
    sleeps: list[float] = []
    result = _alerter(slack.url, sleeps).send(AlertMessage(_contradiction(), "T", "new"))
    assert result.status == "failed" and len(slack.posts) == 1 and sleeps == []


def test_connection_errors_retry_and_never_leak_the_url(caplog: pytest.LogCaptureFixture) -> None:
    sleeps: list[float] = []
    url = f"http://127.0.0.1:1{SECRET_PATH}"
    with caplog.at_level(logging.DEBUG):
        result = _alerter(url, sleeps, max_retries=1).send(AlertMessage(_contradiction(), "T", "new"))
    assert result.status == "failed" and result.attempts == 2 and len(sleeps) == 1
    assert "127.0.0.1" in (result.error or "")
    assert "SECRET" not in caplog.text and "SECRET" not in (result.error or "")


def test_webhook_url_never_logged(slack: FakeSlack, caplog: pytest.LogCaptureFixture) -> None:
    slack.script = [(429, {"Retry-After": "1"}), (500, {})]
    with caplog.at_level(logging.DEBUG):
        alerter = _alerter(slack.url, [])
        result = alerter.send(AlertMessage(_contradiction(), "T", "new"))
    assert result.status == "sent"
    assert any("httpx" in r.name for r in caplog.records)  # httpx did log its requests ...
    assert "SECRET" not in caplog.text  # ... but not the secret part of the URL
    assert "SECRET" not in repr(alerter)


def test_disallowed_host_is_refused_without_leaking_the_url() -> None:
    with pytest.raises(WebhookConfigError) as info:
        SlackWebhookAlerter(SecretStr(f"https://evil.example{SECRET_PATH}"), allowed_hosts=("hooks.slack.com",))
    assert "evil.example" in str(info.value) and "SECRET" not in str(info.value)


def test_plain_http_is_refused_except_for_loopback() -> None:
    with pytest.raises(WebhookConfigError, match="https"):
        SlackWebhookAlerter(SecretStr(f"http://hooks.slack.com{SECRET_PATH}"))
    SlackWebhookAlerter(SecretStr(f"https://hooks.slack.com{SECRET_PATH}")).close()


# ----------------------------------------------------------------------------------- stdout, table


def test_stdout_alerter_prints_sides() -> None:
    buf = io.StringIO()
    c = _contradiction()
    result = StdoutAlerter(Console(file=buf, width=200, color_system=None)).send(AlertMessage(c, "Raid on HQ", "new"))
    out = buf.getvalue()
    assert result == DeliveryResult("printed", "stdout", 1)
    assert "Raid on HQ" in out and all(s.value in out and s.outlets[0] in out for s in c.sides)


def test_stdout_alerter_bounds_a_side_with_hundreds_of_reports() -> None:
    # a wire story's side can carry hundreds of reports: the terminal shows a few distinct quotes
    # and names, and says how many more there are (rendering all of them stalled the worker)
    c = _contradiction(quotes_per_side=1)
    many = c.sides[0].model_copy(update={
        "quotes": tuple(f"Copy {i % 40} of the wire report." for i in range(400)),
        "outlets": tuple(f"outlet{i % 25}.example" for i in range(400)),
    })
    c = c.model_copy(update={"sides": (many, c.sides[1])})
    buf = io.StringIO()
    StdoutAlerter(Console(file=buf, width=200, color_system=None)).send(AlertMessage(c, "Raid on HQ", "update"))
    out = buf.getvalue()
    assert out.count("of the wire report") == 3
    assert "…and 37 more" in out  # 40 distinct quotes, 3 shown
    assert "+19 more" in out  # 25 distinct outlets, 6 shown
    assert c.sides[1].quotes[0][:20] in out  # the other side is still whole
    assert len(out.splitlines()) < 40


def test_make_alerter_picks_by_settings(slack: FakeSlack) -> None:
    assert isinstance(make_alerter(Settings(slack_webhook_url=None)), StdoutAlerter)
    picked = make_alerter(Settings(slack_webhook_url=slack.url, slack_allowed_hosts=("127.0.0.1",)))
    assert isinstance(picked, SlackWebhookAlerter)
    with pytest.raises(WebhookConfigError):
        make_alerter(Settings(slack_webhook_url=slack.url))  # 127.0.0.1 not allowed by default
    with pytest.raises(ValueError):
        make_alerter(Settings(), name="pager")


@pytest.mark.parametrize("name", ["slack", "stdout"])
def test_every_alerter_honours_the_contract(name: str, slack: FakeSlack) -> None:
    """The Alerter contract: one delivery per send, a DeliveryResult naming the alerter's channel."""
    settings = Settings(slack_webhook_url=slack.url, slack_allowed_hosts=("127.0.0.1",))
    alerter = make_alerter(settings, console=Console(file=io.StringIO()), sleep=lambda s: None, name=name)
    result = alerter.send(AlertMessage(_contradiction(), "T", "new"))
    assert result.ok and result.channel == alerter.channel and result.attempts == 1
    assert len(slack.posts) == (1 if name == "slack" else 0)


def test_settle_updates_the_outbox_record() -> None:
    rec = AlertRecord(id="a", contradiction="c", story="s", kind="new", status="pending", channel="slack", attempts=0)
    done = DeliveryResult("sent", "slack", 2).settle(rec, T0)
    assert (done.status, done.attempts, done.sent, done.error) == ("sent", 2, T0, None)
    failed = DeliveryResult("failed", "slack", 3, "HTTP 500").settle(rec, T0)
    assert (failed.status, failed.sent, failed.error) == ("failed", None, "HTTP 500")


def test_side_text_keeps_outlet_attribution_and_quote_of_each_report_together():
    from pipeline.alert import side_text
    from pipeline.types import Side, SideReport

    side = Side(
        value="19",
        articles=("a1", "a2"),
        reports=(
            SideReport(article="a1", outlet="Reuters", attributed_to="a PMF source", quote="A PMF source said 19 men had been detained."),
            SideReport(article="a2", outlet=None, attributed_to=None, quote="19 were detained."),
        ),
    )
    text = side_text(side)
    first = text.index("*Reuters*")
    assert text.index("a PMF source", first) < text.index("A PMF source said 19", first)
    assert "*a2*" in text and ">19 were detained." in text  # no outlet: the article id stands in


def test_rate_limiter_allows_a_burst_then_one_per_interval():
    from pipeline.alert import RateLimiter

    now = [0.0]
    slept: list[float] = []

    def sleep(d: float) -> None:
        slept.append(d)
        now[0] += d

    rl = RateLimiter(1.0, 3, clock=lambda: now[0], sleep=sleep)
    waits = [rl.acquire() for _ in range(6)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert all(abs(w - 1.0) < 1e-9 for w in waits[3:])
    now[0] += 10  # idle refills the bucket up to the burst, not beyond
    assert [rl.acquire() for _ in range(4)] == [0.0, 0.0, 0.0, 1.0]
    assert now[0] >= 3 + 10 + 1  # 6 messages in the first 3 s would break the rate


# ------------------------------------------------------------------------ metadata, digests, lookups


def test_bot_posts_carry_the_alert_id_as_metadata_and_webhooks_do_not(slack: FakeSlack) -> None:
    from pipeline.alert import METADATA_EVENT, SlackBotAlerter

    host = slack.url.split("/services")[0]
    bot = SlackBotAlerter(SecretStr("xoxb-t"), "#desk", api_url=host + "/api", allowed_hosts=("127.0.0.1",), sleep=lambda _d: None)
    result = bot.send(AlertMessage(_contradiction(), "T", "new", alert_id="al-1"))
    assert result.ok and result.ts == "1700000000.000001"
    assert slack.posts[0]["json"]["metadata"] == {"event_type": METADATA_EVENT, "event_payload": {"alert_id": "al-1"}}
    assert bot._channel_id == "C0TEST0001"  # learnt from the answer, for conversations.history
    hook = _alerter(slack.url, [])
    hook.send(AlertMessage(_contradiction(), "T", "new", alert_id="al-1"))
    assert "metadata" not in slack.posts[1]["json"]


def test_a_webhook_cannot_look_for_an_earlier_post_so_it_posts(slack: FakeSlack) -> None:
    """The documented window: an incoming webhook has no read API and no idempotency key."""
    hook = _alerter(slack.url, [])
    assert hook.find_posted("al-1", thread_ts=None, oldest=0.0).state == "unsupported"
    result = hook.send(AlertMessage(_contradiction(), "T", "new", alert_id="al-1", posted_since=T0))
    assert result.ok and not result.recovered and len(slack.posts) == 1


def _a_digest():
    from datetime import timedelta

    from pipeline.digest import build_digest

    c = _contradiction(3)
    return build_digest("dg", "story", "Raid", (T0, T0 + timedelta(minutes=10)), [("al-2", c), ("al-3", c)], {})


@pytest.mark.parametrize("name", ["slack", "stdout"])
def test_every_alerter_delivers_a_digest(name: str, slack: FakeSlack) -> None:
    settings = Settings(slack_webhook_url=slack.url, slack_allowed_hosts=("127.0.0.1",))
    buf = io.StringIO()
    alerter = make_alerter(settings, console=Console(file=buf, width=200), sleep=lambda s: None, name=name)
    digest = _a_digest()
    result = alerter.send(AlertMessage(None, "Raid", "digest", digest=digest, alert_id=digest.id))
    assert result.ok and result.channel == alerter.channel and result.attempts == 1
    if name == "slack":
        (post,) = slack.posts
        _check_block_kit(post["json"])
        assert post["json"]["text"].startswith("Digest of 2 updates in Raid")
    else:
        assert "DIGEST" in buf.getvalue() and "2 updates" in buf.getvalue()
