"""The Elasticsearch sink: client construction, index templates, bulk writes, the alert outbox and
the read helpers the CLI uses.

Production target is real Elasticsearch 8/9. The embedded OpenSearch-compatible server used by
``crosswire up`` and the tests rejects the versioned media type the ``elasticsearch`` 9 client always
sends (``application/vnd.elasticsearch+json; compatible-with=9``); ``Settings.es_compat`` selects
plain ``application/json`` for such servers through :class:`PlainJsonNode`, elastic-transport's
supported node extension point, so the client itself is used unchanged.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import ssl
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import httpx
from elastic_transport import HttpHeaders, NodeConfig, TransportError, Urllib3HttpNode
from elasticsearch import ApiError, ConflictError, Elasticsearch, NotFoundError
from elasticsearch.helpers import streaming_bulk

from pipeline.documents import BulkAction, alert_source, iso
from pipeline.settings import CONFIG_DIR, Settings
from pipeline.types import AlertRecord

log = logging.getLogger(__name__)

TEMPLATE_DIR = CONFIG_DIR / "elasticsearch"
INDEX_NAMES: tuple[str, ...] = ("articles", "stories", "claims", "contradictions", "alerts")
PREFIX_PLACEHOLDER = "{prefix}"

Compat = Literal["elasticsearch", "plain-json"]

# ------------------------------------------------------------------------------------------ client

_VERSIONED_MEDIA = re.compile(r"application/vnd\.elasticsearch\+([\w.+-]+?)\s*;\s*compatible-with\s*=\s*\d+")
_MEDIA_HEADERS = ("accept", "content-type")


def plain_media_type(value: str) -> str:
    """``application/vnd.elasticsearch+X; compatible-with=N`` -> ``application/X``; anything else
    is returned unchanged (a comma-separated Accept list is rewritten item by item)."""
    return _VERSIONED_MEDIA.sub(r"application/\1", value)


def _plain_headers(headers: Mapping[str, str]) -> HttpHeaders:
    out = HttpHeaders(headers)  # a copy: the caller's (and the client's default) headers stay as they were
    for name in _MEDIA_HEADERS:
        if name in out:
            out[name] = plain_media_type(out[name])
    return out


class PlainJsonNode(Urllib3HttpNode):
    """An HTTP node that sends plain ``application/json`` (and ``application/x-ndjson``) media
    types instead of Elasticsearch's versioned ones, for OpenSearch-compatible servers.

    Only the ``Accept`` and ``Content-Type`` headers change; bodies are already serialised when they
    reach the node, and responses are decoded by their own ``Content-Type`` as usual."""

    def __init__(self, config: NodeConfig) -> None:
        super().__init__(config)
        self._headers = _plain_headers(self._headers)

    def perform_request(  # type: ignore[override]
        self,
        method: str,
        target: str,
        body: bytes | None = None,
        headers: HttpHeaders | None = None,
        **kwargs: Any,
    ) -> Any:
        if headers:
            headers = _plain_headers(headers)
        return super().perform_request(method, target, body, headers, **kwargs)


class SearchUnavailableError(RuntimeError):
    """The search server could not be reached (or identified) at start-up."""


def redact_url(url: str) -> str:
    """``scheme://host:port`` only: user info, path and query may hold secrets and never reach a log."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


def es_hosts(settings: Settings) -> list[str]:
    """The comma-separated ``es_url`` as a list, with the scheme's default port made explicit
    (elastic-transport refuses URLs without one): 443 for https, 80 otherwise, as in any URL."""
    hosts = []
    for raw in settings.es_url.split(","):
        raw = raw.strip()
        if not raw:
            continue
        parts = urlsplit(raw if "://" in raw else f"http://{raw}")
        if parts.port is None:
            netloc = f"{parts.netloc}:{443 if parts.scheme == 'https' else 80}"
            parts = parts._replace(netloc=netloc)
        hosts.append(urlunsplit(parts))
    if not hosts:
        raise ValueError("es_url is empty")
    return hosts


