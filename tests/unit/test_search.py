"""The search sink against the embedded OpenSearch-compatible server, with the real client."""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from datetime import UTC, datetime, timedelta

import pytest
from elastic_transport import HttpHeaders, NodeConfig
from elasticsearch import ApiError, Elasticsearch

from pipeline.documents import article_doc, claim_docs, contradiction_doc, story_doc
from pipeline.search import (
    INDEX_NAMES,
    PlainJsonNode,
    SearchSink,
    SearchUnavailableError,
    claim_alert,
    count,
    detect_compat,
    ensure_templates,
    es_hosts,
    finish_alert,
    list_contradictions,
    list_stories,
    load_template,
    make_client,
    plain_media_type,
)
from pipeline.settings import Settings
from pipeline.types import (
    AlertRecord,
    AnalysedArticle,
    Article,
    Claim,
    Contradiction,
    Entity,
    Interval,
    LinkDecision,
    LinkedArticle,
    Side,
    Story,
    stable_id,
)

osmem_server = pytest.importorskip("osmem_server")

T0 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)


# ----------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    # japanese=False: the Japanese analyser is loaded lazily and costs ~3 s on first use
    with osmem_server.OsmemServer.start(japanese=False) as server:
        yield server.url


_prefix_counter = iter(range(1_000_000))


@pytest.fixture()
def settings(server_url: str) -> Settings:
    """Fresh index prefix per test, so tests share one server but never each other's documents."""
    return Settings(es_url=server_url, es_compat="auto", es_index_prefix=f"t{next(_prefix_counter)}", es_refresh=True)


@pytest.fixture()
def client(settings: Settings) -> Elasticsearch:
    es = make_client(settings)
    ensure_templates(es, settings)
    return es


def _linked(n: int, story: str = "story-1", outlet: str = "Wire A") -> LinkedArticle:
    art = Article(
        id=f"art-{n}",
        text=f"Police detained {10 + n} people in the raid, officials said.",
        source=outlet,
        title=f"Raid {n}",
        url=f"https://news.example/{n}",
        published=T0 + timedelta(hours=n),
    )
    claim = Claim(
        id=stable_id(art.id, "0", "detained"),
        article_id=art.id,
        predicate="detained",
        theme="person",
        event="detained@raid",
        kind="count",
        value=Interval(lo=10 + n, hi=10 + n),
        source="officials",
        source_kind="attributed",
        sentence=art.text,
        start=0,
        end=len(art.text),
    )
    analysed = AnalysedArticle(
        article=art,
        clean_text=art.text,
        title=art.title or "",
        language="en",
        words=len(art.text.split()),
        entities=(Entity(text="Police", label="ORG", canonical="police", start=0, end=6),),
        claims=(claim,),
    )
    return LinkedArticle(analysed=analysed, link=LinkDecision(story=story, is_new=n == 0, score=0.9))


def _story(sid: str, last: datetime) -> Story:
    return Story(id=sid, title=f"Title of {sid}", articles=("a", "b"), outlets=("X", "Y"), first_seen=T0, last_seen=last, size=2)


def _contradiction(story: str, about: str, last: datetime) -> Contradiction:
    return Contradiction(
        id=stable_id(story, "numeric", about),
        story=story,
        kind="numeric",
        about=about,
        sides=(
            Side(value="14", interval=Interval(lo=14, hi=14), articles=("a",), outlets=("Wire A",), quotes=("14 held",)),
            Side(value=">= 23", interval=Interval(lo=23, hi=None), articles=("b",), outlets=("Wire B",), quotes=("23+",)),
        ),
        confidence=0.8,
        first_seen=T0,
        last_seen=last,
    )


def _all_docs(settings: Settings) -> list[dict]:
    actions: list[dict] = []
    for n in range(3):
        linked = _linked(n)
        actions.append(article_doc(linked, T0, index=settings.index("articles")))
        actions.extend(claim_docs(linked, index=settings.index("claims")))
    actions.append(story_doc(_story("story-1", T0), index=settings.index("stories")))
    actions.append(contradiction_doc(_contradiction("story-1", "detained:person@raid", T0), index=settings.index("contradictions")))
    return actions


