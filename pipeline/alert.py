"""Alerters: deliver one contradiction alert (or one digest of held updates) to Slack (Block Kit
over an incoming webhook, or ``chat.postMessage`` with a bot token) or to the terminal.

Plug-in shape: the :class:`Alerter` protocol, one class per channel, and the :data:`ALERTERS`
name-to-class table that :func:`make_alerter` picks from (Slack when a webhook URL is configured,
stdout otherwise). Dedupe is not done here: the caller claims the alert in the outbox
(:func:`pipeline.search.claim_alert`) before calling :meth:`Alerter.send`, and stores the
:class:`DeliveryResult` afterwards (:meth:`DeliveryResult.settle` + :func:`pipeline.search.finish_alert`).

The webhook URL is a secret (whoever has it can post to the channel): it is kept as a ``SecretStr``,
and only its host ever appears in a log line or an error message.

Duplicate posts. A post whose outcome is unknown (a timeout, a reset connection or a 5xx after Slack
may have accepted it, or a worker killed mid-delivery) is the one way an outbox can post twice. With a
bot token every message carries Slack message metadata (``event_type`` :data:`METADATA_EVENT`,
``event_payload.alert_id``), and before re-posting such a message :class:`SlackBotAlerter` looks for
it in the channel's recent history (``conversations.history``) or, for a threaded message, in the
thread (``conversations.replies``); when it is there the delivery counts as sent
(``DeliveryResult.recovered``). An incoming webhook has no idempotency key and no read API, so the
webhook alerter cannot do this: there, such a message may be posted twice.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import httpx
from pydantic import SecretStr
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from pipeline.digest import Digest, DigestEntry
from pipeline.settings import Settings
from pipeline.types import AlertRecord, Contradiction, Side

log = logging.getLogger(__name__)

AlertKind = Literal["new", "update", "digest"]

#: Slack message metadata ``event_type`` of every bot-token post; ``event_payload`` is ``{"alert_id": ...}``.
METADATA_EVENT = "crosswire_alert"

# Slack Block Kit limits (https://api.slack.com/reference/block-kit/blocks)
MAX_BLOCKS = 50
MAX_HEADER_CHARS = 150
MAX_SECTION_TEXT = 3000
MAX_FIELD_TEXT = 2000
MAX_FIELDS = 10
MAX_CONTEXT_ELEMENTS = 10
MAX_QUOTE_CHARS = 280  # editorial: a quote is evidence, not the article
#: The terminal alert shows this many distinct quotes and names per side, then "…and N more": a
#: side of a wire story can carry hundreds of reports, and rendering them all (rich, under the
#: GIL) stalled the worker's indexing for seconds.
MAX_TERMINAL_QUOTES = 3
MAX_TERMINAL_OUTLETS = 6
MAX_FALLBACK_CHARS = 3000

_KIND_LABEL = {
    "numeric": "Conflicting figures",
    "exclusive": "Conflicting accounts",
    "denial": "Claim denied",
}


@dataclass(frozen=True)
class AlertMessage:
    """What to announce: a contradiction, the title of its story, and whether it is new or an
    update; or (``kind == "digest"``, ``contradiction`` None) a :class:`~pipeline.digest.Digest`."""

    contradiction: Contradiction | None
    story_title: str
    kind: AlertKind
    thread_ts: str | None = None  # post as a reply in this Slack thread (bot-token delivery)
    #: Asked before every retry: False means another worker took the alert over, so stop. The
    #: outbox renews this worker's claim when it answers True.
    still_mine: Callable[[], bool] | None = None
    #: The outbox id; a bot-token post carries it as message metadata, to be found again.
    alert_id: str | None = None
    #: Set when an earlier attempt of this alert may have reached Slack (its outcome is unknown):
    #: posts from this time on are looked up first, and a match counts as delivered.
    posted_since: datetime | None = None
    digest: Digest | None = None

    def __post_init__(self) -> None:
        if (self.kind == "digest") != (self.digest is not None) or (self.contradiction is None) != (self.digest is not None):
            raise ValueError("an AlertMessage carries a contradiction (new, update) or a digest (digest), not both")


@dataclass(frozen=True)
class DeliveryResult:
    """The outcome of one :meth:`Alerter.send`. ``error`` never contains the webhook URL."""

    status: Literal["sent", "printed", "failed"]
    channel: str
    attempts: int
    error: str | None = None
    ts: str | None = None  # the Slack message timestamp, when the API returns one
    #: True when nothing was posted because an earlier attempt was found already in Slack.
    recovered: bool = False

    @property
    def ok(self) -> bool:
        return self.status != "failed"

    def settle(self, record: AlertRecord, at: datetime) -> AlertRecord:
        """The outbox record after this delivery (``sent`` is ``at`` when delivered)."""
        return record.model_copy(
            update={
                "status": self.status,
                "channel": self.channel,
                "attempts": record.attempts + self.attempts,
                "error": self.error,
                "sent": at if self.ok else record.sent,
                "ts": self.ts or record.ts,
            }
        )


#: DeliveryResult.error when a delivery stopped because another worker took the alert over.
TAKEN_OVER = "taken over by another worker"


class Alerter(Protocol):
    channel: str

    def send(self, message: AlertMessage) -> DeliveryResult:
        """Deliver ``message`` once. Never raises for a delivery failure: the result says so."""
        ...


# ------------------------------------------------------------------------------------ Block Kit


def truncate(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, ending in "…" when cut."""
    text = " ".join(text.split())  # quotes come from article text: newlines would break the > quote
    return text if len(text) <= limit else text[: max(0, limit - 1)].rstrip() + "…"


