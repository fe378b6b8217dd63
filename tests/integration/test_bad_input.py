"""Bad input never stops the stream: records written straight to the articles topic (bypassing the
producer's validation, as another producer might) are dead-lettered by the worker with a
machine-readable reason, and good records behind them are still processed."""

from __future__ import annotations

import json

import pytest
from kafka import KafkaProducer

from pipeline.demo import start_worker, stop_worker
from pipeline.kafka import ArticleProducer, client_options, ensure_topics, read_topic
from pipeline.search import count, ensure_templates, make_client
from pipeline.sources import Record

from .conftest import make_settings, wait_for

pytestmark = pytest.mark.integration

HTML = """<!DOCTYPE html><html><head><title>Flood</title></head><body><nav>Home | World | Sport</nav>
<article><h1>Floods kill 12 in northern town</h1><p>Floods killed 12 people in the northern town of
Riverton on Monday, police said. Rescue teams were still searching for survivors on Tuesday.</p>
<p>The mayor said at least 40 homes were destroyed and hundreds of residents were evacuated.</p></article>
<footer>Copyright 2024 | Privacy | Cookies</footer></body></html>"""

GERMAN = ("Die Polizei hat am Montag in Berlin zwölf Demonstranten festgenommen. Nach Angaben eines Sprechers "
          "wurden bei den Protesten gegen die neue Regierung auch drei Beamte verletzt.")


def _setup(stack, tmp_path, prefix: str, **settings):
    """Settings, topics and index templates of one test; its search client."""
    s = make_settings(stack, tmp_path, prefix, **settings)
    ensure_topics(s)
    client = make_client(s)
    ensure_templates(client, s)
    return s, client


def _write_raw(s, records: list[tuple[bytes, bytes]]) -> None:
    """Write (key, value) records straight to the articles topic, as another producer might."""
    raw = KafkaProducer(**client_options(s), acks="all", max_request_size=4_000_000)
    for key, value in records:
        raw.send(s.topic("articles"), key=key, value=value)
    raw.flush()
    raw.close()


def test_bad_records_are_dead_lettered_and_the_stream_goes_on(stack, tmp_path):
    s, client = _setup(stack, tmp_path, "bad", max_text_bytes=100_000)
    bad = {
        b"{not json": "invalid_json",
        b'{"text": 42}': "wrong_type",
        b'{"title": "no text"}': "missing_text",
        b'{"text": "   "}': "empty_text",
        json.dumps({"text": "x" * 300_000}).encode(): "too_large",
        b"\xff\xfe\x00\x01binary": "invalid_utf8",
        b'["a", "list"]': "not_an_object",
    }
    good = [
        {"id": "html-page", "text": HTML, "source": "Riverton Courier"},
        {"id": "german", "text": GERMAN, "source": "Berliner Blatt"},
        {"id": "plain", "text": "Floods killed 12 people in Riverton on Monday, police said. At least 40 homes were destroyed."},
    ]
    _write_raw(s, [(b"bad", value) for value in bad] + [(rec["id"].encode(), json.dumps(rec).encode()) for rec in good])
    worker = start_worker(s, tmp_path / "worker.log")
    try:
        wait_for(lambda: worker.poll() is not None or count(client, s, "articles") >= 3, 180, what="the good articles")
        assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
        letters = wait_for(lambda: (ls := [json.loads(v) for _, v in read_topic(s, "dead-letters")]) and len(ls) >= len(bad) and ls,
                           60, what="dead letters")
        assert sorted(d["reason"] for d in letters) == sorted(bad.values())
        assert all(d["stage"] == "parse" and d["message"] for d in letters)
        html = client.get(index=s.index("articles"), id="html-page")["_source"]
        assert "Floods killed 12 people" in html["text"] and "<article>" not in html["text"] and "Privacy" not in html["text"]
        german = client.get(index=s.index("articles"), id="german")["_source"]
        assert german["language"] != "en"
        claims = client.search(index=s.index("claims"), query={"term": {"article": "german"}})["hits"]["total"]["value"]
        assert claims == 0  # English-only extraction skipped, article still indexed
    finally:
        stop_worker(worker)


def _long_report(words: int) -> str:
    """An English report of about ``words`` words: names, places and counts in every sentence, so
    its analysed record (entities, tokens, claims) is several times the size of its text."""
    sentence = ("Police in Riverton said on Monday that {n} people were detained after the floods, "
                "Mayor Anna Berg told reporters in the town hall. ")
    return "".join(sentence.format(n=10 + i % 80) for i in range(words // 20))


def test_an_article_whose_analysed_record_is_over_the_message_limit_is_dead_lettered(stack, tmp_path):
    """The text is within ``max_text_bytes`` but what the analyse stage passes on (text, entities,
    tokens, claims) is over the largest message the brokers accept: the article is dead-lettered
    with the reason, and the article behind it is still indexed."""
    s, client = _setup(stack, tmp_path, "big", kafka_max_message_bytes=524_288)
    long = {"id": "long-report", "title": "Floods", "text": _long_report(9_000)}
    assert len(long["text"]) < min(s.max_text_bytes, s.kafka_max_message_bytes // 8)  # the raw record fits easily
    short = {"id": "short-report", "text": "Floods killed 12 people in Riverton on Monday, police said."}
    _write_raw(s, [(rec["id"].encode(), json.dumps(rec).encode()) for rec in (long, short)])
    worker = start_worker(s, tmp_path / "worker.log")
    try:
        wait_for(lambda: worker.poll() is not None or count(client, s, "articles") >= 1, 180, what="the short article")
        assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
        letters = wait_for(lambda: [json.loads(v) for _, v in read_topic(s, "dead-letters")], 60, what="a dead letter")
        assert [(d["reason"], d["stage"], d["key"]) for d in letters] == [("too_large", "analyse", "long-report")]
        assert "kafka_max_message_bytes" in letters[0]["message"]
        assert json.loads(letters[0]["payload"])["id"] == "long-report"  # the original record, whole
        assert client.get(index=s.index("articles"), id="short-report")["found"]
        assert count(client, s, "articles") == 1
    finally:
        stop_worker(worker)
    # `crosswire produce` never sends a record the brokers would refuse either, whatever max_text_bytes allows
    producer = ArticleProducer(s.model_copy(update={"max_text_bytes": 1_000_000}))
    try:
        summary = producer.send([Record(origin="huge.json", raw=json.dumps({"id": "huge", "text": "word " * 120_000}).encode())])
    finally:
        producer.close()
    assert summary.sent == 0 and summary.rejected == {"too_large": 1}
    assert "kafka_max_message_bytes" in summary.errors[0][1]
    letters = wait_for(lambda: (ls := [json.loads(v) for _, v in read_topic(s, "dead-letters")]) and len(ls) >= 2 and ls, 30, what="the producer's dead letter")
    assert [(d["reason"], d["stage"]) for d in letters[1:]] == [("too_large", "produce")]
