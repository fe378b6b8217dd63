"""Bad input never stops the stream: records written straight to the articles topic (bypassing the
producer's validation, as another producer might) are dead-lettered by the worker with a
machine-readable reason, and good records behind them are still processed."""

from __future__ import annotations

import json

import pytest
from kafka import KafkaProducer

from pipeline.demo import start_worker, stop_worker
from pipeline.kafka import client_options, ensure_topics, read_topic
from pipeline.search import count, ensure_templates, make_client

from .conftest import make_settings, wait_for

pytestmark = pytest.mark.integration

HTML = """<!DOCTYPE html><html><head><title>Flood</title></head><body><nav>Home | World | Sport</nav>
<article><h1>Floods kill 12 in northern town</h1><p>Floods killed 12 people in the northern town of
Riverton on Monday, police said. Rescue teams were still searching for survivors on Tuesday.</p>
<p>The mayor said at least 40 homes were destroyed and hundreds of residents were evacuated.</p></article>
<footer>Copyright 2024 | Privacy | Cookies</footer></body></html>"""

GERMAN = ("Die Polizei hat am Montag in Berlin zwölf Demonstranten festgenommen. Nach Angaben eines Sprechers "
          "wurden bei den Protesten gegen die neue Regierung auch drei Beamte verletzt.")


def test_bad_records_are_dead_lettered_and_the_stream_goes_on(stack, tmp_path):
    s = make_settings(stack, tmp_path, "bad", max_text_bytes=100_000)
    ensure_topics(s)
    client = make_client(s)
    ensure_templates(client, s)
    raw = KafkaProducer(**client_options(s), acks="all", max_request_size=4_000_000)
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
    for value in bad:
        raw.send(s.topic("articles"), key=b"bad", value=value)
    for rec in good:
        raw.send(s.topic("articles"), key=rec["id"].encode(), value=json.dumps(rec).encode())
    raw.flush()
    raw.close()
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