def _encoded_api_key(settings: Settings) -> str | None:
    """The API key as sent in ``Authorization: ApiKey ...``. Accepts Kibana's "encoded" form or
    ``id:key`` (base64 has no colon, so the two cannot be confused)."""
    if settings.es_api_key is None:
        return None
    key = settings.es_api_key.get_secret_value().strip()
    return base64.b64encode(key.encode("utf-8")).decode("ascii") if ":" in key else key


def _auth_kwargs(settings: Settings) -> dict[str, Any]:
    kw: dict[str, Any] = {}
    api_key = _encoded_api_key(settings)
    if api_key is not None:
        kw["api_key"] = api_key
    elif settings.es_username:
        password = settings.es_password.get_secret_value() if settings.es_password else ""
        kw["basic_auth"] = (settings.es_username, password)
    if settings.es_ca_file is not None:
        kw["ca_certs"] = str(settings.es_ca_file)
    return kw


def _probe_one(url: str, settings: Settings, timeout_s: float) -> Compat | None:
    """Ask one node ``GET /`` with plain JSON media types. None when the node cannot be reached."""
    headers = {"accept": "application/json"}
    auth: httpx.BasicAuth | None = None
    api_key = _encoded_api_key(settings)
    if api_key is not None:
        headers["authorization"] = f"ApiKey {api_key}"
    elif settings.es_username:
        password = settings.es_password.get_secret_value() if settings.es_password else ""
        auth = httpx.BasicAuth(settings.es_username, password)
    verify: ssl.SSLContext | bool = True
    if settings.es_ca_file is not None:
        verify = ssl.create_default_context(cafile=str(settings.es_ca_file))
    try:
        with httpx.Client(verify=verify, timeout=timeout_s) as http:
            resp = http.get(url.rstrip("/") + "/", headers=headers, auth=auth)
    except httpx.HTTPError as exc:
        log.warning("search probe of %s failed: %s", redact_url(url), type(exc).__name__)
        return None
    # The body decides, not the X-Elastic-Product header: compatible servers send that header too
    # (the client's product check requires it).
    if resp.status_code == 200:
        try:
            info = resp.json()
        except ValueError:
            info = {}
        version = info.get("version") if isinstance(info, dict) else None
        distribution = version.get("distribution") if isinstance(version, dict) else None
        return "plain-json" if distribution == "opensearch" else "elasticsearch"
    # 401/403 and friends: a secured cluster that will not say what it is. Elasticsearch is the
    # production target, so assume it; es_compat can be set explicitly to override.
    log.warning(
        "search probe of %s answered HTTP %d; assuming Elasticsearch (set es_compat to override)",
        redact_url(url),
        resp.status_code,
    )
    return "elasticsearch"


def detect_compat(
    settings: Settings,
    *,
    attempts: int = 3,
    timeout_s: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
) -> Compat:
    """Resolve ``es_compat``: explicit values are returned as they are; ``"auto"`` probes the
    configured nodes once with a plain ``GET /`` and picks ``"plain-json"`` when the server says
    ``version.distribution == "opensearch"``, else ``"elasticsearch"``.

    Raises :class:`SearchUnavailableError` when no node answers within ``attempts`` rounds."""
    if settings.es_compat != "auto":
        return settings.es_compat
    hosts = es_hosts(settings)
    for attempt in range(attempts):
        for url in hosts:
            found = _probe_one(url, settings, timeout_s)
            if found is not None:
                log.info("search server %s: using %s media types", redact_url(url), found)
                return found
        if attempt + 1 < attempts:
            sleep(min(0.5 * 2**attempt, 5.0))
    raise SearchUnavailableError(
        "no search node answered GET / at " + ", ".join(redact_url(h) for h in hosts) + "; "
        "start it or set CROSSWIRE_ES_COMPAT to 'elasticsearch' or 'plain-json'"
    )


