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


def _is_certificate_error(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it wraps) is a failed TLS certificate verification."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(cur):
            return True
        cur = cur.__cause__ or cur.__context__
    return False


def _certificate_message(url: str, settings: Settings) -> str:
    ca = f"CROSSWIRE_ES_CA_FILE={settings.es_ca_file}" if settings.es_ca_file else "the system's trusted CAs (CROSSWIRE_ES_CA_FILE is unset)"
    return f"the TLS certificate of {redact_url(url)} is not trusted: it was checked against {ca}"


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
        if _is_certificate_error(exc):
            # not transient: retrying or falling back to "no node answered" would hide the cause
            raise SearchUnavailableError(_certificate_message(url, settings)) from None
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


def _record(source: Mapping[str, Any]) -> AlertRecord:
    """An outbox record from its ``_source`` (fields the model does not know are ignored)."""
    return AlertRecord.model_validate({k: v for k, v in source.items() if k in AlertRecord.model_fields})


def claim_alert_record(
    client: Elasticsearch, settings: Settings, record: AlertRecord, *, take_failed: bool = True
) -> tuple[Lease, AlertRecord | None] | None:
    """:func:`claim_alert`, also returning the ``failed`` record it took over (None when the claim
    created the record): its attempts may have reached Slack, which the sender must know. The
    taken-over record's ``attempts`` carry over, so the outbox's give-up bound still holds.
    ``take_failed=False`` leaves a failed record to the outbox sweep (None)."""
    index = settings.index("alerts")
    try:
        resp = client.create(index=index, id=record.id, document=alert_source(record), refresh=settings.es_refresh)
        return _lease(resp), None
    except ConflictError:
        if not take_failed:
            return None
    try:
        current = client.get(index=index, id=record.id)
    except NotFoundError:  # deleted between the two calls; do not race for it
        return None
    if current["_source"].get("status") != "failed":
        return None
    previous = _record(current["_source"])
    mine = record.model_copy(update={"attempts": max(record.attempts, previous.attempts)})
    lease = take_over_alert(client, settings, mine, _lease(current))
    return None if lease is None else (lease, previous)


def claim_alert(client: Elasticsearch, settings: Settings, record: AlertRecord) -> Lease | None:
    """Persist ``record`` (normally status ``pending``, or ``held`` for a digest) under its dedupe
    key *before* sending.

    Returns the lease when this caller owns the alert and should send it; None when a record with
    the same id exists already (HTTP 409: claimed, held or sent by someone else, or by an earlier
    run), unless that record had ``failed``, in which case it is taken over with optimistic
    concurrency control so exactly one contender retries it. Transport errors propagate: without a
    claim, do not send."""
    claimed = claim_alert_record(client, settings, record)
    return None if claimed is None else claimed[0]


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
    if record.status in ("pending", "held"):
        raise ValueError(f"finish_alert needs a final status (sent, printed or failed), not {record.status!r}")
    if lease is not None:
        return take_over_alert(client, settings, record, lease) is not None
    client.index(index=settings.index("alerts"), id=record.id, document=alert_source(record), refresh=settings.es_refresh)
    return True


def get_alert(client: Elasticsearch, settings: Settings, alert_id: str) -> tuple[AlertRecord, Lease] | None:
    """The outbox record ``alert_id`` with its lease (a real-time read), or None when there is none."""
    try:
        doc = client.get(index=settings.index("alerts"), id=alert_id)
    except NotFoundError:
        return None
    return _record(doc["_source"]), _lease(doc)


def _search_records(client: Elasticsearch, settings: Settings, query: Mapping[str, Any], size: int,
                    sort: list[Any]) -> list[tuple[AlertRecord, Lease]]:
    try:
        resp = client.search(index=settings.index("alerts"), query=query, size=size, seq_no_primary_term=True, sort=sort)
    except NotFoundError:
        return []
    return [(_record(hit["_source"]), _lease(hit)) for hit in resp["hits"]["hits"]]


def _refresh_alerts(client: Elasticsearch, settings: Settings) -> None:
    """Make every acknowledged outbox write searchable. Searches are near-real-time; the digest
    reads below decide what to hold and what a digest carries, so they must not miss a record."""
    try:
        client.indices.refresh(index=settings.index("alerts"))
    except NotFoundError:
        pass