def escape(text: str) -> str:
    """Slack mrkdwn escaping: only ``&``, ``<`` and ``>`` are control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def describe_about(about: str) -> str:
    """``"detained:people@raid"`` -> ``"detained people (raid)"``; other shapes are returned as they are."""
    quantity, _, event = about.partition("@")
    predicate, _, theme = quantity.partition(":")
    words = " ".join(w for w in (predicate, theme) if w)
    if event and event != "main" and event != predicate:
        event = event.split("@", 1)[-1]
        return f"{words} ({event})"
    return words or about


def side_text(side: Side, limit: int = MAX_FIELD_TEXT) -> str:
    """One side as mrkdwn: the value in bold, then each report as its outlet, who said it, and the
    quoted sentence (a ``>`` quote), shortened with "…" and cut at whole reports to stay within
    ``limit``. Sides without per-report detail list their outlets, attributions and quotes."""
    lines = [f"*{escape(truncate(side.value, 200))}*"]
    entries: list[str] = []
    if side.reports:
        for r in side.reports:
            who = escape(truncate(r.outlet or r.article, 120))
            said = f" — _{escape(truncate(r.attributed_to, 160))}_" if r.attributed_to else ""
            entries.append(f"\n*{who}*{said}\n>{escape(truncate(r.quote, MAX_QUOTE_CHARS))}")
    else:
        if side.outlets:
            lines.append("*" + escape(truncate(", ".join(side.outlets), 300)) + "*")
        if side.attributed_to:
            lines.append("_according to " + escape(truncate(", ".join(side.attributed_to), 300)) + "_")
        entries = ["\n>" + escape(truncate(q, MAX_QUOTE_CHARS)) for q in side.quotes]
    text = "\n".join(lines)
    for i, entry in enumerate(entries):
        more = f"\n_…and {len(entries) - i} more_"
        if len(text) + len(entry) + len(more) > limit:
            text += more if len(text) + len(more) <= limit else ""
            break
        text += entry
    return text[:limit]


def _fallback(c: Contradiction, story_title: str, kind: AlertKind) -> str:
    head = "New contradiction" if kind == "new" else "Updated contradiction"
    values = " vs ".join(s.value for s in c.sides)
    return escape(truncate(f"{head} in {story_title}: {describe_about(c.about)}: {values}", MAX_FALLBACK_CHARS))


def build_blocks(contradiction: Contradiction, story_title: str, kind: AlertKind) -> dict[str, Any]:
    """A Slack Block Kit payload ``{"text": fallback, "blocks": [...]}`` for one contradiction.

    Layout: a header with the story title; a line saying what kind of dispute it is and about what;
    the sides side by side (sections of at most 10 fields, one field per side); a context line with
    confidence, first/last seen and whether the dispute stands inside one article. Within Slack's
    limits by construction (header 150 chars, field 2000, section text 3000, 50 blocks): text is
    shortened with "…" and sides beyond what fits are counted, not shown."""
    c = contradiction
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": truncate(story_title, MAX_HEADER_CHARS) or "Untitled story", "emoji": False}},
    ]
    head = "New contradiction" if kind == "new" else f"Updated contradiction (version {c.version})"
    line = f"*{head}* · {_KIND_LABEL.get(c.kind, c.kind)} about *{escape(describe_about(c.about))}*"
    blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": truncate(line, MAX_SECTION_TEXT)}})

    # 2 header-ish blocks before, divider + context after: the rest is for sides
    room = MAX_BLOCKS - len(blocks) - 2
    chunks = [c.sides[i : i + MAX_FIELDS] for i in range(0, len(c.sides), MAX_FIELDS)]
    shown = chunks[:room]
    for chunk in shown:
        blocks.append({"type": "section", "fields": [{"type": "mrkdwn", "text": side_text(s)} for s in chunk]})
    hidden = sum(len(ch) for ch in chunks[room:])
    blocks.append({"type": "divider"})

    context = [
        f"Confidence *{c.confidence:.2f}*",
        f"First seen {_when(c.first_seen)}",
        f"Last seen {_when(c.last_seen)}",
        "Internal dispute (one article)" if c.internal else "Across reports",
        f"{len(c.sides)} sides" + (f", {hidden} not shown" if hidden else ""),
    ]
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": t} for t in context[:MAX_CONTEXT_ELEMENTS]]})
    return {"text": _fallback(c, story_title, kind), "blocks": blocks}


def _when(dt: datetime | None) -> str:
    if dt is None:
        return "unknown"
    if dt.tzinfo is None:  # naive times are UTC throughout the pipeline (see documents.iso)
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _lines_within(lines: Sequence[str], limit: int, what: str) -> str:
    """``lines`` joined by newlines, cut at whole lines (each already short) to stay within
    ``limit``; what was cut is counted ("_…and 3 more changes_")."""
    text = ""
    for i, line in enumerate(lines):
        candidate = f"{text}\n{line}" if text else line
        more = f"\n_…and {len(lines) - i} more {what}_"
        if len(candidate) + (len(more) if i + 1 < len(lines) else 0) > limit:
            return (text + more) if len(text) + len(more) <= limit else text[:limit]
        text = candidate
    return text


def digest_entry_text(entry: DigestEntry, limit: int = MAX_SECTION_TEXT) -> str:
    """One contradiction of a digest as mrkdwn: what it is about, the versions it went through,
    each new value with its sources and each known value's added sources, then where it stands."""
    c = entry.contradiction
    versions = f"version {entry.from_version} → {c.version}" if entry.from_version else f"version {c.version}"
    lines = [truncate(f"*{_KIND_LABEL.get(c.kind, c.kind)}* about *{escape(describe_about(c.about))}* · {versions}", 400)]
    changes = []
    for ch in entry.changes:
        value = escape(truncate(ch.value, 200))
        who = escape(truncate(", ".join(ch.sources), 500))
        if ch.new:
            changes.append(f"• new value *{value}*" + (f" — {who}" if who else ""))
        else:
            changes.append(f"• *{value}* now also from {who}")
    if not changes:
        changes.append("• no new value or source")
    now = "Now: " + escape(truncate(" vs ".join(s.value for s in c.sides), 600))
    return _lines_within([*lines, *changes], limit - len(now) - 1, "changes") + "\n" + now


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def build_digest_blocks(digest: Digest) -> dict[str, Any]:
    """A Slack Block Kit payload for a digest: a header with the story title, a line saying how
    many updates to how many contradictions it sums up and over which window, one section per
    contradiction (:func:`digest_entry_text`), and a context line. Within Slack's limits by
    construction; contradictions beyond what fits are counted, not shown."""
    n, m = digest.updates, len(digest.entries)
    updates, contradictions = _count(n, "update"), _count(m, "contradiction")
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": truncate(digest.story_title, MAX_HEADER_CHARS) or "Untitled story", "emoji": False}},
    ]
    line = f"*Digest* · {updates} to {contradictions}, held from {_when(digest.window_start)} to {_when(digest.window_end)}"
    blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": truncate(line, MAX_SECTION_TEXT)}})
    room = MAX_BLOCKS - len(blocks) - 2
    shown = digest.entries[:room]
    for entry in shown:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": digest_entry_text(entry)}})
    hidden = len(digest.entries) - len(shown)
    blocks.append({"type": "divider"})
    context = [f"{updates} held while the story moved fast", contradictions + (f", {hidden} not shown" if hidden else "")]
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": t} for t in context]})
    summary = "; ".join(f"{describe_about(e.contradiction.about)}: " + " vs ".join(s.value for s in e.contradiction.sides)
                        for e in digest.entries)
    fallback = escape(truncate(f"Digest of {updates} in {digest.story_title}: {summary}", MAX_FALLBACK_CHARS))
    return {"text": fallback, "blocks": blocks}