def make_client(
    settings: Settings,
    *,
    compat: Compat | None = None,
    request_timeout: float = 30.0,
    max_retries: int = 3,
) -> Elasticsearch:
    """An ``Elasticsearch`` client for ``settings.es_url`` with auth, CA file and media types set.

    ``compat`` overrides ``settings.es_compat`` (and skips the probe). The transport retries
    connection errors, timeouts and 429/502/503/504 up to ``max_retries`` times."""
    mode = compat or detect_compat(settings)
    kwargs: dict[str, Any] = dict(
        request_timeout=request_timeout,
        max_retries=max_retries,
        retry_on_timeout=True,
        retry_on_status=(429, 502, 503, 504),
        **_auth_kwargs(settings),
    )
    if mode == "plain-json":
        kwargs["node_class"] = PlainJsonNode
    return Elasticsearch(es_hosts(settings), **kwargs)


# --------------------------------------------------------------------------------------- templates


def load_template(name: str, prefix: str, template_dir: Path = TEMPLATE_DIR) -> dict[str, Any]:
    """The composable index template ``NAME.json`` with ``{prefix}`` substituted.

    Plain string replacement, not ``str.format``: the file is JSON and full of braces."""
    text = (template_dir / f"{name}.json").read_text(encoding="utf-8")
    return json.loads(text.replace(PREFIX_PLACEHOLDER, prefix))


def ensure_templates(client: Elasticsearch, settings: Settings, *, names: Iterable[str] = INDEX_NAMES) -> None:
    """Put the index templates and create the indices that are missing. Idempotent: templates are
    overwritten with the same body, existing indices (and their data) are left alone, and a
    concurrent creator winning the race is not an error."""
    for name in names:
        index = settings.index(name)
        body = load_template(name, settings.es_index_prefix)
        client.indices.put_index_template(name=index, body=body)
        if client.indices.exists(index=index):
            continue
        try:
            client.indices.create(index=index)
        except ApiError as exc:
            if exc.error != "resource_already_exists_exception":
                raise


# -------------------------------------------------------------------------------------------- sink

_TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class BulkItemError:
    """Why one action failed; ``status`` is None when no HTTP status came back (connection error)."""

    index: str
    id: str | None
    op: str
    status: int | None
    type: str
    reason: str


@dataclass(frozen=True)
class WriteResult:
    ok: int
    failed: int
    errors: tuple[BulkItemError, ...] = ()
    attempts: int = 1  # bulk rounds, 1 when nothing had to be retried


def _item_error(action: BulkAction, op: str, info: Mapping[str, Any]) -> BulkItemError:
    status = info.get("status")
    error = info.get("error")
    if isinstance(error, Mapping):
        kind = str(error.get("type", "error"))
        reason = str(error.get("reason", ""))
    else:
        kind = type(info.get("exception")).__name__ if info.get("exception") is not None else "error"
        reason = str(error or "")
    return BulkItemError(
        index=str(info.get("_index", action.get("_index", ""))),
        id=info.get("_id", action.get("_id")),
        op=op,
        status=status if isinstance(status, int) else None,
        type=kind,
        reason=reason[:500],
    )