# ------------------------------------------------------------------------------------------- compat


def test_plain_json_node_rewrites_versioned_media_types_without_touching_the_callers_headers() -> None:
    seen: dict[str, HttpHeaders] = {}

    node = PlainJsonNode(NodeConfig("http", "127.0.0.1", 9))
    original = HttpHeaders(
        {
            "accept": "application/vnd.elasticsearch+json; compatible-with=9",
            "content-type": "application/vnd.elasticsearch+x-ndjson; compatible-with=9",
            "x-other": "application/vnd.elasticsearch+json; compatible-with=9",
        }
    )

    def fake_urlopen(method, target, body=None, headers=None, **kw):
        seen["headers"] = HttpHeaders(headers)
        raise RuntimeError("stop")

    # stop at urllib3: what the node hands to the connection pool is what is under test
    node.pool.urlopen = fake_urlopen  # type: ignore[method-assign]
    with pytest.raises(Exception):
        node.perform_request("POST", "/_bulk", b"{}\n", original)
    sent = seen["headers"]
    assert sent["accept"] == "application/json"
    assert sent["content-type"] == "application/x-ndjson"
    # only the media-type headers change, and the caller's mapping is not mutated
    assert sent["x-other"] == original["x-other"]
    assert original["accept"].startswith("application/vnd.elasticsearch+json")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("application/vnd.elasticsearch+json; compatible-with=9", "application/json"),
        ("application/vnd.elasticsearch+json;compatible-with=8", "application/json"),
        ("application/vnd.elasticsearch+x-ndjson; compatible-with=9", "application/x-ndjson"),
        ("application/json", "application/json"),
        ("text/plain", "text/plain"),
    ],
)
def test_plain_media_type(given: str, expected: str) -> None:
    assert plain_media_type(given) == expected


def test_es_hosts_adds_default_ports_and_splits() -> None:
    s = Settings(es_url="https://es.example.com, http://10.0.0.1:9201")
    assert es_hosts(s) == ["https://es.example.com:443", "http://10.0.0.1:9201"]


def test_auto_detects_plain_json_against_the_embedded_server(server_url: str) -> None:
    assert detect_compat(Settings(es_url=server_url, es_compat="auto")) == "plain-json"
    # explicit settings are honoured without a probe
    assert detect_compat(Settings(es_url="http://127.0.0.1:1", es_compat="elasticsearch")) == "elasticsearch"


def test_versioned_media_type_is_what_the_embedded_server_rejects(server_url: str) -> None:
    """The reason PlainJsonNode exists: the same write fails with 'elasticsearch' media types."""
    es = make_client(Settings(es_url=server_url), compat="elasticsearch", max_retries=0)
    with pytest.raises(ApiError) as info:
        es.index(index="compat-probe", id="1", document={"a": 1})
    assert info.value.meta.status == 406
    plain = make_client(Settings(es_url=server_url), compat="plain-json")
    assert plain.index(index="compat-probe-plain", id="1", document={"a": 1})["result"] in {"created", "updated"}


def test_auto_on_an_unreachable_server_raises_a_clear_error_without_secrets(caplog: pytest.LogCaptureFixture) -> None:
    s = Settings(es_url="http://127.0.0.1:1", es_compat="auto", es_api_key="top-secret-key")
    slept: list[float] = []
    with caplog.at_level(logging.DEBUG), pytest.raises(SearchUnavailableError) as info:
        detect_compat(s, attempts=2, timeout_s=0.5, sleep=slept.append)
    assert "127.0.0.1:1" in str(info.value)
    assert len(slept) == 1
    assert "top-secret-key" not in caplog.text + str(info.value)