def message_payload(message: AlertMessage) -> dict[str, Any]:
    """The Block Kit payload of ``message``: a digest, or one contradiction."""
    if message.digest is not None:
        return build_digest_blocks(message.digest)
    assert message.contradiction is not None  # AlertMessage.__post_init__
    return build_blocks(message.contradiction, message.story_title, message.kind)


# ---------------------------------------------------------------------------------- Slack webhook

#: Messages per page, and pages at most, read when looking for an earlier post of an alert: a
#: bounded look, newest first (history) or from ``oldest`` on (thread replies).
HISTORY_PAGE = 100
HISTORY_PAGES = 3
#: Slack's clock and ours may disagree, and a post lands a little after it was sent: look this
#: much further back than the earliest time the earlier attempt could have been made.
HISTORY_SKEW_S = 300.0


@dataclass(frozen=True)
class Lookup:
    """Whether an alert's message is already in Slack. ``found`` (with its ``ts``), ``absent``,
    ``unknown`` (the look failed: posting could duplicate it), ``refused`` (the API will not say,
    e.g. a missing ``channels:history`` scope: post, as without the look) or ``unsupported``."""

    state: Literal["found", "absent", "unknown", "refused", "unsupported"]
    ts: str | None = None
    error: str | None = None


class WebhookConfigError(ValueError):
    """The webhook URL is unusable (bad scheme or a host not in ``slack_allowed_hosts``)."""


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_webhook(url: str, allowed_hosts: Sequence[str]) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        raise WebhookConfigError("slack webhook URL is not a valid URL") from None
    host = (parsed.host or "").lower()
    allowed = {h.lower() for h in allowed_hosts}
    if host not in allowed:
        raise WebhookConfigError(f"slack webhook host {host or '?'!r} is not in slack_allowed_hosts {sorted(allowed)}")
    # plain http would put the secret on the wire; only a local test server may use it
    if parsed.scheme != "https" and not (parsed.scheme == "http" and _is_loopback(host)):
        raise WebhookConfigError(f"slack webhook for host {host!r} must use https")
    return parsed