def due_alerts(
    client: Elasticsearch, settings: Settings, now: datetime, *, pending_timeout_s: float, size: int = 50,
    exclude: Iterable[str] = (),
) -> list[tuple[AlertRecord, Lease]]:
    """Outbox records due for (re)delivery, with their lease for an optimistic take-over: failed
    ones whose ``next_attempt`` has come, and pending ones whose claim was not renewed for
    ``pending_timeout_s`` (their worker died between claiming and finishing). Held updates are not
    among them: their digest sends them (:func:`due_held`). ``exclude``: ids left out by the
    query itself (the caller's own queue), so they never crowd others out of the page."""
    stale = now - timedelta(seconds=pending_timeout_s)
    query: dict[str, Any] = {
        "bool": {
            "should": [
                {"bool": {"filter": [{"term": {"status": "failed"}}, {"range": {"next_attempt": {"lte": iso(now)}}}]}},
                {"bool": {"filter": [{"term": {"status": "pending"}}, {"range": {"created": {"lte": iso(stale)}}}]}},
            ],
            "minimum_should_match": 1,
        }
    }
    skip = sorted(set(exclude))
    if skip:
        query["bool"]["must_not"] = [{"terms": {"id": skip}}]
    return _search_records(client, settings, query, size, [{"created": {"order": "asc", "unmapped_type": "date"}}])


def due_held(client: Elasticsearch, settings: Settings, now: datetime, *, size: int = 50) -> list[tuple[AlertRecord, Lease]]:
    """Held updates whose ``next_attempt`` (the end of their digest window, or a later look at
    a digest in flight) has come, oldest first: each names, in ``digest``, the digest to send."""
    query = {"bool": {"filter": [{"term": {"status": "held"}}, {"range": {"next_attempt": {"lte": iso(now)}}}]}}
    return _search_records(client, settings, query, size,
                           [{"next_attempt": {"order": "asc", "unmapped_type": "date"}}, {"id": {"order": "asc"}}])


def held_alerts(client: Elasticsearch, settings: Settings, digest: str, story: str, *,
                size: int = 1000) -> list[tuple[AlertRecord, Lease]]:
    """Every update of ``story`` held for the digest ``digest`` (after a refresh, so none is
    missed), in id order. Selected by story and matched on ``digest`` here rather than in the
    query, so that an alerts index created before the ``digest`` field was mapped works too."""
    _refresh_alerts(client, settings)
    query = {"bool": {"filter": [{"term": {"status": "held"}}, {"term": {"story": story}}]}}
    found = _search_records(client, settings, query, size, [{"id": {"order": "asc"}}])
    return [(record, lease) for record, lease in found if record.digest == digest]


def count_alerts(client: Elasticsearch, settings: Settings, *, story: str, kind: str, since: datetime, until: datetime) -> int:
    """Outbox records of ``kind`` for ``story`` created in ``[since, until)``, after a refresh so
    that the records just claimed count."""
    _refresh_alerts(client, settings)
    query = {"bool": {"filter": [{"term": {"story": story}}, {"term": {"kind": kind}},
                                 {"range": {"created": {"gte": iso(since), "lt": iso(until)}}}]}}
    try:
        return int(client.count(index=settings.index("alerts"), query=query)["count"])
    except NotFoundError:
        return 0


def story_thread(client: Elasticsearch, settings: Settings, story: str) -> str | None:
    """The Slack ``ts`` of the story's first alert posted with a bot token (the story's thread), or None."""
    query = {"bool": {"filter": [{"term": {"story": story}}, {"term": {"kind": "new"}}, {"exists": {"field": "ts"}}]}}
    # created, then Slack's own posting order (ts strings of one width sort as numbers)
    found = _search_records(client, settings, query, 1, [{"created": {"order": "asc", "unmapped_type": "date"}}, {"ts": {"order": "asc"}}])
    return found[0][0].ts if found else None


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


def count(client: Elasticsearch, settings: Settings, index_name: str, query: dict[str, Any] | None = None) -> int:
    """Documents in ``settings.index(index_name)`` (matching ``query`` when given); 0 when the index
    does not exist."""
    try:
        return int(client.count(index=settings.index(index_name), **({"query": query} if query else {}))["count"])
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
    "claim_alert_record",
    "count",
    "count_alerts",
    "detect_compat",
    "ensure_templates",
    "es_hosts",
    "due_alerts",
    "due_held",
    "finish_alert",
    "get_alert",
    "held_alerts",
    "list_contradictions",
    "list_stories",
    "load_template",
    "make_client",
    "plain_media_type",
    "redact_url",
    "story_thread",
    "take_over_alert",
]