class _FakeNode:
    """A stand-in for a secured node's ``GET /``: records the request headers, answers a script."""

    def __init__(self, status: int, body: dict) -> None:
        self.headers: list[dict[str, str]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                fake.headers.append({k.lower(): v for k, v in self.headers.items()})
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


REAL_ES_ROOT = {"name": "n", "version": {"number": "9.1.0", "build_flavor": "default"}, "tagline": "You Know, for Search"}


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, REAL_ES_ROOT, "elasticsearch"),
        (200, {"version": {"number": "2.19.0", "distribution": "opensearch"}}, "plain-json"),
        (401, {"error": "unauthorized"}, "elasticsearch"),
    ],
)
def test_auto_probe_sends_credentials_and_decides_by_the_body(status: int, body: dict, expected: str) -> None:
    node = _FakeNode(status, body)
    try:
        s = Settings(es_url=node.url, es_api_key="key-id:key-secret")
        assert detect_compat(s) == expected
        sent = node.headers[0]
        assert sent["authorization"] == "ApiKey " + base64.b64encode(b"key-id:key-secret").decode()
        assert sent["accept"] == "application/json"
        basic = Settings(es_url=node.url, es_username="elastic", es_password="pw")
        detect_compat(basic)
        assert node.headers[1]["authorization"] == "Basic " + base64.b64encode(b"elastic:pw").decode()
    finally:
        node.close()


# ---------------------------------------------------------------------------------------- templates


def test_templates_are_applied_to_created_indices(client: Elasticsearch, settings: Settings) -> None:
    for name in INDEX_NAMES:
        assert client.indices.exists(index=settings.index(name))
    props = client.indices.get_mapping(index=settings.index("articles"))[settings.index("articles")]["mappings"]["properties"]
    assert props["id"]["type"] == "keyword"
    assert props["text"]["type"] == "text"
    assert props["title"]["fields"]["keyword"]["type"] == "keyword"
    assert props["published"]["type"] == "date"
    cprops = client.indices.get_mapping(index=settings.index("contradictions"))[settings.index("contradictions")]["mappings"]["properties"]
    assert cprops["side_values"]["type"] == "keyword"
    assert cprops["confidence"]["type"] == "float"
    assert cprops["sides"]["properties"]["quotes"]["type"] == "text"


def test_ensure_templates_is_idempotent(client: Elasticsearch, settings: Settings) -> None:
    SearchSink.from_settings(client, settings).write(_all_docs(settings))
    before = count(client, settings, "articles")
    ensure_templates(client, settings)  # second run: no error, existing data kept
    assert count(client, settings, "articles") == before > 0


def test_every_template_pattern_uses_the_prefix() -> None:
    for name in INDEX_NAMES:
        body = load_template(name, "abc")
        assert body["index_patterns"] == [f"abc-{name}*"]
        assert body["template"]["mappings"]["dynamic"] in (False, "false", "strict")


# --------------------------------------------------------------------------------------------- sink


def test_bulk_write_is_idempotent(client: Elasticsearch, settings: Settings) -> None:
    sink = SearchSink.from_settings(client, settings)
    actions = _all_docs(settings)
    first = sink.write(actions)
    assert first.failed == 0 and first.ok == len(actions)
    counts = {name: count(client, settings, name) for name in ("articles", "claims", "stories", "contradictions")}
    assert counts == {"articles": 3, "claims": 3, "stories": 1, "contradictions": 1}
    second = sink.write(_all_docs(settings))
    assert second.ok == len(actions)
    assert {name: count(client, settings, name) for name in counts} == counts


def test_bulk_reports_permanent_item_errors_without_retrying(client: Elasticsearch, settings: Settings) -> None:
    slept: list[float] = []
    sink = SearchSink(client, refresh=True, sleep=slept.append)
    good = story_doc(_story("ok", T0), index=settings.index("stories"))
    bad = {"_op_type": "index", "_index": settings.index("stories"), "_id": "bad", "_source": {"last_seen": "not a date"}}
    result = sink.write([good, bad])
    assert (result.ok, result.failed) == (1, 1)
    assert result.errors[0].id == "bad" and result.errors[0].status == 400
    assert slept == []  # a mapping error is final