class _RedactSecrets(logging.Filter):
    """Replaces registered secrets in log records. httpx logs every request URL at INFO, and a
    webhook URL is a credential, so the URL's path is redacted wherever httpx would log it."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            redacted = message
            for secret in self.secrets:
                redacted = redacted.replace(secret, "/<redacted>")
            if redacted != message:
                # args=() rather than None: some formatters (mode's) iterate over args
                record.msg, record.args = redacted.replace("%", "%%"), ()
        return True


_REDACT = _RedactSecrets()
for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).addFilter(_REDACT)


class RateLimiter:
    """A token bucket: at most ``rate`` messages per second, ``burst`` at once. ``acquire`` sleeps
    (through the injected ``sleep``) until a token is free; time comes from the injected ``clock``."""

    def __init__(self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.rate, self.burst = rate, burst
        self._clock, self._sleep = clock, sleep
        self._tokens = float(burst)
        self._at = clock()
        self._lock = threading.Lock()  # a worker's sender thread and its outbox sweep share it

    def acquire(self) -> float:
        """Take one token; returns how long it waited. Thread-safe: concurrent callers queue."""
        with self._lock:
            return self._acquire()

    def _acquire(self) -> float:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        waited = 0.0
        if self._tokens < 1.0:
            waited = (1.0 - self._tokens) / self.rate
            self._sleep(waited)
            self._tokens, self._at = 1.0, self._clock()  # the wait refilled exactly one token
        self._tokens -= 1.0
        return waited


def _delivery_options(settings: Settings, sleep: Callable[[float], None]) -> dict[str, Any]:
    """The retry, timeout, host and rate options both Slack alerters take from settings."""
    return {
        "allowed_hosts": settings.slack_allowed_hosts,
        "max_retries": settings.alert_max_retries,
        "timeout_s": settings.alert_timeout_s,
        "sleep": sleep,
        "limiter": RateLimiter(settings.alert_rate_per_s, settings.alert_burst, sleep=sleep),
        "max_retry_after_s": settings.alert_max_wait_s,
        "backoff_cap_s": settings.alert_max_wait_s,
    }


class SlackWebhookAlerter(Alerter):
    """Posts Block Kit messages to a Slack incoming webhook.

    Retries: HTTP 429 sleeps for ``Retry-After`` seconds (through the injected ``sleep``), 5xx,
    timeouts and connection errors back off exponentially; both count against ``max_retries`` so a
    rate-limited webhook cannot loop forever. Other 4xx answers (bad payload, revoked hook) fail at
    once. The URL is checked at construction: https (http only to a loopback test server) and a
    host in ``allowed_hosts``."""

    channel = "slack"

    def __init__(
        self,
        url: SecretStr,
        *,
        allowed_hosts: Sequence[str] = ("hooks.slack.com",),
        max_retries: int = 5,
        timeout_s: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
        backoff_base_s: float = 1.0,
        backoff_cap_s: float = 60.0,
        max_retry_after_s: float = 60.0,
        client: httpx.Client | None = None,
        limiter: RateLimiter | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        parsed = _check_webhook(url.get_secret_value(), allowed_hosts)
        self.limiter = limiter
        self._wall = wall  # epoch seconds; bounds the look for an earlier post (bot token)
        self._url = url
        self.host = parsed.host
        self.max_retries = max_retries
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.max_retry_after_s = max_retry_after_s
        self._sleep = sleep
        self._client = client or httpx.Client(timeout=timeout_s, follow_redirects=False)
        path = parsed.raw_path.decode("ascii", "replace")
        self._secret_path = path if path not in ("", "/") else None
        if self._secret_path:
            _REDACT.secrets.add(self._secret_path)

    @classmethod
    def from_settings(
        cls, settings: Settings, *, console: Console | None = None, sleep: Callable[[float], None] = time.sleep
    ) -> SlackWebhookAlerter:
        if settings.slack_webhook_url is None:
            raise WebhookConfigError("slack alerter needs slack_webhook_url (CROSSWIRE_SLACK_WEBHOOK_URL)")
        return cls(
            settings.slack_webhook_url,
            **_delivery_options(settings, sleep),
        )

    def __repr__(self) -> str:
        return f"SlackWebhookAlerter(host={self.host!r})"

    def close(self) -> None:
        self._client.close()

    def _redact(self, text: str) -> str:
        return text.replace(self._secret_path, "/<redacted>") if self._secret_path else text

    def _backoff(self, attempt: int) -> float:
        return min(self.backoff_cap_s, self.backoff_base_s * 2 ** (attempt - 1))

    def _retry_after(self, response: httpx.Response, attempt: int) -> float:
        raw = response.headers.get("retry-after", "")
        try:
            seconds = float(raw)
        except ValueError:  # missing, or an HTTP date (Slack sends seconds)
            return self._backoff(attempt)
        if not math.isfinite(seconds):
            return self._backoff(attempt)
        return min(max(seconds, 0.0), self.max_retry_after_s)

    def find_posted(self, alert_id: str, *, thread_ts: str | None, oldest: float) -> Lookup:
        """Look for the message of ``alert_id`` posted since ``oldest`` (epoch seconds). An incoming
        webhook has no way to: ``unsupported``."""
        return Lookup("unsupported")

    def _recovered(self, alert_id: str, found: Lookup, attempts: int) -> DeliveryResult:
        log.warning("slack %s: alert %s was already posted (ts %s) by an earlier attempt; not posting it again",
                    self.host, alert_id, found.ts, extra={"alert": alert_id})
        return DeliveryResult("sent", self.channel, attempts, ts=found.ts, recovered=True)

    def post(
        self,
        payload: dict[str, Any],
        still_mine: Callable[[], bool] | None = None,
        *,
        alert_id: str | None = None,
        posted_since: datetime | None = None,
        thread_ts: str | None = None,
    ) -> DeliveryResult:
        """Post one JSON payload with the retry policy above. Before each retry ``still_mine`` (if
        given) is asked whether this worker still owns the alert; if not, nothing more is posted.

        With ``alert_id`` (and an alerter that can look, see :meth:`find_posted`), a message that
        may already be in Slack is looked for instead of posted again: first when ``posted_since``
        says an earlier delivery may have landed, and before each retry that follows an attempt
        with an unknown outcome (a timeout or reset after the request was sent, or a 5xx). Found
        means delivered; a look that fails stops the delivery (``failed``: the outbox retries it
        later) rather than risk a second post."""
        error = "not attempted"
        attempts = 0
        uncertain = False  # the last attempt may have been posted although it did not say so
        started = self._wall()
        if alert_id is not None and posted_since is not None:
            found = self.find_posted(alert_id, thread_ts=thread_ts, oldest=posted_since.timestamp())
            if found.state == "found":
                return self._recovered(alert_id, found, 0)
            if found.state == "unknown":
                error = f"could not check whether an earlier attempt was posted: {found.error}"
                log.warning("slack %s: alert %s: %s; will retry later", self.host, alert_id, error, extra={"alert": alert_id})
                return DeliveryResult("failed", self.channel, 0, error)  # 0: nothing was posted
        for attempt in range(1, self.max_retries + 2):
            if attempt > 1 and still_mine is not None and not still_mine():
                log.warning("slack %s: alert taken over by another worker; stopping after %d attempt(s)", self.host, attempts)
                return DeliveryResult("failed", self.channel, attempts, TAKEN_OVER)
            if attempt > 1 and uncertain and alert_id is not None:
                found = self.find_posted(alert_id, thread_ts=thread_ts, oldest=started)
                if found.state == "found":
                    return self._recovered(alert_id, found, attempts)
                if found.state == "unknown":
                    error = f"{error}; could not check whether it was posted: {found.error}"
                    log.warning("slack %s: alert %s: %s; will retry later", self.host, alert_id, error, extra={"alert": alert_id})
                    return DeliveryResult("failed", self.channel, attempts, error)
            attempts = attempt
            if self.limiter is not None:
                self.limiter.acquire()
            try:
                response = self._client.post(self._url.get_secret_value(), json=payload)
            except httpx.TransportError as exc:  # timeouts, refused or reset connections
                # the exception text may quote the URL, so only its type is kept
                error = f"{type(exc).__name__} posting to {self.host}"
                delay = self._backoff(attempt)
                # a refused connection never carried the request; anything later may have
                uncertain = not isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))
            except httpx.HTTPError as exc:  # not a network problem: retrying will not help
                error = f"{type(exc).__name__} posting to {self.host}"
                log.error("slack webhook %s: %s", self.host, error)
                return DeliveryResult("failed", self.channel, attempts, error)
            else:
                status = response.status_code
                if 200 <= status < 300:
                    return self._accepted(response, attempts)
                body = self._redact(truncate(response.text, 200))
                error = f"HTTP {status} from {self.host}: {body}"
                uncertain = status >= 500  # a 429 or 4xx was refused; a 5xx may have been posted
                if status == 429:
                    delay = self._retry_after(response, attempt)
                elif status >= 500:
                    delay = self._backoff(attempt)
                else:
                    log.error("slack webhook %s refused the alert: HTTP %d %s", self.host, status, body)
                    return DeliveryResult("failed", self.channel, attempts, error)
            if attempt > self.max_retries:
                break
            log.warning("slack webhook %s: %s; retry %d/%d in %.1fs", self.host, error, attempt, self.max_retries, delay)
            self._sleep(delay)
        log.error("slack webhook %s: giving up after %d attempt(s): %s", self.host, attempts, error)
        return DeliveryResult("failed", self.channel, attempts, error)

    def _accepted(self, response: httpx.Response, attempts: int) -> DeliveryResult:
        """A 2xx answer. Incoming webhooks answer a bare ``ok``."""
        return DeliveryResult("sent", self.channel, attempts)

    def send(self, message: AlertMessage) -> DeliveryResult:
        # no alert_id: an incoming webhook cannot be asked what it already posted
        return self.post(message_payload(message), message.still_mine)


_CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{6,}")


class SlackBotAlerter(SlackWebhookAlerter):
    """Posts through the Web API's ``chat.postMessage`` with a bot token, so that updates of a
    contradiction go into the thread of its first alert (``AlertMessage.thread_ts``). Same retry
    policy as the webhook; the Web API's ``{"ok": false, "error": ...}`` answers are failures, and
    its ``ratelimited`` answer comes as HTTP 429 with ``Retry-After``.

    Every post carries message metadata naming its alert, and :meth:`find_posted` looks for it
    (``conversations.history``, or ``conversations.replies`` in a thread; scopes
    ``channels:history``/``groups:history``), so that a message whose first delivery may have landed
    is not posted twice. Those methods take a channel ID, not a name: with a name in
    ``slack_channel`` the ID is learnt from the first post's answer, and until then a look is
    refused by Slack and the message is posted (as without the look)."""

    channel = "slack"

    def __init__(self, token: SecretStr, slack_channel: str, *, api_url: str = "https://slack.com/api", **kwargs: Any) -> None:
        url = SecretStr(api_url.rstrip("/") + "/chat.postMessage")
        timeout = kwargs.pop("timeout_s", 10.0)
        client = kwargs.pop("client", None) or httpx.Client(
            timeout=timeout, follow_redirects=False, headers={"Authorization": f"Bearer {token.get_secret_value()}"}
        )
        super().__init__(url, client=client, **kwargs)
        self._secret_path = None  # the API path is not a secret; the token travels in a header
        self._api = api_url.rstrip("/")
        self.slack_channel = slack_channel
        self._channel_id: str | None = slack_channel if _CHANNEL_ID.fullmatch(slack_channel) else None

    @classmethod
    def from_settings(
        cls, settings: Settings, *, console: Console | None = None, sleep: Callable[[float], None] = time.sleep
    ) -> SlackBotAlerter:
        if settings.slack_bot_token is None or not settings.slack_channel:
            raise WebhookConfigError("slack-bot alerter needs CROSSWIRE_SLACK_BOT_TOKEN and CROSSWIRE_SLACK_CHANNEL")
        if not _CHANNEL_ID.fullmatch(settings.slack_channel):
            log.warning("CROSSWIRE_SLACK_CHANNEL %r is not a channel ID (C...): until the first post tells it, an alert "
                        "re-sent after a crash cannot be checked against the channel first", settings.slack_channel)
        return cls(
            settings.slack_bot_token,
            settings.slack_channel,
            api_url=settings.slack_api_url,
            **_delivery_options(settings, sleep),
        )

    def __repr__(self) -> str:
        return f"SlackBotAlerter(host={self.host!r}, channel={self.slack_channel!r})"

    def _accepted(self, response: httpx.Response, attempts: int) -> DeliveryResult:
        try:
            body = response.json()
        except ValueError:
            return DeliveryResult("failed", self.channel, attempts, f"non-JSON answer from {self.host}")
        if not body.get("ok"):
            return DeliveryResult("failed", self.channel, attempts, f"slack API error: {truncate(str(body.get('error')), 100)}")
        if isinstance(body.get("channel"), str) and _CHANNEL_ID.fullmatch(body["channel"]):
            self._channel_id = body["channel"]  # history and replies need the ID, not a name
        return DeliveryResult("sent", self.channel, attempts, ts=str(body.get("ts") or "") or None)

    def _api_get(self, method: str, params: dict[str, str], tries: int = 3) -> dict[str, Any] | Lookup:
        """One read of the Web API, retrying 429 (``Retry-After``), 5xx and network errors a few
        times. Returns the JSON answer, or an ``unknown`` :class:`Lookup` saying why there is none."""
        error = "not attempted"
        for attempt in range(1, tries + 1):
            try:
                response = self._client.get(f"{self._api}/{method}", params=params)
            except httpx.HTTPError as exc:
                error, delay = f"{type(exc).__name__} calling {method} on {self.host}", self._backoff(attempt)
            else:
                if response.status_code == 429:
                    error, delay = f"HTTP 429 from {method}", self._retry_after(response, attempt)
                elif response.status_code >= 500:
                    error, delay = f"HTTP {response.status_code} from {method}", self._backoff(attempt)
                elif response.status_code >= 300:
                    return Lookup("unknown", error=f"HTTP {response.status_code} from {method}")
                else:
                    try:
                        answer = response.json()
                    except ValueError:
                        return Lookup("unknown", error=f"non-JSON answer from {method}")
                    return answer if isinstance(answer, dict) else Lookup("unknown", error=f"unexpected answer from {method}")
            if attempt < tries:
                self._sleep(delay)
        return Lookup("unknown", error=error)

    def find_posted(self, alert_id: str, *, thread_ts: str | None, oldest: float) -> Lookup:
        """Look for this app's message carrying ``alert_id`` in its metadata, posted since
        ``oldest`` (less :data:`HISTORY_SKEW_S`): in the thread ``thread_ts`` when given, then in
        the channel (an earlier attempt may have gone out before the thread was known). Each look
        reads at most :data:`HISTORY_PAGES` pages of :data:`HISTORY_PAGE` messages."""
        if thread_ts:
            found = self._find_in("conversations.replies", alert_id, oldest, thread_ts)
            if found.state != "absent":
                return found
        return self._find_in("conversations.history", alert_id, oldest, None)

    def _find_in(self, method: str, alert_id: str, oldest: float, thread_ts: str | None) -> Lookup:
        params = {
            "channel": self._channel_id or self.slack_channel,
            "include_all_metadata": "true",
            "limit": str(HISTORY_PAGE),
            "oldest": f"{max(0.0, oldest - HISTORY_SKEW_S):.6f}",
            "inclusive": "true",
        }
        if thread_ts:
            params["ts"] = thread_ts
        for _ in range(HISTORY_PAGES):
            answer = self._api_get(method, params)
            if isinstance(answer, Lookup):
                return answer
            if not answer.get("ok"):
                error = truncate(str(answer.get("error")), 100)
                log.warning("slack %s refused (%s): cannot check whether alert %s was posted already; posting it",
                            method, error, alert_id, extra={"alert": alert_id})
                return Lookup("refused", error=f"slack API error: {error}")
            for message in answer.get("messages") or ():
                metadata = message.get("metadata") if isinstance(message, dict) else None
                if not isinstance(metadata, dict) or metadata.get("event_type") != METADATA_EVENT:
                    continue
                payload = metadata.get("event_payload")
                if isinstance(payload, dict) and payload.get("alert_id") == alert_id:
                    return Lookup("found", ts=str(message.get("ts") or "") or None)
            cursor = (answer.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return Lookup("absent")
            params["cursor"] = cursor
        log.warning("slack %s: alert %s not among the last %d messages looked at; posting it", method, alert_id,
                    HISTORY_PAGE * HISTORY_PAGES, extra={"alert": alert_id})
        return Lookup("absent")

    def send(self, message: AlertMessage) -> DeliveryResult:
        payload = {"channel": self.slack_channel, **message_payload(message)}
        if message.thread_ts:
            payload["thread_ts"] = message.thread_ts
        if message.alert_id:
            payload["metadata"] = {"event_type": METADATA_EVENT, "event_payload": {"alert_id": message.alert_id}}
        return self.post(payload, message.still_mine, alert_id=message.alert_id, posted_since=message.posted_since,
                         thread_ts=message.thread_ts)


# ------------------------------------------------------------------------------------------ stdout


def _first(items: Sequence[str], n: int) -> str:
    """The first ``n`` distinct items joined by commas, then "+K more" for the rest."""
    unique = list(dict.fromkeys(items))
    text = ", ".join(unique[:n])
    return text + (f" +{len(unique) - n} more" if len(unique) > n else "")


class StdoutAlerter(Alerter):
    """Prints alerts to the terminal (rich) when no webhook is configured."""

    channel = "stdout"

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console()

    @classmethod
    def from_settings(
        cls, settings: Settings, *, console: Console | None = None, sleep: Callable[[float], None] = time.sleep
    ) -> StdoutAlerter:
        return cls(console)

    def send(self, message: AlertMessage) -> DeliveryResult:
        if message.digest is not None:
            return self._send_digest(message.digest)
        c = message.contradiction
        assert c is not None  # AlertMessage.__post_init__
        table = Table(show_header=True, header_style="bold", expand=True)
        table.add_column("value", max_width=28, overflow="fold")
        table.add_column("reported by")
        table.add_column("quotes")
        for side in c.sides:
            who = _first(side.outlets, MAX_TERMINAL_OUTLETS)
            if side.attributed_to:
                who += ("\n" if who else "") + "according to " + _first(side.attributed_to, MAX_TERMINAL_OUTLETS)
            quotes = [f"“{truncate(q, MAX_QUOTE_CHARS)}”" for q in dict.fromkeys(side.quotes)]
            shown = "\n".join(quotes[:MAX_TERMINAL_QUOTES])
            if len(quotes) > MAX_TERMINAL_QUOTES:
                shown += f"\n…and {len(quotes) - MAX_TERMINAL_QUOTES} more"
            table.add_row(Text(side.value, style="bold"), Text(who), Text(shown, style="italic"))
        head = "NEW" if message.kind == "new" else f"UPDATE v{c.version}"
        footer = (
            f"confidence {c.confidence:.2f} · first seen {_when(c.first_seen)} · last seen {_when(c.last_seen)}"
            + (" · internal dispute" if c.internal else "")
        )
        title = Text(f"{head} · {_KIND_LABEL.get(c.kind, c.kind)} about {describe_about(c.about)}", style="bold")
        body = Group(title, table, Text(footer, style="dim"))
        self.console.print(Panel(body, title=Text(message.story_title, style="bold"), title_align="left"))
        return DeliveryResult("printed", self.channel, 1)

    def _send_digest(self, digest: Digest) -> DeliveryResult:
        table = Table(show_header=True, header_style="bold", expand=True)
        table.add_column("contradiction", max_width=40, overflow="fold")
        table.add_column("what changed")
        table.add_column("now", max_width=28, overflow="fold")
        for e in digest.entries:
            c = e.contradiction
            what = "\n".join((f"new value {ch.value}" if ch.new else f"{ch.value}: also") + (f" — {', '.join(ch.sources)}" if ch.sources else "")
                             for ch in e.changes) or "no new value or source"
            about = f"{_KIND_LABEL.get(c.kind, c.kind)} about {describe_about(c.about)}\nversion {e.from_version} → {c.version}"
            table.add_row(Text(about), Text(what), Text(" vs ".join(s.value for s in c.sides), style="bold"))
        title = Text(f"DIGEST · {_count(digest.updates, 'update')} to {_count(len(digest.entries), 'contradiction')}, "
                     f"{_when(digest.window_start)} to {_when(digest.window_end)}", style="bold")
        self.console.print(Panel(Group(title, table), title=Text(digest.story_title, style="bold"), title_align="left"))
        return DeliveryResult("printed", self.channel, 1)


# ------------------------------------------------------------------------------------------ table

ALERTERS: dict[str, type[SlackWebhookAlerter] | type[StdoutAlerter]] = {
    "slack-bot": SlackBotAlerter,
    "slack": SlackWebhookAlerter,
    "stdout": StdoutAlerter,
}


def make_alerter(
    settings: Settings,
    *,
    console: Console | None = None,
    sleep: Callable[[float], None] = time.sleep,
    name: str | None = None,
) -> Alerter:
    """The alerter for ``settings``: ``"slack"`` when a webhook URL is set, else ``"stdout"``.
    ``name`` forces one; required options are checked here, at start-up, not at the first alert."""
    if name:
        chosen = name
    elif settings.slack_bot_token is not None:
        chosen = "slack-bot"
    elif settings.slack_webhook_url is not None:
        chosen = "slack"
    else:
        chosen = "stdout"
    try:
        cls = ALERTERS[chosen]
    except KeyError:
        raise ValueError(f"unknown alerter {chosen!r}; choose one of {sorted(ALERTERS)}") from None
    return cls.from_settings(settings, console=console, sleep=sleep)


__all__ = [
    "ALERTERS",
    "METADATA_EVENT",
    "AlertMessage",
    "Alerter",
    "DeliveryResult",
    "Lookup",
    "RateLimiter",
    "SlackBotAlerter",
    "SlackWebhookAlerter",
    "StdoutAlerter",
    "WebhookConfigError",
    "build_blocks",
    "build_digest_blocks",
    "describe_about",
    "digest_entry_text",
    "escape",
    "make_alerter",
    "message_payload",
    "side_text",
    "truncate",
]