class SearchSink:
    """Writes bulk actions (from :mod:`pipeline.documents`) to the search server.

    Contract: :meth:`write` never raises for a per-document failure or an unreachable server; it
    returns a :class:`WriteResult` whose ``failed`` count and ``errors`` say what did not land. Items
    failing with 429, 5xx or no status at all (connection lost) are retried as a group with
    exponential back-off up to ``max_retries`` times; other failures (mapping errors, 409) are final.
    Writes are idempotent when actions carry deterministic ``_id``s and op ``index``, so retrying a
    whole batch after a crash is safe."""

    def __init__(
        self,
        client: Elasticsearch,
        *,
        chunk_size: int = 500,
        refresh: bool = False,
        max_retries: int = 3,
        initial_backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.chunk_size = chunk_size
        self.refresh = refresh
        self.max_retries = max_retries
        self.initial_backoff_s = initial_backoff_s
        self.max_backoff_s = max_backoff_s
        self._sleep = sleep

    @classmethod
    def from_settings(cls, client: Elasticsearch, settings: Settings, **kwargs: Any) -> SearchSink:
        return cls(client, chunk_size=settings.es_bulk_max_docs, refresh=settings.es_refresh, **kwargs)

    def _round(self, actions: list[BulkAction]) -> list[tuple[bool, str, Mapping[str, Any]]]:
        """One pass of ``streaming_bulk`` without its own retries, so results line up one-to-one
        with ``actions``; a transport error mid-way marks the rest as status-less failures."""
        results: list[tuple[bool, str, Mapping[str, Any]]] = []
        try:
            for ok, item in streaming_bulk(
                self.client,
                actions,
                chunk_size=self.chunk_size,
                raise_on_error=False,
                raise_on_exception=False,
                max_retries=0,
                yield_ok=True,
            ):
                op, info = next(iter(item.items()))
                results.append((ok, op, info))
        except TransportError as exc:  # connection refused/reset, timeout after the transport's retries
            reason = f"{type(exc).__name__}: {exc.message}"
            for action in actions[len(results) :]:
                op = str(action.get("_op_type", "index"))
                results.append((False, op, {"status": None, "error": reason, "exception": exc}))
        return results

    def write(self, actions: Iterable[BulkAction]) -> WriteResult:
        """Write ``actions`` (materialised: they are kept for retries) and report the outcome."""
        pending = list(actions)
        ok = 0
        errors: list[BulkItemError] = []
        touched = {str(a["_index"]) for a in pending if "_index" in a}
        attempt = 0
        while pending:
            attempt += 1
            retry: list[BulkAction] = []
            last: list[BulkItemError] = []
            for action, (success, op, info) in zip(pending, self._round(pending), strict=True):
                if success:
                    ok += 1
                    continue
                err = _item_error(action, op, info)
                if (err.status is None or err.status in _TRANSIENT_STATUS) and attempt <= self.max_retries:
                    retry.append(action)
                    last.append(err)
                else:
                    errors.append(err)
            if not retry:
                break
            delay = min(self.max_backoff_s, self.initial_backoff_s * 2 ** (attempt - 1))
            log.warning("bulk: %d item(s) failed transiently (%s); retry in %.1fs", len(retry), last[0].type, delay)
            self._sleep(delay)
            pending = retry
        if self.refresh and touched and ok:
            try:
                self.client.indices.refresh(index=sorted(touched))
            except (ApiError, TransportError) as exc:
                log.warning("refresh after bulk failed: %s", type(exc).__name__)
        return WriteResult(ok=ok, failed=len(errors), errors=tuple(errors), attempts=max(attempt, 1))


# ------------------------------------------------------------------------------------ alert outbox


#: The ``(_seq_no, _primary_term)`` of the outbox record as this worker last wrote it: holding it
#: is owning the alert; a write with a stale lease fails (optimistic concurrency control).
Lease = tuple[int, int]


def _lease(resp: Mapping[str, Any]) -> Lease:
    return int(resp["_seq_no"]), int(resp["_primary_term"])


def claim_alert(client: Elasticsearch, settings: Settings, record: AlertRecord) -> Lease | None:
    """Persist ``record`` (normally status ``pending``) under its dedupe key *before* sending.

    Returns the lease when this caller owns the alert and should send it; None when a record with
    the same id exists already (HTTP 409: claimed or sent by someone else, or by an earlier run),
    unless that record had ``failed``, in which case it is taken over with optimistic concurrency
    control so exactly one contender retries it. Transport errors propagate: without a claim, do
    not send."""
    index = settings.index("alerts")
    try:
        return _lease(client.create(index=index, id=record.id, document=alert_source(record), refresh=settings.es_refresh))
    except ConflictError:
        pass
    try:
        current = client.get(index=index, id=record.id)
    except NotFoundError:  # deleted between the two calls; do not race for it
        return None
    if current["_source"].get("status") != "failed":
        return None
    return take_over_alert(client, settings, record, _lease(current))


def take_over_alert(client: Elasticsearch, settings: Settings, record: AlertRecord, lease: Lease) -> Lease | None:
    """Replace an outbox record only if nobody wrote it since ``lease`` was read: exactly one of
    several workers gets it. Returns the new lease, or None when someone else was first. Also how
    a sender renews its claim while it is still delivering."""
    try:
        resp = client.index(index=settings.index("alerts"), id=record.id, document=alert_source(record),
                            if_seq_no=lease[0], if_primary_term=lease[1], refresh=settings.es_refresh)
    except ConflictError:
        return None
    return _lease(resp)


def finish_alert(client: Elasticsearch, settings: Settings, record: AlertRecord, lease: Lease | None = None) -> bool:
    """Store the final state of an alert (status ``sent``, ``printed`` or ``failed``, with
    ``error``, ``attempts`` and ``sent``). With ``lease``, only if this worker still owns the
    record (False when it was taken over); without, overwrites. Idempotent."""
    if record.status == "pending":
        raise ValueError("finish_alert needs a final status (sent, printed or failed), not 'pending'")
    if lease is not None:
        return take_over_alert(client, settings, record, lease) is not None
    client.index(index=settings.index("alerts"), id=record.id, document=alert_source(record), refresh=settings.es_refresh)
    return True


def due_alerts(
    client: Elasticsearch, settings: Settings, now: datetime, *, pending_timeout_s: float, size: int = 50
) -> list[tuple[AlertRecord, Lease]]:
    """Outbox records due for (re)delivery, with their lease for an optimistic take-over: failed
    ones whose ``next_attempt`` has come, and pending ones whose claim was not renewed for
    ``pending_timeout_s`` (their worker died between claiming and finishing)."""
    stale = now - timedelta(seconds=pending_timeout_s)
    query = {
        "bool": {
            "should": [
                {"bool": {"filter": [{"term": {"status": "failed"}}, {"range": {"next_attempt": {"lte": iso(now)}}}]}},
                {"bool": {"filter": [{"term": {"status": "pending"}}, {"range": {"created": {"lte": iso(stale)}}}]}},
            ],
            "minimum_should_match": 1,
        }
    }
    try:
        resp = client.search(index=settings.index("alerts"), query=query, size=size, seq_no_primary_term=True,
                             sort=[{"created": {"order": "asc", "unmapped_type": "date"}}])
    except NotFoundError:
        return []
    out = []
    for hit in resp["hits"]["hits"]:
        src = {k: v for k, v in hit["_source"].items() if k in AlertRecord.model_fields}
        out.append((AlertRecord.model_validate(src), _lease(hit)))
    return out


# ------------------------------------------------------------------------------------------ reads


def _sources(resp: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [hit["_source"] for hit in resp["hits"]["hits"]]


def list_stories(client: Elasticsearch, settings: Settings, size: int = 20) -> list[dict[str, Any]]:
    """The most recently active stories, newest ``last_seen`` first (``_source`` dicts)."""
    try:
        resp = client.search(
            index=settings.index("stories"),
            size=size,
            query={"match_all": {}},
            sort=[{"last_seen": {"order": "desc", "unmapped_type": "date"}}, {"id": {"order": "asc"}}],
        )
    except NotFoundError:
        return []
    return _sources(resp)


def list_contradictions(
    client: Elasticsearch, settings: Settings, story: str | None = None, size: int = 50
) -> list[dict[str, Any]]:
    """Contradictions, optionally of one story, newest ``last_seen`` first, then most confident."""
    query: dict[str, Any] = {"term": {"story": story}} if story else {"match_all": {}}
    try:
        resp = client.search(
            index=settings.index("contradictions"),
            size=size,
            query=query,
            sort=[
                {"last_seen": {"order": "desc", "unmapped_type": "date"}},
                {"confidence": {"order": "desc", "unmapped_type": "float"}},
                {"id": {"order": "asc"}},
            ],
        )
    except NotFoundError:
        return []
    return _sources(resp)


def count(client: Elasticsearch, settings: Settings, index_name: str) -> int:
    """Documents in ``settings.index(index_name)``; 0 when the index does not exist."""
    try:
        return int(client.count(index=settings.index(index_name))["count"])
    except NotFoundError:
        return 0


__all__ = [
    "INDEX_NAMES",
    "BulkItemError",
    "Compat",
    "PlainJsonNode",
    "SearchSink",
    "SearchUnavailableError",
    "WriteResult",
    "claim_alert",
    "count",
    "detect_compat",
    "ensure_templates",
    "es_hosts",
    "finish_alert",
    "list_contradictions",
    "list_stories",
    "load_template",
    "make_client",
    "plain_media_type",
    "redact_url",
]