def test_bulk_retries_connection_errors_with_backoff_then_reports_failure() -> None:
    s = Settings(es_url="http://127.0.0.1:1", es_compat="plain-json", es_index_prefix="dead")
    slept: list[float] = []
    sink = SearchSink(make_client(s, max_retries=0, request_timeout=1), max_retries=2, initial_backoff_s=0.1, sleep=slept.append)
    result = sink.write([story_doc(_story("x", T0), index=s.index("stories")), story_doc(_story("y", T0), index=s.index("stories"))])
    assert (result.ok, result.failed, result.attempts) == (0, 2, 3)
    assert slept == [0.1, 0.2]
    assert all(e.status is None for e in result.errors)


# ------------------------------------------------------------------------------------------- outbox


def _alert(status: str = "pending") -> AlertRecord:
    return AlertRecord(
        id=stable_id("c1", "1"), contradiction="c1", story="story-1", kind="new", status=status, channel="slack", created=T0
    )


def test_claim_alert_is_once_only(client: Elasticsearch, settings: Settings) -> None:
    rec = _alert()
    assert claim_alert(client, settings, rec) is not None
    assert claim_alert(client, settings, rec) is None
    finish_alert(client, settings, rec.model_copy(update={"status": "sent", "attempts": 1, "sent": T0}))
    assert claim_alert(client, settings, rec) is None
    stored = client.get(index=settings.index("alerts"), id=rec.id)["_source"]
    assert stored["status"] == "sent" and stored["attempts"] == 1


def test_a_failed_alert_can_be_reclaimed_once(client: Elasticsearch, settings: Settings) -> None:
    rec = _alert()
    assert claim_alert(client, settings, rec)
    finish_alert(client, settings, rec.model_copy(update={"status": "failed", "error": "HTTP 500"}))
    assert claim_alert(client, settings, rec) is not None
    assert claim_alert(client, settings, rec) is None  # now pending again: someone owns it


def test_finish_alert_refuses_pending(client: Elasticsearch, settings: Settings) -> None:
    with pytest.raises(ValueError):
        finish_alert(client, settings, _alert())


# -------------------------------------------------------------------------------------------- reads


def test_list_stories_and_contradictions_return_what_was_written(client: Elasticsearch, settings: Settings) -> None:
    sink = SearchSink.from_settings(client, settings)
    stories = [_story(f"s{i}", T0 + timedelta(days=i)) for i in range(3)]
    contras = [_contradiction("s0", "killed", T0), _contradiction("s1", "detained", T0 + timedelta(hours=1)),
               _contradiction("s1", "injured", T0 + timedelta(hours=2))]
    result = sink.write([story_doc(s, index=settings.index("stories")) for s in stories]
                        + [contradiction_doc(c, index=settings.index("contradictions")) for c in contras])
    assert result.failed == 0
    listed = list_stories(client, settings, size=10)
    assert [s["id"] for s in listed] == ["s2", "s1", "s0"]  # newest last_seen first
    assert listed[0]["title"] == "Title of s2"
    assert len(list_stories(client, settings, size=2)) == 2
    of_s1 = list_contradictions(client, settings, story="s1")
    assert [c["about"] for c in of_s1] == ["injured", "detained"]
    assert {c["id"] for c in list_contradictions(client, settings)} == {c.id for c in contras}
    assert of_s1[0]["side_values"] == ["14", ">= 23"]


def test_reads_on_missing_indices_are_empty(server_url: str) -> None:
    s = Settings(es_url=server_url, es_index_prefix="never-created")
    es = make_client(s)
    assert list_stories(es, s) == []
    assert list_contradictions(es, s, story="x") == []
    assert count(es, s, "articles") == 0
